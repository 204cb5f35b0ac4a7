"""Schedule expressions: rate(...), cron(...) and at(...) parsed and checked as AWS checks them, and when they fire."""

from __future__ import annotations

import datetime
import re
import zoneinfo
from dataclasses import dataclass
from typing import Final, Literal

from hub_local.cfn import TemplateError

CronField = frozenset[int] | None


@dataclass(frozen=True)
class ScheduleExpression:
    """A parsed `rate(...)`, `cron(...)` or `at(...)` expression, evaluated in `timezone`.

    `cron` holds the allowed values of minutes, hours, day-of-month, month, day-of-week (1 = Sunday) and year;
    None stands for `?`. `timer_supported` is False for the cron features the local timer does not evaluate
    (L, W, #): such a schedule is still listed and runnable on demand.
    """

    text: str
    kind: Literal["rate", "cron", "at"]
    period: datetime.timedelta | None = None
    cron: tuple[CronField, ...] | None = None
    at: datetime.datetime | None = None
    timezone: str = "UTC"
    timer_supported: bool = True


_RATE: Final = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_CRON: Final = re.compile(r"cron\((.*)\)")
_AT: Final = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_UNIT_SECONDS: Final = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# minutes, hours, day-of-month, month, day-of-week, year: (low, high, names numbered from low)
_CRON_FIELDS: Final[tuple[tuple[str, int, int, tuple[str, ...]], ...]] = (
    ("minutes", 0, 59, ()),
    ("hours", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _WEEKDAYS),
    ("year", 1970, 2199, ()),
)


def parse_schedule_expression(
    text: str, where: str, *, timezone: str = "UTC", allow_at: bool = False
) -> ScheduleExpression:
    """Parse and check `rate(...)`, `cron(...)` (and `at(...)` for EventBridge Scheduler) as AWS checks them."""
    text = text.strip()
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise TemplateError(f"{where}: unknown ScheduleExpressionTimezone {timezone!r}") from None
    if match := _RATE.fullmatch(text):
        value, unit = int(match.group(1)), match.group(2)
        if value < 1 or (value == 1) != (not unit.endswith("s")):
            raise TemplateError(f"{where}: {text} is not valid (rate(1 minute), rate(5 minutes)...)")
        period = datetime.timedelta(seconds=value * _UNIT_SECONDS[unit.rstrip("s")])
        return ScheduleExpression(text, "rate", period=period, timezone=timezone)
    if match := _CRON.fullmatch(text):
        return _parse_cron(text, match.group(1), where, timezone)
    if allow_at and (match := _AT.fullmatch(text)):
        try:
            moment = datetime.datetime.fromisoformat(match.group(1))
        except ValueError:
            raise TemplateError(f"{where}: {text} is not a valid date") from None
        return ScheduleExpression(text, "at", at=moment.replace(tzinfo=zoneinfo.ZoneInfo(timezone)), timezone=timezone)
    raise TemplateError(f"{where}: {text!r} is not a rate(...) or cron(...) expression")


def _parse_cron(text: str, body: str, where: str, timezone: str) -> ScheduleExpression:
    fields = body.split()
    if len(fields) != 6:
        raise TemplateError(f"{where}: {text} must have 6 fields (minutes hours day-of-month month day-of-week year)")
    if (fields[2] == "?") == (fields[4] == "?"):
        raise TemplateError(f"{where}: {text}: exactly one of day-of-month and day-of-week must be '?'")
    values: list[CronField] = []
    timer_supported = True
    for raw, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        if raw == "?":
            values.append(None)
            continue
        if name in ("day-of-month", "day-of-week") and re.search(r"[LW#]", raw.upper()):
            if not re.fullmatch(r"[0-9A-Z,#-]+", raw.upper()):
                raise TemplateError(f"{where}: {text}: bad {name} field {raw!r}")
            timer_supported = False  # last day, nearest weekday, nth weekday: on demand only
            values.append(None)
            continue
        try:
            values.append(_cron_values(raw, low, high, names))
        except ValueError as error:
            raise TemplateError(f"{where}: {text}: bad {name} field {raw!r} ({error})") from None
    return ScheduleExpression(text, "cron", cron=tuple(values), timezone=timezone, timer_supported=timer_supported)


def _cron_values(field_text: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    def number(token: str) -> int:
        if token.upper() in names:
            return names.index(token.upper()) + low
        return int(token)

    values: set[int] = set()
    for part in field_text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError("the step must be positive")
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = number(first), number(last)
        else:
            start = number(body)
            end = high if step_text else start
        if not low <= start <= end <= high:
            raise ValueError(f"values run from {low} to {high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def next_fire_time(expression: ScheduleExpression, after: datetime.datetime) -> datetime.datetime | None:
    """The first time strictly after `after` (aware) at which the expression fires; None if it never does.

    rate(): `after` plus the period (the timer counts periods from its start, as a new rule does).
    """
    if expression.kind == "rate":
        assert expression.period is not None
        return after + expression.period
    if expression.kind == "at":
        assert expression.at is not None
        return expression.at.astimezone(datetime.UTC) if expression.at > after else None
    return _next_cron_time(expression, after)


def _next_cron_time(expression: ScheduleExpression, after: datetime.datetime) -> datetime.datetime | None:
    if not expression.timer_supported or expression.cron is None:
        return None
    minutes, hours, days, months, weekdays, years = expression.cron
    zone = zoneinfo.ZoneInfo(expression.timezone)
    # Naive wall-clock time of `zone`, one minute at a time from the minute after `after`.
    moment = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0) + datetime.timedelta(minutes=1)
    last_year = max(years) if years else 2199
    one_day = datetime.timedelta(days=1)
    while moment.year <= last_year:
        if years is not None and moment.year not in years:
            moment = datetime.datetime(moment.year + 1, 1, 1)
        elif months is not None and moment.month not in months:
            year, month = divmod(moment.month, 12)
            moment = datetime.datetime(moment.year + year, month + 1, 1)
        elif not _day_matches(moment, days, weekdays):
            moment = datetime.datetime(moment.year, moment.month, moment.day) + one_day
        elif hours is not None and moment.hour not in hours:
            moment = moment.replace(minute=0) + datetime.timedelta(hours=1)
        elif minutes is not None and moment.minute not in minutes:
            moment += datetime.timedelta(minutes=1)
        else:
            return moment.replace(tzinfo=zone).astimezone(datetime.UTC)
    return None


def _day_matches(moment: datetime.datetime, days: frozenset[int] | None, weekdays: frozenset[int] | None) -> bool:
    if days is not None:
        return moment.day in days
    # cron's day-of-week runs from 1 (Sunday) to 7 (Saturday); Python's weekday() from 0 (Monday).
    return weekdays is None or (moment.weekday() + 1) % 7 + 1 in weekdays
