"""The gateway's HTTP routes, one module-level router per domain: ``users`` (sign-up, sign-in, the caller's
account, accounts an admin creates), ``notifications`` (what the caller was told), ``admin`` (dead letters),
``reference`` (reference data), ``proxy`` (everything the services own) and ``web`` (the Japanese web UI).
``gateway.app`` composes them. The web UI's other screens are one router per area (issue 10): ``web_auth``
(/login, /register, /logout), ``web_sme`` (/requests), ``web_expert`` (/me/...), ``web_engagements``,
``web_broker`` (/broker, /map), ``web_notifications``, ``web_admin`` (/admin) and ``web_hub`` (/hub); their
shared parts are in ``gateway.web`` (docs/web.md)."""
