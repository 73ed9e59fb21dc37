"""Questions about a loaded district — pure: its taxonomy (classes, deadlines, joint partners),
its units and the intake policy and sensors. Every accessor returns a copy."""
from __future__ import annotations

import copy

from .common import PARTNER_UNITS, URGENCIES


class Queries:
    """The taxonomy, units and intake-policy API of a :class:`~shared.refdata.District`."""

    def policy(self) -> dict:
        """A copy of the intake policy (intake.yaml merged over the defaults)."""
        return copy.deepcopy(self.intake_policy)

    def sensor(self, sensor_id: str) -> dict:
        """A copy of the registered sensor ``sensor_id`` (KeyError when unknown)."""
        try:
            return copy.deepcopy(self.sensors[sensor_id])
        except KeyError:
            raise KeyError(f"unknown sensor {sensor_id!r}") from None

    def sensor_rule(self, metric: str) -> dict | None:
        for rule in self.intake_policy["sensor_rules"]:
            if rule["metric"] == metric:
                return copy.deepcopy(rule)
        return None

    def geocode(self, text: str) -> dict | None:
        """An approximate point for a written address (Open311 ``address_string``)."""
        return self.grid_map.geocode(text)

    # ================================================================== taxonomy API
    def minor_class(self, code: str) -> dict:
        """A copy of the minor class ``code`` (KeyError when unknown)."""
        try:
            return copy.deepcopy(self.taxonomy[code])
        except KeyError:
            raise KeyError(f"unknown class code {code!r}") from None

    def classes(self, kind: str | None = None) -> list[dict]:
        """All minor classes (copies), ordered by code; ``kind`` = component | event to filter."""
        return [copy.deepcopy(entry) for code, entry in sorted(self.taxonomy.items())
                if kind is None or entry["kind"] == kind]

    def joint_partners(self, class_code: str) -> list[str]:
        """The 城管+N partner keys of a class ([] for most; KeyError when the class is unknown)."""
        return list(self._class(class_code)["joint"])

    def deadline(self, class_code: str, urgency: str = "normal") -> str:
        """The 处置时限 of a class for an urgency, e.g. ``"4h"``."""
        if urgency not in URGENCIES:
            raise ValueError(f"urgency {urgency!r} is not one of {', '.join(URGENCIES)}")
        return self._class(class_code)["deadline"][urgency]

    def deadline_at(self, class_code: str, start, urgency: str = "normal"):
        """The deadline (aware UTC datetime) of a case of this class dispatched at ``start``."""
        return self.calendar.add_working_time(start, self.deadline(class_code, urgency))

    def _class(self, class_code: str) -> dict:
        try:
            return self.taxonomy[class_code]
        except KeyError:
            raise KeyError(f"unknown class code {class_code!r}") from None

    # ================================================================== units API
    def unit(self, unit_id: str) -> dict:
        """A copy of the unit ``unit_id`` (KeyError when unknown)."""
        try:
            return copy.deepcopy(self.units[unit_id])
        except KeyError:
            raise KeyError(f"unknown unit id {unit_id!r}") from None

    def units_of_type(self, kind: str) -> list[dict]:
        """Copies of the units of one type (street, town, park, department, operator, leadership)."""
        return [copy.deepcopy(unit) for uid, unit in sorted(self.units.items())
                if unit.get("type") == kind]

    def streets(self) -> list[dict]:
        """The streets and towns (街镇), as copies, ordered by street code."""
        found = [unit for unit in self.units.values() if unit.get("type") in ("street", "town")]
        return [copy.deepcopy(unit) for unit in sorted(found, key=lambda unit: unit["code"])]

    def partner_unit(self, key: str) -> str:
        """The unit id of a 城管+N partner key, e.g. ``police`` → ``dept.police``."""
        if key not in PARTNER_UNITS:
            raise KeyError(f"unknown partner key {key!r}")
        return PARTNER_UNITS[key]
