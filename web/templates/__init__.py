"""The template service (port 8002): versioned Jinja templates per (code, language), and rendering."""
