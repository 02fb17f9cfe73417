"""Outbound channels (SMTP, FCM, a local outbox) and template rendering; no dramatiq, no aiohttp."""
