"""HTTP routes of the profiles service: module-level routers, thin. Each route takes what it needs in its
signature (session, caller, settings), calls service.py, and commits."""
