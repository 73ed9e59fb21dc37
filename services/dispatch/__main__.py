from shared.runner import run  # noqa: I001  (patches eventlet first)
from services.dispatch.service import DispatchService

run(DispatchService)
