"""Evaluation periods (考核周期): the grammar is the scoring API's, in shared/contracts/periods.py;
re-exported here for scoring's own modules."""
from shared.contracts.periods import (  # noqa: F401
    _CUSTOM, _DAY, _MONTH, _WEEK, MAX_CUSTOM_DAYS, PERIOD_HELP, Period, PeriodError, _date, _iso,
    _local_midnight, month_of, month_period, parse_period, previous_months)
