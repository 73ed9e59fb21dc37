"""Inputs of the coordination service: the contract in shared/contracts/api/coordination.py
(the gateway validates with it too), re-exported here (every public name) for the service's
own modules."""
from shared.contracts.api.coordination import *  # noqa: F401,F403
from shared.contracts.api.coordination import (  # noqa: F401
    Actor, CancelOperation, CloseOperation, LeaveOperation, Party, PlaceInput, RecordViolation,
    RectificationCheck, StartOperation, UpdateOperation, load)
from shared.contracts.parties import PARTY_KINDS, SEVERITIES, party_problem  # noqa: F401
