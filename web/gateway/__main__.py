from web.common.run import run_service
from web.gateway.app import create_app

run_service(create_app, service="gateway", port_of=lambda s: s.gateway_port)
