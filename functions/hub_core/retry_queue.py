"""A function's own retry queue: a message of ids (never personal data) sent with a delay SQS allows."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from hub_core import aws

# SQS delays a message by 15 minutes at most; a longer wait is the queue's next delivery, not a longer delay.
MAX_DELAY_SECONDS = 900

# A retry message: its body and its delay in seconds (clamped to 0..MAX_DELAY_SECONDS).
RetrySender = Callable[[Mapping[str, Any], int], None]


def retry_sender(queue_url: str) -> RetrySender:
    def send(body: Mapping[str, Any], delay_seconds: int) -> None:
        # The SQS client is looked up on each send: hub_core.aws caches it, and a reset of that cache is honoured.
        aws.sqs().send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps(body),
            DelaySeconds=min(max(int(delay_seconds), 0), MAX_DELAY_SECONDS),
        )

    return send
