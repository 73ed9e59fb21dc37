"""What dispatch does with intake's messages — pure: a reopened case goes back to its unit as
返工; an ownership decision (确权) moves a case still with the interim owner to the decided one."""
from __future__ import annotations

from .actions import _rework
from .assignment import _assign
from .model import OPEN_STATES, Change, Context, _apply


def reopen(doc: dict, event: dict, ctx: Context) -> Change:
    """case_reopened: a repeat report soon after closing → 返工 back to the unit."""
    change = Change(doc["_id"])
    doc = dict(doc)
    payload = event["payload"]
    if doc["state"] != "closed":
        change.record("case_reopened", ctx.now, "intake", payload["reason"], report_id=payload["report_id"],
                      note="案件未结案，重复举报并入本案")
        return change
    change.record("case_reopened", ctx.now, "intake", payload["reason"], report_id=payload["report_id"])
    _rework(doc, change, ctx, source="reopened", actor="intake", reason=payload["reason"])
    return change


def ownership_decided(doc: dict, decision: dict, interim_owner: str | None, ctx: Context) -> Change:
    """Arbitration decided the owner: a case still with the interim owner goes to the decided one."""
    change = Change(doc["_id"])
    doc = dict(doc)
    owner = decision["owner_unit"]
    interim = interim_owner or (doc.get("disputed") or {}).get("interim_owner")
    change.record("ownership_decided", ctx.now, decision.get("decided_by", "arbitration"),
                  f"{decision.get('level', '')}级裁定权属单位为 {owner}", owner_unit=owner,
                  dispute_id=decision.get("dispute_id"))
    fields = {"ownership_decision": {"owner_unit": owner, "level": decision.get("level"),
                                     "decided_by": decision.get("decided_by"), "decided_at": ctx.now,
                                     "dispute_id": decision.get("dispute_id")}}
    if doc.get("disputed"):
        fields["disputed"] = dict(doc["disputed"], decided_owner=owner, decided_at=ctx.now,
                                  dispute_id=decision.get("dispute_id"))
    _apply(doc, change, fields)
    still_interim = interim is None or doc["unit_id"] == interim
    if doc["state"] in OPEN_STATES and still_interim and owner != doc["unit_id"]:
        _assign(doc, change, owner, ctx, routed_by=f"arbitration.{decision.get('level', 'unknown')}",
                rule="权属争议裁定", reason=f"权属裁定：{owner}", previous_unit=doc["unit_id"],
                actor=decision.get("decided_by", "arbitration"))
    return change
