"""Two operators acting on the same case at once: one succeeds, the other gets a clear 409 —
optimistic concurrency on the case's version, never a lost update. Real broker and store."""
import threading

from tests.dispatch_support import UNIT, ok, platform, post, register, relayed, saturday_morning  # noqa: F401


def test_two_operators_at_once_get_one_success_and_one_conflict(platform, config, db):
    case_id = register(config, "E0101")
    relayed(db, case_id)
    answers = []
    start = threading.Event()

    def operator(reason):
        start.wait()
        answers.append(post(platform, case_id, "return", expected_version=1, reason=reason,
                            to_unit="dept.sanitation", **UNIT))
    threads = [threading.Thread(target=operator, args=(f"操作员{n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(30)

    assert sorted(answer.status_code for answer in answers) == [200, 409]
    conflict = next(answer for answer in answers if answer.status_code == 409).json()["error"]
    assert conflict["code"] == "conflict" and conflict["expected_version"] == 1
    assert conflict["current_version"] == 2 and "刷新" in conflict["message"]
    doc = db("dispatch").cases.find_one({"_id": case_id})
    assert doc["return_count"] == 1 and doc["sequence"] == 2           # applied once, nothing lost
    assert [entry["type"] for entry in doc["history"]].count("case_returned") == 1


def test_a_stale_version_is_refused_even_one_at_a_time(platform, config, db):
    case_id = register(config, "E0101")
    relayed(db, case_id)
    case = ok(platform, case_id, "accept", expected_version=1, **UNIT)
    stale = post(platform, case_id, "request-park", expected_version=1, reason="r", **UNIT)
    assert stale.status_code == 409 and stale.json()["error"]["current_version"] == case["version"]
    ok(platform, case_id, "request-park", expected_version=case["version"], reason="r", **UNIT)
