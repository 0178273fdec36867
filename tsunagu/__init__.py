"""Tsunagu shared kernel: settings, database, events, outbox, NATS, tokens, errors, logging.

Only infrastructure lives here. Domain models belong to one service each and are never imported across
services; services learn of each other's changes through the event contracts in ``tsunagu.contracts``.
"""
