"""Loyalty action relay: the hub's domain events become app's miles actions, each at most once."""

SERVICE = "loyalty-relay"
