"""API docs: serves the HTTP API's OpenAPI document."""

SERVICE = "api-docs"
