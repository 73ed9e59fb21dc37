"""marshmallow schemas for the scoring queries: the contract in shared/contracts/api/scoring.py
(the gateway validates with it too), re-exported here (every public name) for the service's own modules."""
from shared.contracts.api.scoring import *  # noqa: F401,F403
from shared.contracts.api.scoring import (  # noqa: F401
    FORMATS, LEVELS, MONTH, QUERIES, UNIT_TYPES, BulletinQuery, ExposureQuery, IndicatorsQuery,
    RankingQuery, load_query)
