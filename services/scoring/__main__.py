from shared.runner import run  # noqa: I001  (patches eventlet first)
from services.scoring.service import ScoringService

run(ScoringService)
