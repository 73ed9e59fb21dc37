"""Intake's copy of a case (status behind Open311, duplicates, reopening, 回访) is fed by
dispatch's events. It must end where in-order delivery ends, whatever the order, duplication or
redelivery of the events (shared/projection.py applies them by the owner's position)."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake import case_status
from shared import projection
from shared.contracts.events import load_event, make_event

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
UNIT, OTHER = "street.tianshengjie", "street.dongyang"
NAMES = {UNIT: "天生街道", OTHER: "东阳街道"}


def name(unit):
    return NAMES.get(unit, unit or "")


def at(minutes):
    return T0 + timedelta(minutes=minutes)


def changes(case_id, *steps):
    """Dispatch's events as intake receives them: built with the real event schemas, each change
    stamped with the version it produced (the first dispatch creates the aggregate: version 1)
    and its index in the change, as shared.storage stamps them, then loaded like a delivery."""
    out = []
    for version, step in enumerate(steps, start=1):
        for seq, (kind, payload) in enumerate(step):
            body = make_event(kind, dict(payload, case_id=case_id), producer="dispatch",
                              correlation_id=case_id, event_id=f"{case_id}.{version}.{seq}.{kind}")
            body.update(aggregate_id=case_id, aggregate_version=version, aggregate_seq=seq)
            out.append(load_event(body))
    return out


def dispatched(minutes, unit=UNIT, sequence=1):
    return ("case_dispatched", {"unit_id": unit, "case_kind": "committed", "dispatched_at": at(minutes),
                                "deadline": at(minutes + 240), "sequence": sequence})


def accepted(minutes, unit=UNIT):
    return ("case_accepted", {"unit_id": unit, "actor": "张三", "at": at(minutes)})


def feedback(minutes, unit=UNIT):
    return ("case_feedback_given", {"unit_id": unit, "actor": "张三", "after_photo": "photo://after",
                                    "at": at(minutes)})


def verified(minutes, unit=UNIT, passed=True):
    return ("case_verified", {"unit_id": unit, "inspector_id": "insp-1", "passed": passed,
                              "note": "" if passed else "仍有垃圾", "at": at(minutes)})


def closed(minutes, unit=UNIT, closure=1):
    return ("case_closed", {"unit_id": unit, "deadline": at(240), "on_time": True, "closed_at": at(minutes),
                            "closure": closure})


def returned(minutes, unit=UNIT, to_unit=OTHER):
    return ("case_returned", {"unit_id": unit, "caused_by": "command", "actor": "张三", "reason": "不归我管",
                              "return_count": 1, "at": at(minutes), "to_unit": to_unit})


def registered_copy(case_id="C1"):
    """Intake's own document at registration (no positions yet)."""
    return {"_id": case_id, "state": "registered", "unit_id": UNIT, "deadline": None,
            "status_notes": "已立案，待派遣", "registered_at": T0, "updated_at": T0}


def deliver(doc, events):
    for event in events:
        doc = projection.apply_in_memory(doc, case_status.project(doc, event, name, TZ))
    return doc


def closing(case_id="C1"):
    # verification and closing are one change of dispatch: the same version, the same time
    return changes(case_id, [dispatched(0)], [accepted(10)], [feedback(60)], [verified(90), closed(90)])


def redispatch(case_id="C1"):
    # a return and the re-dispatch it causes are one change
    return changes(case_id, [dispatched(0)], [returned(10), dispatched(10, unit=OTHER, sequence=2)],
                   [accepted(20, unit=OTHER)])


# ------------------------------------------------------------------ the two reproductions
def test_a_case_closed_before_its_verification_arrives_stays_closed():
    events = closing()
    doc = deliver(registered_copy(), events[:3] + [events[4], events[3]])      # closed, then verified
    assert doc["state"] == "closed" and doc["closed_at"] == at(90)
    assert case_status.is_open(doc) is False
    assert doc["status_notes"].startswith("已结案")


