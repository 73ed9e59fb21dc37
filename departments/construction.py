"""The 区住房和城乡建设委员会 system (stand-in): `python -m departments.construction`."""
from departments.program import main

if __name__ == "__main__":
    main("construction", "区住房和城乡建设委员会")
