"""The gateway: the only public entry. Authentication, authorization, the JSON API (/api/v1) and the
Japanese web UI. It owns user accounts; everything else it forwards to the owning service with a
short-lived token signed for that service."""
