"""Evaluation periods (考核周期): the grammar is the scoring API's, in shared/contracts/periods.py;
re-exported here (every public name) for scoring's own modules."""
from shared.contracts.periods import *  # noqa: F401,F403
from shared.contracts.periods import (Period, PeriodError, local_iso, month_of, months_in,  # noqa: F401
                                      parse_period, previous_months)