def test_a_redispatch_that_overtakes_its_return_leaves_the_case_with_the_new_unit():
    events = redispatch()
    # the re-dispatch arrives first, the return (same change, earlier in it) after, accepted last
    doc = deliver(registered_copy(), [events[0], events[2], events[1], events[3]])
    assert doc["state"] == "accepted" and doc["unit_id"] == OTHER
    doc = deliver(registered_copy(), [events[0], events[2], events[1]])
    assert doc["state"] == "dispatched" and doc["unit_id"] == OTHER


def test_what_each_event_says():
    events = closing() + changes("C2", [dispatched(0)], [accepted(5)],
                                 [("extension_decided", {"unit_id": UNIT, "approved": True, "actor": "李四",
                                                         "sequence": 1, "new_deadline": at(600), "at": at(30)})],
                                 [verified(50, passed=False)])
    doc = deliver(registered_copy(), events[:1])
    assert doc["status_notes"] == "已派遣至天生街道，处置时限 2026-11-23 14:00"
    doc = deliver(registered_copy(), events[:5])
    assert doc["status_notes"] == "已结案（按期），处置单位：天生街道"
    other = deliver(registered_copy("C2"), events[5:8])
    assert other["deadline"] == at(600) and "延期已批准" in other["status_notes"]
    failed = deliver(other, events[8:])
    assert failed["state"] == "rework" and "仍有垃圾" in failed["status_notes"]
    assert case_status.project(doc, {"type": "owner_notified", "event_id": "x", "payload": {}}, name, TZ) == {}


# ------------------------------------------------------------------ reopening (intake's own write)
def reopen_story(case_id="C1"):
    """Closed; a repeat report reopens it at intake; dispatch sends it back (rework), it is
    handled and closed again. Events from version 5 on are caused by the reopening."""
    return changes(case_id, [dispatched(0)], [accepted(10)], [feedback(60)], [verified(90), closed(90)],
                   [("case_rework_ordered", {"unit_id": UNIT, "reason": "结案后再次出现", "at": at(200),
                                             "source": "reopened"})],
                   [feedback(260)], [verified(300), closed(300, closure=2)])


def reopen(doc):
    assert doc["state"] == "closed"
    return projection.apply_in_memory(doc, case_status.reopen_fields(doc, at(199), "再次上报"))


def test_a_delayed_close_does_not_undo_a_reopening():
    events = reopen_story()
    doc = reopen(deliver(registered_copy(), events[:3] + [events[4]]))      # closed (verified delayed)
    assert doc["state"] == "reopened" and case_status.is_open(doc)
    doc = deliver(doc, [events[3], events[4]])                               # the delayed verified, closed again
    assert doc["state"] == "reopened"
    doc = deliver(doc, events[5:6])
    assert doc["state"] == "rework"


# ------------------------------------------------------------------ any order converges
def stories():
    park = changes("C3", [dispatched(0)], [accepted(5)],
                   [("case_parked", {"unit_id": UNIT, "actor": "张三", "approver": "王五", "reason": "等待审批",
                                     "at": at(20)})],
                   [("case_unparked", {"unit_id": UNIT, "actor": "王五", "new_deadline": at(900), "at": at(300)})],
                   [("extension_decided", {"unit_id": UNIT, "approved": True, "actor": "李四", "sequence": 1,
                                           "new_deadline": at(1200), "at": at(400)})],
                   [feedback(500)], [verified(520), closed(520)])
    return {"closing": closing(), "redispatch": redispatch() + changes("C1", [], [], [], [feedback(50, OTHER)],
                                                                       [verified(60, OTHER), closed(60, OTHER)])[-3:],
            "park": park}


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["closing", "redispatch", "park"]), st.randoms(use_true_random=False),
       st.integers(min_value=0, max_value=6))
def test_any_order_and_duplication_ends_where_in_order_delivery_ends(story, rand, extra):
    events = stories()[story]
    case_id = events[0]["payload"]["case_id"]
    in_order = deliver(registered_copy(case_id), events)
    shuffled = list(events) + [rand.choice(events) for _ in range(extra)]       # some delivered twice
    rand.shuffle(shuffled)
    any_order = deliver(registered_copy(case_id), shuffled)
    assert projection.view(any_order) == projection.view(in_order)


