"""Real department messages for the contract's documents, built by coordination's rules at a
fixed time: docs/integration/schemas/examples.json, which shared/contracts/export.py embeds in
the AsyncAPI document (shared imports no service, so the examples are written from here).

    python -m services.enforcement_coordination.examples            # writes examples.json
    python -m services.enforcement_coordination.examples --check    # exit 1 when out of date
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta, timezone

from shared.config import ROOT
from shared.contracts import departments as contract
from shared.contracts.export import EXAMPLES

from . import rules


def examples() -> dict[str, dict]:
    t0 = datetime(2026, 11, 23, 6, 23, 16, tzinfo=timezone.utc)
    case = {"case_id": "C20261123-4574A06F", "class_code": "E0302", "class_name": "渣土车抛洒滴漏",
            "description": "渣土车沿路抛洒，路面大面积污染", "urgency": "normal",
            "location": {"lon": 106.3904, "lat": 29.8338}, "address": "天生路18号",
            "grid_code": "500190001001001", "street_id": "street.tianshengjie", "registered_at": t0 - timedelta(minutes=1)}
    infos = {d: {"ack_minutes": {"normal": 5}, "checkin_minutes": {"normal": 30}, "renotify_minutes": {"normal": 5},
                 "max_renotifications": 1, "name": d} for d in ("transport", "police", "environment")}
    lead = {"unit_id": "dept.chengguan", "name": "区城市管理局（区城市管理综合行政执法支队）", "contact": "龙秀明 023-68280024"}
    op, effects = rules.open_operation("OP-C20261123-4574A06F", case, ["transport", "police", "environment"],
                                       "class_rule", t0, dept_infos=infos, lead=lead, requested_by="class_rule",
                                       reason="案件类别 E0302 渣土车抛洒滴漏 需要城管+N联合执法",
                                       legal_basis="《城市建筑垃圾管理规定》第二十三条")
    request = effects.outgoing[1][1]                                       # police's
    op["_timers"] = effects.timers
    update = rules.coordinator_update(op, {"unit_id": "dept.chengguan"}, "抛洒点延伸至天生路30号，请一并处置",
                                      {"where": {"address": "天生路18-30号"}}, ["police"], t0 + timedelta(minutes=12),
                                      command_centre="center.command").outgoing[0][1]
    cancel = rules.cancel(op, {"unit_id": "dept.chengguan"}, "运输企业已自行清理，交通部门无需到场", ["transport"],
                          t0 + timedelta(minutes=15), command_centre="center.command").outgoing[0][1]

    def reply(kind, payload, minutes, suffix, answering=request):
        return {"schema_version": contract.CONTRACT_VERSION,
                "distribution_id": f"police.{kind.lower()}{suffix}.9f1c2a7b3d4e5f60",
                "sender": "police", "recipients": [contract.PLATFORM_SENDER], "kind": kind,
                "sent_at": rules.ms_iso(t0 + timedelta(minutes=minutes)), "expires_at": None,
                "incident_id": answering["incident_id"], "in_reply_to": answering["distribution_id"],
                "references": [], "payload": payload}

    ack = reply("Ack", {"status": "accepted", "reason": ""}, 1, "")
    checkin = reply("Update", {"stage": "checkin", "note": "交巡警二组已到达天生路18号现场报到",
                               "officers": ["警号 012345", "警号 012346"],
                               "location": {"lon": 106.3905, "lat": 29.8337}}, 18, ".checkin")
    op_closed = {**op, "state": "closed", "closed_at": t0 + timedelta(hours=2)}
    late = reply("Update", {"stage": "action", "note": "补充现场照片"}, 125, ".action")
    error = rules.receive_reply(op_closed, {**late, "sent_at": t0 + timedelta(minutes=125)}, late,
                                t0 + timedelta(minutes=125)).outgoing[0][1]
    return {
        "request": request,
        "platform-update": update,
        "cancel": cancel,
        "platform-error": error,
        "ack": ack,
        "update": checkin,
        "error": reply("Error", {"code": "unsupported_version", "message": "不支持的协议版本 2.0",
                                 "refused_distribution_id": request["distribution_id"]}, 1, ""),
    }


def rendered() -> str:
    return json.dumps(examples(), ensure_ascii=False, indent=2) + "\n"


def stale() -> bool:
    return not EXAMPLES.exists() or EXAMPLES.read_text(encoding="utf-8") != rendered()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.enforcement_coordination.examples",
                                     description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when examples.json is out of date")
    args = parser.parse_args(argv)
    if args.check:
        if stale():
            print(f"out of date: {EXAMPLES.relative_to(ROOT)}")
            return 1
        return 0
    if stale():
        EXAMPLES.parent.mkdir(parents=True, exist_ok=True)
        EXAMPLES.write_text(rendered(), encoding="utf-8")
        print(f"wrote {EXAMPLES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
