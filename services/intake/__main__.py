from shared.runner import run  # noqa: I001  (patches eventlet first)
from services.intake.service import IntakeService

run(IntakeService)
