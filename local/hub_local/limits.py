"""The limits of Lambda and HTTP APIs that the local runner enforces, so that code is held to them before AWS does."""

from __future__ import annotations

from typing import Final

# HTTP API quotas (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html): the maximum
# integration timeout (not increasable) and the payload size.
HTTP_API_INTEGRATION_TIMEOUT: Final = 30.0
HTTP_API_MAX_PAYLOAD_BYTES: Final = 10 * 1024 * 1024
# What HTTP API answers itself when the integration does not answer in time, or answers with no usable response.
SERVICE_UNAVAILABLE: Final = b'{"message":"Service Unavailable"}'
TOO_LARGE: Final = b'{"message":"Request Entity Too Large"}'


class FunctionTimedOut(Exception):
    """An invocation ran past its function's Timeout: Lambda would have stopped it, so its result never counts."""

    def __init__(self, function: str, timeout: float) -> None:
        # Lambda's own words for it (the error of an asynchronous invocation, the Invoke API's FunctionError).
        super().__init__(f"Task timed out after {timeout:.2f} seconds")
        self.function = function
        self.timeout = timeout
