"""Fault tests: a private system per test, whose processes are killed, frozen and restarted (issue 13)."""
