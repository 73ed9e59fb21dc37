"""Input schemas of dispatch: the contract in shared/contracts/api/dispatch.py (the gateway
validates with it too), re-exported here (every public name) for the service's own modules."""
from shared.contracts.api.dispatch import *  # noqa: F401,F403
from shared.contracts.api.dispatch import (  # noqa: F401
    ACTION_SCHEMAS, ID, TEXT, Accept, ActionSchema, ApprovalAction, CaseQuery, DecideExtension, DecidePark,
    Feedback, Return, ReportStage, RequestExtension, RequestPark, SetUrgency, UnitAction, Unpark, Verify,
    action_name)
