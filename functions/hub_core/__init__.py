"""What the functions share that is not a partner adapter: settings, AWS clients, secrets, HTTP errors, events."""
