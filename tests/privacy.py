"""The privacy check over a whole test run: every log record (and the output of started processes) searched for the
seeded canaries, issued tokens, licence keys and JWTs; the session fails naming the canary, the logger and the test.

How it sees every record: `logging.Logger.handle` is wrapped once per session. That is the one call every record of
every logger goes through - Powertools' JSON loggers write to the stream bound when they were made (so capsys never
sees them) and the adapters' `partners` loggers do not propagate to the root, so neither a root handler nor caplog
sees everything; `handle` does. A record is rendered as the function would emit it (its Powertools formatter,
appended keys included) and with every `extra` and the traceback, then searched.

Levels: INFO and above. INFO is the level the functions log at in Lambda (`POWERTOOLS_LOG_LEVEL: INFO` in the
template); botocore's and urllib3's DEBUG lines echo whole requests and answers (SSM's included) and are never on in
Lambda, while a test may turn them on with `caplog.set_level(DEBUG)`.

Loggers of the local stand-ins for AWS and the partners (`LOCAL_ONLY_LOGGERS`) are not searched: they never run in
production, and the sandboxes log what partners receive. Output of a started process is searched through
`scan_output`; only its JSON log lines (what the functions write) count, for the same reason.

What rests in the stack's stores is searched too (`scan_stores`): when any LocalStack of the run stops, while moto
still serves it, every item of every DynamoDB table and every message body of every queue whose name ends in `DLQ`
(and of ErasureRetryQueue, whose messages also wait for an operator) is searched for the same canaries. The
attributes that hold personal data or a secret by design are named in `STORED_ON_PURPOSE`, each with its reason;
any other attribute holding a canary is a finding. A DLQ body is also read as JSON: a field named for personal
data (`PERSONAL_FIELDS`, whatever its value, since most tests' member ids and references are not canaries) is a
finding unless `QUEUED_ON_PURPOSE` names it for that queue, with its reason.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

# Kept out of the check: local stand-ins for AWS and the partners, and the test tools themselves.
LOCAL_ONLY_LOGGERS: Final = ("werkzeug", "moto", "sandboxes", "hub_local", "hypothesis", "schemathesis", "faker")
# Generated values found by their shape, wherever they come from.
SHAPES: Final = {
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    # Pimenko MLM's documented key: an uppercase UUID, "-", and 43 alphanumerics (the sandbox issues the same).
    "licence key": re.compile(r"\b[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}-[A-Za-z0-9]{43}\b"),
    # Every API key and token the tests seed carries this mark.
    "seeded secret": re.compile(r"PRIVACY-CANARY"),
}
# (table logical id, top-level attribute) -> why it may hold personal data or a secret. Everything else in a table
# must hold ids, hashes, states and amounts only.
STORED_ON_PURPOSE: Final = {
    ("LeadsTable", "lead"): "the lead as MiiMOSA receives it, kept for the retries until its TTL or an erasure",
    ("LeadsTable", "email_key"): "the normalised e-mail erasure finds the lead by (EmailIndex)",
    ("CampaignsTable", "confirm_msisdn"): "the creator's number, for the confirm SMS; erasure removes it",
    ("LicencesTable", "licence_key"): "the licence key's one home: the shop reads it back by its order",
    (
        "LicencesTable",
        "event",
    ): "a shop order waiting its turn on LicenceRetryQueue, deleted once run (TTL 14 days)",
    ("ErasureRequestsTable", "request"): "a failed erasure's identifiers, kept (14 days at most) until it is done",
}
# The queues searched besides those whose name ends in DLQ.
QUEUES_HOLDING_WORK: Final = ("ErasureRetryQueue",)
# Field names that carry a person's data or a secret in the hub's events and requests, in either spelling.
PERSONAL_FIELDS: Final = frozenset(
    {
        "apps_miles_user_id", "appsMilesUserId", "apps_miles_signature", "appsMilesSignature", "customer_reference",
        "email", "msisdn", "confirmMsisdn", "confirm_msisdn", "phone", "firstname", "lastname", "birthdate",
        "licence_key", "key", "text",
    }
)  # fmt: skip
# (queue logical id, field) -> why a message there may carry it. Everything else in a DLQ must be ids.
QUEUED_ON_PURPOSE: Final = {
    ("LicenceRequestDLQ", "customer_reference"): "Lambda's failure record holds the shop's own LicenceRequested",
    ("LicenceRequestDLQ", "apps_miles_user_id"): "Lambda's failure record holds the shop's own LicenceRequested",
    ("LicenceRequestDLQ", "apps_miles_signature"): "Lambda's failure record holds the shop's own LicenceRequested",
    ("LicenceRequestRuleDLQ", "customer_reference"): "the shop's event EventBridge could not hand to Lambda",
    ("LicenceRequestRuleDLQ", "apps_miles_user_id"): "the shop's event EventBridge could not hand to Lambda",
    ("LicenceRequestRuleDLQ", "apps_miles_signature"): "the shop's event EventBridge could not hand to Lambda",
    ("ErasureRuleDLQ", "email"): "the back office's ErasureRequested EventBridge could not hand to Lambda",
    ("ErasureRuleDLQ", "msisdn"): "the back office's ErasureRequested EventBridge could not hand to Lambda",
    ("ErasureRuleDLQ", "appsMilesUserId"): "the back office's ErasureRequested EventBridge could not hand to Lambda",
    # Only when keeping a failed erasure failed: Lambda's failure record is its OnFailure destination's, then
    # consumed (docs/trust-model-inputs.md, "How erasure's DLQ holds ids only").
    ("ErasureRetryQueue", "email"): "Lambda's failure record of an erasure that could not even be stored",
    ("ErasureRetryQueue", "msisdn"): "Lambda's failure record of an erasure that could not even be stored",
    ("ErasureRetryQueue", "appsMilesUserId"): "Lambda's failure record of an erasure that could not even be stored",
}
_STANDARD_ATTRIBUTES: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_MIN_ISSUED_LENGTH: Final = 16


@dataclass(frozen=True)
class Finding:
    canary: str
    source: str
    test: str

    def __str__(self) -> str:
        return f"{self.canary} in {self.source} during {self.test}"


@dataclass
class LeakDetector:
    """Searches text for canaries: named fixed values, values issued during the run, and SHAPES."""

    canaries: dict[str, str] = field(default_factory=dict)
    findings: Counter[Finding] = field(default_factory=Counter)
    records: Counter[str] = field(default_factory=Counter)
    outputs: int = 0
    items: int = 0
    messages: int = 0
    stacks: int = 0
    current_test: str = "(outside any test)"
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def issued(self, kind: str, value: str) -> None:
        """A secret handed out during the run (a manage or callback token): from now on it is a canary too."""
        if len(value) >= _MIN_ISSUED_LENGTH:
            with self._lock:
                self.canaries.setdefault(value, f"issued {kind}")

    def scan(self, text: str, source: str) -> None:
        with self._lock:
            canaries = list(self.canaries.items())
        found = [name for value, name in canaries if value in text]
        found += [name for name, shape in SHAPES.items() if shape.search(text)]
        for name in found:
            self.findings[Finding(name, source, self.current_test)] += 1

    def observe(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.INFO or record.name.split(".")[0] in LOCAL_ONLY_LOGGERS:
            return
        self.records[_suite_of(self.current_test)] += 1
        self.scan(render(record), f"logger {record.name!r} ({record.levelname})")

    def scan_output(self, text: str, source: str) -> None:
        """The output of a started process: its JSON log lines are what the functions in it logged."""
        self.outputs += 1
        lines = [line for line in text.splitlines() if _is_log_line(line)]
        self.scan("\n".join(lines), f"output of {source}")

    def report(self) -> list[str]:
        """One line per finding, naming the canary, where and when; never the logged text."""
        return [f"{count}x {finding}" for finding, count in sorted(self.findings.items(), key=str)]


def stored_attribute_allowed(table: str, attribute: str) -> bool:
    return (table, attribute) in STORED_ON_PURPOSE


def scan_stores(detector: LeakDetector, stack: Any) -> None:
    """Every item of the stack's tables and every body of its DLQs (and QUEUES_HOLDING_WORK), searched for the
    canaries; the stack is stopping, so the messages are received for good."""
    dynamodb = stack.boto3_client("dynamodb")
    sqs = stack.boto3_client("sqs")
    template = stack.template
    detector.stacks += 1
    for logical_id, table in sorted(template.tables.items()):
        for page in dynamodb.get_paginator("scan").paginate(TableName=table.name):
            for item in page.get("Items", []):
                detector.items += 1
                for attribute, value in item.items():
                    if not stored_attribute_allowed(logical_id, attribute):
                        text = json.dumps(value, ensure_ascii=False)
                        detector.scan(text, f"DynamoDB {logical_id} attribute {attribute!r}")
    for logical_id, queue in sorted(template.queues.items()):
        if not (logical_id.endswith("DLQ") or queue.name.endswith("DLQ") or logical_id in QUEUES_HOLDING_WORK):
            continue
        while True:
            answer = sqs.receive_message(
                QueueUrl=queue.url, MaxNumberOfMessages=10, VisibilityTimeout=600, WaitTimeSeconds=0
            )
            received = answer.get("Messages", [])
            if not received:
                break
            for message in received:
                detector.messages += 1
                body = str(message.get("Body", ""))
                detector.scan(body, f"SQS {logical_id} message body")
                for name in sorted(_personal_fields(body)):
                    if (logical_id, name) not in QUEUED_ON_PURPOSE:
                        detector.findings[
                            Finding(f"field {name!r}", f"SQS {logical_id} message body", detector.current_test)
                        ] += 1


def _personal_fields(body: str) -> set[str]:
    """The PERSONAL_FIELDS a JSON body holds with a value, at any depth (a failure record nests the event)."""
    try:
        document = json.loads(body)
    except ValueError:
        return set()
    found: set[str] = set()
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            found |= {key for key, inner in value.items() if key in PERSONAL_FIELDS and inner not in (None, "")}
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


def named_canaries(values: Mapping[str, str]) -> dict[str, str]:
    """{value: name} for the fixed canaries (a test module's constants)."""
    return {value: name for name, value in values.items()}


def render(record: logging.LogRecord) -> str:
    """The record as the function would emit it, and every field and traceback it carries."""
    parts = [record.getMessage()]
    extras = {key: value for key, value in record.__dict__.items() if key not in _STANDARD_ATTRIBUTES}
    if extras:
        parts.append(json.dumps(extras, default=repr, ensure_ascii=False))
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        parts.append(record.stack_info)
    handler = _powertools_handler(record.name)
    if handler is not None and handler.formatter is not None:
        try:
            parts.append(handler.formatter.format(record))
        except Exception as error:  # the check must never break logging; say so in what it searches
            parts.append(f"(unformattable: {type(error).__name__})")
    return "\n".join(parts)


def _powertools_handler(name: str) -> logging.Handler | None:
    logger: logging.Logger | None = logging.getLogger(name)
    while logger is not None:
        handler = getattr(logger, "powertools_handler", None)
        if handler is not None:
            return handler  # type: ignore[no-any-return]
        logger = logger.parent
    return None


def _is_log_line(line: str) -> bool:
    if not line.startswith("{"):
        return False
    try:
        document = json.loads(line)
    except ValueError:
        return False
    return isinstance(document, dict) and "level" in document


def _suite_of(test: str) -> str:
    parts = test.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "tests" else "(outside any test)"


# ------------------------------------------------------------------------------------------- session wiring

_active: list[LeakDetector] = []
_original_handle: Callable[[logging.Logger, logging.LogRecord], None] | None = None


def _handle(self: logging.Logger, record: logging.LogRecord) -> None:
    if _active:
        try:
            _active[-1].observe(record)
        except Exception:
            _active[-1].findings[Finding("(the check itself failed)", record.name, _active[-1].current_test)] += 1
    assert _original_handle is not None
    _original_handle(self, record)


def _scan_stopping_stack(stack: Any) -> None:
    # The current detector, as for log records: a test that plants data on purpose watches with its own.
    if not _active:
        return
    detector = _active[-1]
    try:
        scan_stores(detector, stack)
    except Exception as error:
        failed = Finding(f"(the store check failed: {type(error).__name__})", "stack", detector.current_test)
        detector.findings[failed] += 1


def install(detector: LeakDetector) -> None:
    """Make `detector` see every record from now on (once per session), and every stopping stack's stores."""
    global _original_handle  # noqa: PLW0603 - one wrapper per process, like logging's own state
    from hub_local.stack import LocalStack  # noqa: PLC0415 - local/ is on the path once pytest is configured

    if _scan_stopping_stack not in LocalStack.before_moto_stops:
        LocalStack.before_moto_stops.append(_scan_stopping_stack)
    if _original_handle is None:
        _original_handle = logging.Logger.handle
        logging.Logger.handle = _handle  # type: ignore[method-assign]
    _active[:] = [detector]


def uninstall() -> None:
    global _original_handle  # noqa: PLW0603
    from hub_local.stack import LocalStack  # noqa: PLC0415

    if _scan_stopping_stack in LocalStack.before_moto_stops:
        LocalStack.before_moto_stops.remove(_scan_stopping_stack)
    if _original_handle is not None:
        logging.Logger.handle = _original_handle  # type: ignore[method-assign]
        _original_handle = None
    _active.clear()


def session_detector() -> LeakDetector | None:
    return _active[0] if _active else None


@contextmanager
def watching(detector: LeakDetector) -> Iterator[LeakDetector]:
    """Records go to `detector` instead of the session's (a test that plants a canary on purpose)."""
    _active.append(detector)
    try:
        yield detector
    finally:
        _active.remove(detector)


def scan_output(text: str, source: str) -> None:
    """For tests that start processes: search what the process wrote (its functions' log lines)."""
    detector = session_detector()
    if detector is not None:
        detector.scan_output(text, source)


def track_issued_tokens(detector: LeakDetector) -> None:
    """Every manage token and callback token issued from now on becomes a canary."""
    from hub_core import tokens  # noqa: PLC0415 - functions/ is on the path once pytest is configured

    if getattr(tokens, "_privacy_tracked", False):
        return
    original_new = tokens.new_manage_token
    original_new_callback = tokens.new_callback_token

    def new_manage_token() -> str:
        value = original_new()
        for active in _active:
            active.issued("manage token", value)
        return value

    def new_callback_token() -> str:
        value = original_new_callback()
        for active in _active:
            active.issued("callback token", value)
        return value

    tokens.new_manage_token = new_manage_token
    tokens.new_callback_token = new_callback_token
    tokens._privacy_tracked = True  # type: ignore[attr-defined]
    # The campaign lifecycle imports the functions by name: creation both tokens, management (an update) the callback's.
    from campaign_lifecycle import creation, management  # noqa: PLC0415

    creation.new_manage_token = new_manage_token  # type: ignore[attr-defined]
    creation.new_callback_token = new_callback_token  # type: ignore[attr-defined]
    management.new_callback_token = new_callback_token  # type: ignore[attr-defined]
