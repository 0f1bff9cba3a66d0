"""The sandbox's clock: the time every emulated AWS process is measured against.

Everything time-driven in the sandbox (scheduled transitions, CloudFront deployments and
invalidations, Route 53 change propagation, DynamoDB CREATING tables and idempotency tokens,
health-check intervals, ReplicaLag publishing and catch-up, outage lag) reads
``Clock.monotonic()`` instead of ``time.monotonic()``. By default the clock *is* real time
(``time.monotonic()`` plus an offset of 0), so nothing changes for drctl's own tests.

Two things need more than real time:

* A test that wants to see every intermediate state (PromoteReadReplica answers
  ``modifying``, then ``rebooting``, then ``available``) cannot race a real clock on a loaded
  machine. It pauses the clock (time stands still: nothing that is not due yet happens) and
  steps it (the scheduler runs what falls due, in order; see ``Scheduler.step``).
* A snapshot restore puts the clock back to the time of the save, so every deadline stored
  in the restored state (a distribution still InProgress, a change still PENDING, a new
  replica's catch-up) has exactly the time left that it had when it was saved.

Timestamps in answers (CreationDate, CheckedTime, datapoint timestamps, the call log's
``time``) stay wall-clock times: the clock measures durations, it is not a fake calendar.

Deadlines that are not scheduled callbacks (a CloudFront deployment ends when the clock
passes ``done_at``) are *noted* here, so that "step to the next event" can stop at them.
"""

from __future__ import annotations

import heapq
import threading
import time
from typing import Callable


class Clock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0               # virtual = time.monotonic() + offset, while running
        self._paused_at: float | None = None  # the frozen virtual time, while paused
        self._deadlines: list[float] = []     # a heap of noted deadlines (virtual times)
        self._watchers: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ reading
    def monotonic(self) -> float:
        with self._lock:
            return self._now()

    def _now(self) -> float:
        return self._paused_at if self._paused_at is not None else time.monotonic() + self._offset

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    # ------------------------------------------------------------------ moving it
    def watch(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` whenever the clock is paused, resumed, moved or set (the scheduler
        re-evaluates what is due)."""
        self._watchers.append(fn)

    def _changed(self) -> None:
        for fn in list(self._watchers):
            fn()

    def pause(self) -> None:
        with self._lock:
            if self._paused_at is None:
                self._paused_at = time.monotonic() + self._offset
        self._changed()

    def resume(self) -> None:
        with self._lock:
            if self._paused_at is not None:
                # Carry on from the frozen time: virtual time never jumps when resuming.
                self._offset = self._paused_at - time.monotonic()
                self._paused_at = None
        self._changed()

    def advance_to(self, t: float) -> None:
        """Move the clock forward to ``t`` (never backwards: a no-op if it is already past)."""
        with self._lock:
            now = self._now()
            if t > now:
                self._set(t)
        self._changed()

    def set(self, t: float, paused: bool | None = None) -> None:
        """Put the clock at ``t``, backwards too (a snapshot restore), optionally changing
        whether it runs."""
        with self._lock:
            if paused is True:
                self._paused_at = t
            elif paused is False:
                self._paused_at = None
                self._offset = t - time.monotonic()
            else:
                self._set(t)
        self._changed()

    def _set(self, t: float) -> None:
        if self._paused_at is not None:
            self._paused_at = t
        else:
            self._offset = t - time.monotonic()

    # ------------------------------------------------------------------ deadlines
    def note(self, t: float) -> None:
        """Remember that something changes at virtual time ``t`` (a step can stop there)."""
        with self._lock:
            heapq.heappush(self._deadlines, t)

    def next_deadline(self) -> float | None:
        """The earliest noted deadline still in the future, or None."""
        with self._lock:
            now = self._now()
            while self._deadlines and self._deadlines[0] <= now:
                heapq.heappop(self._deadlines)
            return self._deadlines[0] if self._deadlines else None

    # ------------------------------------------------------------------ snapshot
    def state(self) -> dict:
        with self._lock:
            now = self._now()
            return {"now": now, "paused": self._paused_at is not None,
                    "deadlines": sorted(t for t in self._deadlines if t > now)}

    def restore(self, saved: dict) -> None:
        with self._lock:
            self._deadlines = list(saved["deadlines"])
            heapq.heapify(self._deadlines)
        self.set(saved["now"], paused=saved["paused"])

    def reset(self) -> None:
        """A sandbox reset: real time again (resumed, from where it is), no deadlines."""
        with self._lock:
            self._deadlines = []
        self.resume()
