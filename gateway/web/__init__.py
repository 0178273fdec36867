"""The Japanese web UI's parts (its routes: ``gateway.routes.web`` and ``web_*``; docs/web.md):

- ``pages``: ``WebDep``, what every screen needs (the caller, who may open the page, forms after the CSRF
  check, the one-time message after an action, rendering);
- ``upstream``: calls to the services on the public API paths, signed for the caller as the proxy signs;
- ``csrf``: the signed double-submit token bound to the session; ``errors``: error pages for screens;
- ``forms``: posted forms to the services' JSON bodies; ``filters``: codes to words in the templates;
- ``regional``: the map's supply and demand figures;
- ``templates/`` (Jinja2) and ``static/`` (one stylesheet, htmx vendored, the session-resume script).
"""

from pathlib import Path

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
