"""The user service (port 8001): profiles, preferences, roles and login."""
