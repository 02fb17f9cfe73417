"""The OpenAPI 3 document of the whole API (placeholder until the full document lands)."""


def document() -> dict:
    return {"openapi": "3.0.3", "info": {"title": "Herald", "version": "1.0.0"}, "paths": {}}
