"""Valid messages for tests, built through the real contracts."""
from __future__ import annotations

import uuid

from shared.contracts.base import utcnow
from shared.contracts.events import make_event


def case_registered(case_id=None, class_code="E0101", owner="street.tianshengjie", description="",
                    joint=(), lon=106.40, lat=29.83, event_id=None):
    case_id = case_id or f"C20261123-{uuid.uuid4().hex[:8].upper()}"
    return make_event("case_registered", {
        "case_id": case_id, "report_id": f"rpt-{case_id}", "channel": "web",
        "class_code": class_code, "class_name": "测试类别", "class_kind": "event",
        "urgency": "normal", "location": {"lon": lon, "lat": lat}, "grid_code": None,
        "street_id": owner, "owner_unit": owner, "joint_partners": list(joint),
        "description": description, "registered_at": utcnow(),
    }, producer="intake", correlation_id=case_id, event_id=event_id or f"rpt-{case_id}.registered")
