"""gateway service: HTTP → RPC. Each API area is a mixin of entrypoints in its own module;
nothing here holds state."""
from __future__ import annotations

from nameko.dependency_providers import Config

from shared import storage
from shared.health import Heartbeat
from shared.messaging.rpc import ReplicatedRpcProxy as RpcProxy      # reply queue survives a node loss

from .cases_api import CasesApi
from .core_api import CoreApi
from .doors import guard
from .open311 import Open311Api
from .operations_api import OperationsApi
from .live_api import LiveApi
from .map_api import MapApi
from .participation_api import ParticipationApi
from .queues_api import QueuesApi
from .scoring_api import ScoringApi
from .web_api import WebApi


@guard                                           # size limits and security headers at the door
class GatewayService(CoreApi, WebApi, Open311Api, CasesApi, OperationsApi, ScoringApi, ParticipationApi,
                     QueuesApi, LiveApi, MapApi):
    name = "gateway"

    intake = RpcProxy("intake")
    dispatch = RpcProxy("dispatch")
    coordination = RpcProxy("coordination")
    scoring = RpcProxy("scoring")
    participation = RpcProxy("participation")
    db = storage.MongoDatabase()                 # accounts, photos
    platform_db = storage.PlatformDatabase()
    heartbeat = Heartbeat()
    config = Config()
