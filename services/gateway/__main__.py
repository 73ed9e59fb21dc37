from shared.runner import run  # noqa: I001  (patches eventlet first)
from shared.config import load_config
from services.gateway.service import GatewayService

config = load_config()
config["WEB_SERVER_ADDRESS"] = f"{config['GATEWAY_HOST']}:{config['GATEWAY_PORT']}"
run(GatewayService, config)
