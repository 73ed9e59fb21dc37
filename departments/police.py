"""The 区公安分局（含交警大队） system (stand-in): `python -m departments.police`."""
from departments.program import main

if __name__ == "__main__":
    main("police", "区公安分局（含交警大队）")
