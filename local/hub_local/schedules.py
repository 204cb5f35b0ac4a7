"""Schedules locally: when an EventBridge/Scheduler expression fires next, what it sends, the timer thread."""

from __future__ import annotations

import datetime
import sys
import time
import traceback
import uuid
import zoneinfo
from collections.abc import Callable, Sequence

from hub_local.event_targets import PLACEHOLDER, iso_time, render_target_input
from hub_local.template import ACCOUNT_ID, REGION, ScheduleExpression, ScheduleSpec
from hub_local.workers import StoppableThreads


def scheduled_event_text(schedule: ScheduleSpec, when: datetime.datetime) -> str:
    """What a schedule sends at `when`: its Input, or EventBridge's "Scheduled Event" (Scheduler's for V2)."""
    if schedule.kind == "ScheduleV2" and schedule.target.input is not None:
        context = {
            "aws.scheduler.schedule-arn": schedule.arn,
            "aws.scheduler.scheduled-time": iso_time(when),
            "aws.scheduler.execution-id": str(uuid.uuid4()),
            "aws.scheduler.attempt-number": "1",
        }
        return PLACEHOLDER.sub(lambda match: context.get(match.group(1), match.group(0)), schedule.target.input)
    envelope = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": schedule.source,
        "account": ACCOUNT_ID,
        "time": iso_time(when),
        "region": REGION,
        "resources": [schedule.arn],
        # EventBridge Scheduler's default notification carries its detail as a string.
        "detail": "{}" if schedule.kind == "ScheduleV2" else {},
    }
    return render_target_input(schedule.target, envelope, schedule.name, schedule.arn)


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


Fire = Callable[[ScheduleSpec, datetime.datetime], None]


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class ScheduleTimer(StoppableThreads):
    """Fires the enabled schedules the timer can evaluate. Schedule time runs `time_scale` times faster than real
    time (600: a rate(1 minute) schedule fires every 0.1 s); `clock` gives the starting time."""

    def __init__(
        self,
        schedules: Sequence[ScheduleSpec],
        fire: Fire,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], datetime.datetime] = _utc_now,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        super().__init__()
        self.schedules = [s for s in schedules if s.enabled and s.expression.timer_supported]
        self.fire = fire
        self.time_scale = time_scale
        self.clock = clock
        self._origin = clock()
        self._origin_monotonic = time.monotonic()

    def now(self) -> datetime.datetime:
        """Schedule time: the clock's start plus real time elapsed, scaled."""
        elapsed = (time.monotonic() - self._origin_monotonic) * self.time_scale
        return self._origin + datetime.timedelta(seconds=elapsed)

    def start(self) -> ScheduleTimer:
        self._origin = self.clock()
        self._origin_monotonic = time.monotonic()
        self._start_threads(self._run, ["hub-local-schedules"])
        return self

    def _run(self) -> None:
        due: dict[int, tuple[ScheduleSpec, datetime.datetime]] = {}
        for index, schedule in enumerate(self.schedules):
            first = next_fire_time(schedule.expression, self._origin)
            if first is not None:
                due[index] = (schedule, first)
        while due and not self._stopping.is_set():
            index, (schedule, when) = min(due.items(), key=lambda item: item[1][1])
            wait = (when - self.now()).total_seconds() / self.time_scale
            if wait > 0:
                self._stopping.wait(min(wait, 1.0))
                continue
            try:
                self.fire(schedule, when)
            except Exception:  # one failing schedule does not stop the others
                print(f"schedule {schedule.name}: firing failed", file=sys.stderr)
                traceback.print_exc(file=sys.stderr)
            following = next_fire_time(schedule.expression, when)
            if following is not None and following <= self.now():
                following = next_fire_time(schedule.expression, self.now())  # no burst to catch up
            if following is None:
                del due[index]
            else:
                due[index] = (schedule, following)
