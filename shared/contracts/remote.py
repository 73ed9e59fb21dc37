"""nameko's remote-error registry for the error model (shared/contracts/errors.py): an error a
service raises in an RPC entrypoint is raised again, as the same class, by the caller's RPC
proxy. Imported by every program that makes or answers RPCs (shared.messaging.rpc, the gateway)."""
from __future__ import annotations

from nameko.exceptions import deserialize_to_instance

from . import errors

for _kind in (errors.ServiceError, *errors.KINDS.values()):
    deserialize_to_instance(_kind)

EXPECTED = errors.ServiceError        # raised on purpose: logged as a warning, not a crash
