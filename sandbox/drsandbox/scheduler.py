"""A tiny timer wheel for delayed state transitions (RDS statuses, Backup jobs, ...).

AWS operations complete over time; the sandbox models that by scheduling the next state
instead of sleeping in the request thread. One daemon thread runs due callbacks in order.
``reset()`` drops everything pending, so a sandbox reset (or a snapshot restore) cannot be
overtaken by a transition scheduled against the state it just threw away.

Time is the sandbox's ``Clock`` (real time unless a test pauses it). ``step()`` moves the
clock forward and runs what falls due in order, in the caller's thread, so a test can see
every intermediate state: pause the clock, call PromoteReadReplica (``modifying``), step
(``rebooting``), step (``available``).

Transitions run one at a time under ``run_lock``; a step, a snapshot and a restore hold it
too, so none of them ever interleaves with a transition.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from typing import Callable

from .clock import Clock

log = logging.getLogger("drsandbox.scheduler")

# The longest a step may advance the clock: a day of virtual time.
MAX_STEP_SECONDS = 86400.0


class NothingToStep(Exception):
    """A step to "the next event" when nothing is scheduled and no deadline is noted."""


class Scheduler:
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self._heap: list[tuple[float, int, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._generation = 0
        self._cv = threading.Condition()
        self._stop = False
        # Held while a transition runs. A step holds it for all of its transitions, a
        # snapshot or restore for its whole copy, so they never see half a transition.
        self.run_lock = threading.RLock()
        # Periodic work that a step must catch up with at each virtual time it passes
        # (health-check probes, ReplicaLag publishing): set by the sandbox.
        self.periodic: Callable[[float], None] | None = None
        self.clock.watch(self._wake)
        self._thread = threading.Thread(target=self._run, name="drsandbox-scheduler", daemon=True)
        self._thread.start()

    def after(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` once, ``delay`` seconds from now on the clock (in the scheduler thread,
        or in the thread of a step that passes that time)."""
        with self._cv:
            heapq.heappush(self._heap, (self.clock.monotonic() + max(0.0, delay), next(self._seq),
                                        self._generation, fn))
            self._cv.notify()

    def reset(self) -> None:
        # Under run_lock: a transition running right now finishes first, and no transition
        # popped before the reset runs after it (its generation is checked under the lock).
        with self.run_lock:
            with self._cv:
                self._heap.clear()
                self._generation += 1
                self._cv.notify()

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout=2)

    def pending(self) -> int:
        with self._cv:
            return len(self._heap)

    def next_due(self) -> float | None:
        with self._cv:
            return self._heap[0][0] if self._heap else None

    def _wake(self) -> None:
        with self._cv:
            self._cv.notify()

    # ------------------------------------------------------------------ running
    def _pop_due(self, now: float):
        with self._cv:
            if self._heap and self._heap[0][0] <= now:
                return heapq.heappop(self._heap)
            return None

    def _call(self, item) -> bool:
        _, _, gen, fn = item
        if gen != self._generation:
            return False
        try:
            fn()
        except Exception:  # a broken transition must not kill the clock
            log.exception("scheduled transition failed")
        return True

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stop:
                    now = self.clock.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    # While paused nothing new falls due: sleep until the clock moves
                    # (the clock's watcher wakes us), or a second passes.
                    timeout = 1.0 if (not self._heap or self.clock.paused) else min(self._heap[0][0] - now, 1.0)
                    self._cv.wait(timeout=timeout)
                if self._stop:
                    return
            # Pop only under run_lock: a step running transitions in another thread keeps
            # their order, and a restore drops what was popped before it.
            with self.run_lock:
                item = self._pop_due(self.clock.monotonic())
                if item is not None:
                    self._call(item)

    # ------------------------------------------------------------------ stepping
    def step(self, seconds: float | None = None) -> dict:
        """Advance the clock and run, in order and in this thread, every transition that
        falls due; periodic work (health checks, ReplicaLag) catches up as time passes.

        ``seconds=None``: to the next event (the next scheduled transition or noted
        deadline), running every transition due at that time; NothingToStep if there is
        none. Otherwise by ``seconds`` (0 runs what is due now)."""
        with self.run_lock:
            start = self.clock.monotonic()
            if seconds is None:
                candidates = [t for t in (self.next_due(), self.clock.next_deadline()) if t is not None]
                if not candidates:
                    raise NothingToStep("nothing to step to: no transition is scheduled and no deadline is pending")
                target = max(start, min(candidates))
            else:
                target = start + max(0.0, min(float(seconds), MAX_STEP_SECONDS))
            ran = 0
            while True:
                due = self.next_due()
                if due is None or due > target:
                    break
                self.clock.advance_to(due)
                self._catch_up(due)
                # Pop by the due time itself: a running clock read back after advance_to may
                # differ from ``due`` in the last bit.
                item = self._pop_due(due)
                if item is not None and self._call(item):
                    ran += 1
            self.clock.advance_to(target)
            self._catch_up(max(target, self.clock.monotonic()))
            now = self.clock.monotonic()
            return {"advanced": round(now - start, 6), "ran": ran}

    def _catch_up(self, now: float) -> None:
        if self.periodic is not None:
            try:
                self.periodic(now)
            except Exception:
                log.exception("periodic catch-up failed")
