"""Herald's data: peewee models, their queries (``models.dao``) and Redis key names."""
