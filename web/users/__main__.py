"""``python -m web.users``: the user service on ``USERS_PORT``."""

from web.common.run import run_service
from web.users.app import create_app

if __name__ == "__main__":
    run_service(create_app, service="users", port_of=lambda s: s.users_port)
