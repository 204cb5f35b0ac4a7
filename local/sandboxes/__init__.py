"""Loopback HTTP stand-ins for the partner APIs, used by the tests and by the local runner."""
