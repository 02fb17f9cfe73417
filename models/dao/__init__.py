"""The only place queries live: one module per entity."""
