"""Matching service: SME requests, the expert and organisation projections, the scorer and its rankings.

Layout (the same in every service): ``settings.py`` (leaf: SERVICE_NAME, MIGRATIONS_DIR, settings),
``models.py`` (tables), ``schemas.py`` (bodies), ``repository.py`` (every query), ``service.py`` (rules: who
may do what; never commits), ``routes/`` (module-level routers; the route commits), ``consumers.py`` (event
handlers and their ConsumerSpecs), ``scoring/`` (the numpy ranker), and the composition: ``app.py`` (the API
process) and ``worker.py`` (a scorer process, started by ``cli.py``: ``tsunagu worker scorer``).
"""
