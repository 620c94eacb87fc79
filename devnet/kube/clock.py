"""The emulator's notion of "now": wall time plus an offset tests can advance.

Progress deadlines are measured on this clock, so a test can cross `progressDeadlineSeconds` with
`advance(seconds)` instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class Clock:
    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.time() + self._offset

    @property
    def offset(self) -> float:
        return self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    def rfc3339(self, at: float | None = None) -> str:
        """Second precision with a `Z`, the apiserver's metav1.Time format."""
        moment = self.now() if at is None else at
        return datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @staticmethod
    def parse(stamp: str | None) -> float | None:
        if not stamp:
            return None
        try:
            return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return None
