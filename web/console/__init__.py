"""The operator console: server-rendered pages at ``/admin/`` on the gateway (README, "Operator console")."""

from web.console.app import setup_console

__all__ = ["setup_console"]
