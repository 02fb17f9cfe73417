"""``python -m web.templates``: the template service on ``TEMPLATES_PORT``."""

from web.common.run import run_service
from web.templates.app import create_app

if __name__ == "__main__":
    run_service(create_app, service="templates", port_of=lambda s: s.templates_port)
