"""The `hub` command line for the people who run partner hub: invoke, events, dead-letter queues, secrets, reconcile."""
