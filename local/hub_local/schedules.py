"""Schedules locally: what an EventBridge/Scheduler schedule sends, and the timer thread that fires them."""

from __future__ import annotations

import datetime
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Sequence

from hub_local.cfn import ACCOUNT_ID, REGION
from hub_local.cron import next_fire_time
from hub_local.event_targets import PLACEHOLDER, iso_time, render_target_input
from hub_local.specs import ScheduleSpec
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
