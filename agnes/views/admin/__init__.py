"""Admin pages (HTMX): groups, users, tokens."""