@settings(max_examples=150, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(min_value=0, max_value=6))
def test_a_reopened_case_converges_in_any_order(rand, extra):
    events = reopen_story()
    first, later = events[:5], events[5:]          # later events exist only after the reopening
    in_order = deliver(reopen(deliver(registered_copy(), first)), later)
    before = list(first) + [rand.choice(first) for _ in range(extra)]
    rand.shuffle(before)
    cut = next(i for i, event in enumerate(before) if event["type"] == "case_closed") + 1
    doc = reopen(deliver(registered_copy(), before[:cut]))          # intake reopens once it saw it closed
    rest = before[cut:] + list(later) + [rand.choice(events) for _ in range(extra)]
    rand.shuffle(rest)
    # the events caused by the reopening cannot arrive before it; older ones may arrive any time
    doc = deliver(doc, rest)
    assert projection.view(doc) == projection.view(in_order)


# ------------------------------------------------------------------ what reporters are told
def test_reporters_hear_when_their_case_is_dispatched_and_when_it_is_closed():
    case = {"_id": "C1", "class_code": "E0101", "class_name": "暴露垃圾", "subscribers": [
        {"report_id": "web-1", "reporter_id": "phone:13800000000"},
        {"report_id": "app-2", "reporter_id": "account_id:u-77"},
        {"report_id": "web-3", "reporter_id": "phone:13800000000"},          # the same person again
        {"report_id": "insp-4", "reporter_id": "inspector:insp-017"},        # sees it in the app
        {"report_id": "sensor-5", "reporter_id": "sensor:pm10-3"},
        {"report_id": "walkin-6", "reporter_id": None}]}
    names = {"street.tianshengjie": "天生街道办事处"}.get
    dispatched = {"type": "case_dispatched", "event_id": "ev-9", "payload": {
        "case_id": "C1", "unit_id": "street.tianshengjie", "deadline": "2026-11-23T06:30:00Z"}}
    notices = case_status.reporter_notices(case, dispatched, names, TZ)
    assert [(n["reporter_id"], n["channel"], n["report_id"]) for n in notices] == [
        ("phone:13800000000", "sms", "web-1"), ("account_id:u-77", "app", "app-2")]
    assert notices[0]["message"] == ("【大城管】您反映的问题（案件 C1，暴露垃圾）已立案并派遣至天生街道办事处处置，"
                                     "处置时限 2026-11-23 14:30。")
    assert notices[0]["id"] == "ev-9.notice.web-1" and notices[0]["kind"] == "dispatched"
    closed = case_status.reporter_notices(case, {"type": "case_closed", "event_id": "ev-10",
                                           "payload": {"case_id": "C1", "closed_at": "2026-11-23T05:00:00Z"}},
                                    names, TZ)
    assert {n["kind"] for n in closed} == {"closed"} and "已处置完毕并结案" in closed[0]["message"]
    accepted = {"type": "case_accepted", "event_id": "ev-11", "payload": {"case_id": "C1"}}
    assert case_status.reporter_notices(case, accepted, names, TZ) == []


def test_intake_answers_show_copied_moments_in_local_time():
    """A moment copied from dispatch's events (closed_at …) is kept as text; intake's answers
    show it, like its own datetimes, in local time with the offset."""
    from zoneinfo import ZoneInfo
    from services.intake.answers import jsonable
    shown = jsonable({"closed_at": "2026-12-01T22:40:33.660000+00:00", "note": "2026 年",
                      "history": [{"at": "2026-12-01T19:45:00Z"}]}, ZoneInfo("Asia/Shanghai"))
    assert shown == {"closed_at": "2026-12-02T06:40:33.660000+08:00", "note": "2026 年",
                     "history": [{"at": "2026-12-02T03:45:00+08:00"}]}
