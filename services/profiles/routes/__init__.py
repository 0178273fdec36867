"""HTTP routes of the profiles service: thin, they read the request and call service.ProfilesService."""
