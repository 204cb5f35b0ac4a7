"""Licence issuance: one Pimenko MLM licence per shop order, from an event or a server-to-server call."""

SERVICE = "licence-issuance"
