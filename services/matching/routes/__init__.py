"""The matching service's HTTP routes: one module-level ``router`` per resource (app.py mounts them)."""
