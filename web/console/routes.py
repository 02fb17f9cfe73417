"""The console's URL table, relative to ``/admin`` (README, "Operator console").

API keys (``/api-keys``) and webhooks (``/webhooks``) join this table, and the navigation in
:mod:`web.console.pages`, when those features land.
"""

from __future__ import annotations

from web.console.views import auth, dead_letters, notifications, overview, templates, users

#: (method, path, handler, name); a name is given where the session middleware needs to know it.
ROUTES = [
    ("GET", "/login", auth.login_page, "login"),
    ("POST", "/login", auth.login, "login"),
    ("POST", "/logout", auth.logout, None),
    ("GET", "/", overview.overview, None),
    ("GET", "/overview/live", overview.overview_live, None),
    ("GET", "/notifications", notifications.listing, None),
    ("GET", "/notifications/{notification_id}", notifications.detail, None),
    ("POST", "/notifications/{notification_id}/cancel", notifications.cancel, None),
    ("GET", "/dead-letters", dead_letters.listing, None),
    ("POST", "/dead-letters/replay-all", dead_letters.replay_all, None),
    ("GET", "/dead-letters/purge", dead_letters.purge_confirm, None),
    ("POST", "/dead-letters/purge", dead_letters.purge, None),
    ("POST", "/dead-letters/{notification_id}/replay", dead_letters.replay, None),
    ("GET", "/templates", templates.listing, None),
    ("GET", "/templates/{code}", templates.detail, None),
    ("POST", "/templates/{code}", templates.save, None),
    ("POST", "/templates/{code}/preview", templates.preview_page, None),
    ("POST", "/templates/{code}/restore", templates.restore, None),
    ("GET", "/templates/{code}/diff", templates.diff, None),
    ("GET", "/users", users.listing, None),
    ("GET", "/users/{user_id}", users.detail, None),
    ("POST", "/users/{user_id}/deactivate", users.deactivate, None),
]
