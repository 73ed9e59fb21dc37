"""社区评议 in scoring: the fold and the indicator, hand-computed."""
from datetime import datetime, timezone

from services.scoring import indicators, rules
from services.scoring.periods import parse_period
from services.scoring.settings import load_settings
from shared.refdata import load_district


def review_event(review_id, unit_id, score, period_start):
    return {"_id": f"{review_id}.submitted", "type": "community_review_submitted",
            "occurred_at": period_start, "correlation_id": review_id,
            "payload": {"review_id": review_id, "period": "2026-11", "period_start": period_start,
                        "community_code": "500190001001", "representative": "rep", "unit_id": unit_id,
                        "score": score, "submitted_at": period_start}}


def test_reviews_are_an_indicator_and_part_of_the_composite():
    start = datetime(2026, 10, 31, 16, tzinfo=timezone.utc)
    events = [review_event("RV-1", "dept.chengguan", 90, start), review_event("RV-2", "dept.chengguan", 70, start),
              review_event("RV-3", "street.tianshengjie", 100, start)]
    assert rules.subjects_of(events[0]) == ["review:RV-1"]
    facts = rules.fold_all(events + events[:1])                     # a duplicate changes nothing
    assert len(facts) == 3 and facts[0]["score"] == 90
    settings = load_settings()
    report = indicators.compute(parse_period("2026-11"), facts, settings, load_district(),
                                datetime(2026, 12, 5, tzinfo=timezone.utc))
    row = report["units"]["dept.chengguan"]
    block = row["indicators"]["community_review_rate"]
    assert (block["numerator"], block["denominator"], block["value"]) == (160, 200, 0.8)
    assert row["composite"]["value"] == 80.0 and row["composite"]["parts"] == {
        "community_review_rate": {"weight": 10.0, "score": 0.8}}
    assert report["district"]["counts"]["reviews"] == 3
    october = indicators.compute(parse_period("2026-10"), facts, settings, load_district(),
                                 datetime(2026, 12, 5, tzinfo=timezone.utc))
    assert "dept.chengguan" not in october["units"]
