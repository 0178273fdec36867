"""The HTTP routes of the search service, one module-level router per module (app.py includes them)."""
