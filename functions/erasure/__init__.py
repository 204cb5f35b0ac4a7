"""Erasure: one person's personal data removed from every table of the hub and from app's miles, money kept."""

SERVICE = "erasure"
