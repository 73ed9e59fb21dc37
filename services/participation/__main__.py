from shared.runner import run  # noqa: I001  (patches eventlet first)
from services.participation.service import ParticipationService

run(ParticipationService)
