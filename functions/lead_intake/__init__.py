"""Lead intake: website leads validated, stored, and forwarded to MiiMOSA exactly as far as MiiMOSA allows."""

SERVICE = "lead-intake"
