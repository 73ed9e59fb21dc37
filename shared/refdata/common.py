"""The vocabulary of reference data — pure: the constants every service uses (unit types, case
kinds, urgencies, the 城管+N partners), the code patterns, :class:`RefdataError` and the small value
checks of the loaders."""
from __future__ import annotations

import math
import re
from pathlib import Path

DEFAULT_DIR = Path(__file__).resolve().parent / "default_district"
FILES = ("district.yaml", "units.yaml", "taxonomy.yaml", "grids.geojson", "components.yaml",
         "calendar.yaml")

#: 城管+N partner keys, as used in taxonomy ``joint`` lists and config/departments.yaml ids.
PARTNER_KEYS = ("police", "environment", "transport", "construction", "planning", "market")
#: The unit of units.yaml that stands for each partner key.
PARTNER_UNITS = {
    "police": "dept.police",
    "environment": "dept.environment",
    "transport": "dept.transport",
    "construction": "dept.construction",
    "planning": "dept.planning",
    "market": "dept.market",
}
#: The lead unit of every joint operation (城管).
LEAD_UNIT = "dept.chengguan"
UNIT_TYPES = {"street": "street.", "town": "town.", "park": "park.", "department": "dept.",
              "operator": "op.", "leadership": "lead."}
CASE_KINDS = ("immediate", "committed", "coordination")
URGENCIES = ("normal", "urgent")
KIND_LETTERS = {"component": "C", "event": "E"}

_CLASS_CODE = re.compile(r"^[CE]\d{4}$")
_GRID_CODE = re.compile(r"^\d{15}$")
_OBJECT_CODE = re.compile(r"^\d{16}$")
_OVERLAP_TOLERANCE = 1e-12  # square degrees, about 0.01 m²
#: A mainland China mobile number (11 digits, 13x-19x): the only kind an SMS reaches.
MOBILE_NUMBER = re.compile(r"^1[3-9]\d{9}$")


def sms_number(contact: dict) -> str | None:
    """The number an SMS to this contact goes to: its ``mobile`` (the SMS field), else its
    ``phone`` when that is a mobile number; ``None`` for a contact with only a landline."""
    for key in ("mobile", "phone"):
        value = contact.get(key)
        if isinstance(value, str) and MOBILE_NUMBER.match(value):
            return value
    return None


class RefdataError(ValueError):
    """Invalid reference data; the message names the file and entry of every problem."""

    def __init__(self, root: Path, problems: list[str]):
        self.root = root
        self.problems = list(problems)
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid reference data in {root} ({len(problems)} problem(s)):\n{lines}")


def _two_digits(value) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:02d}"
    if isinstance(value, str) and re.fullmatch(r"\d{2}", value):
        return value
    return None


def _digits(value, n: int) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:0{n}d}"
    if isinstance(value, str) and re.fullmatch(rf"\d{{{n}}}", value):
        return value
    return None


def _text(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
