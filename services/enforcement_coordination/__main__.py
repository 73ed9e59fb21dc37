from shared.runner import run  # noqa: I001  (patches eventlet first)
from services.enforcement_coordination.service import CoordinationService

run(CoordinationService)
