"""The API gateway (8000): the send pipeline, status reads, and forwarding to the other services."""
