"""A tiny timer wheel for delayed state transitions (RDS statuses, Backup jobs, ...).

AWS operations complete over time; the sandbox models that by scheduling the next state
instead of sleeping in the request thread. One daemon thread runs due callbacks in order.
``reset()`` drops everything pending, so a sandbox reset cannot be overtaken by a transition
scheduled against the state it just threw away.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Callable

log = logging.getLogger("drsandbox.scheduler")


class Scheduler:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._generation = 0
        self._cv = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="drsandbox-scheduler", daemon=True)
        self._thread.start()

    def after(self, delay: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` once, ``delay`` seconds from now (in the scheduler thread)."""
        with self._cv:
            heapq.heappush(self._heap, (time.monotonic() + max(0.0, delay), next(self._seq),
                                        self._generation, fn))
            self._cv.notify()

    def reset(self) -> None:
        with self._cv:
            self._heap.clear()
            self._generation += 1

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout=2)

    def pending(self) -> int:
        with self._cv:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stop:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    timeout = (self._heap[0][0] - now) if self._heap else 1.0
                    self._cv.wait(timeout=min(timeout, 1.0))
                if self._stop:
                    return
                _, _, gen, fn = heapq.heappop(self._heap)
                if gen != self._generation:
                    continue
            try:
                fn()
            except Exception:  # a broken transition must not kill the clock
                log.exception("scheduled transition failed")
