"""The console's URL table, relative to ``/admin`` (README, "Operator console")."""

from __future__ import annotations

from web.console.views import auth, dead_letters, integrations, notifications, overview, templates, users

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
    ("GET", "/api-keys", integrations.keys_listing, None),
    ("POST", "/api-keys", integrations.key_create, None),
    ("POST", "/api-keys/{key_id}/revoke", integrations.key_revoke, None),
    ("GET", "/webhooks", integrations.hooks_listing, None),
    ("POST", "/webhooks", integrations.hook_create, None),
    ("GET", "/webhooks/{webhook_id}", integrations.hook_detail, None),
    ("GET", "/webhooks/{webhook_id}/delete", integrations.hook_delete_confirm, None),
    ("POST", "/webhooks/{webhook_id}/delete", integrations.hook_delete, None),
]
