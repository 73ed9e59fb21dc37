"""The 区交通运输局 system (stand-in): `python -m departments.transport`."""
from departments.program import main

if __name__ == "__main__":
    main("transport", "区交通运输局")
