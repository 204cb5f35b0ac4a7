"""Campaign lifecycle: personal SMS donation campaigns created, changed and stopped on LinkMobility's Umbrella."""

SERVICE = "campaign-lifecycle"
