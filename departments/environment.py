"""The 区生态环境局 system (stand-in): `python -m departments.environment`."""
from departments.program import main

if __name__ == "__main__":
    main("environment", "区生态环境局")
