"""Donation-callback ingester: Umbrella's donations recorded exactly once, folded into campaign totals, reconciled."""

SERVICE = "donation-ingester"
