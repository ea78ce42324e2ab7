"""Progress lines with counts and rates for the long CLI steps (evaluate, export, scoring).

Training has Keras' own progress bar; everything else that takes time reports through
:class:`Progress` on stderr, so stdout keeps only results::

    scoring 1024/4000 images (512 images/s)
    scoring 4000/4000 images in 7.8 s (513 images/s)

On a terminal the line is redrawn in place; in a log file (not a TTY) a line is written at
most every ``log_interval`` seconds and at the end, so logs stay short.
"""

from __future__ import annotations

import contextlib
import sys
import time


class Progress:
    """A counter with a rate, printed as ``<label> <done>/<total> <unit> (<rate> <unit>/s)``.

    Args:
        label: What is being counted, e.g. ``"scoring"``.
        total: The expected count (``None`` when unknown).
        unit: The counted thing, plural (``"images"``).
        enabled: ``False`` makes every call a no-op (``--quiet``).
        stream: Where to write (default ``sys.stderr``).
        log_interval: Seconds between lines when ``stream`` is not a terminal.
        initial: Items already done before this run (a resume): counted, not in the rate.
    """

    def __init__(self, label: str, total: int | None = None, unit: str = "images", enabled: bool = True,
                 stream=None, log_interval: float = 10.0, initial: int = 0):
        self.label, self.total, self.unit, self.enabled = label, total, unit, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_interval = log_interval
        self.done = self.initial = int(initial)
        self.t0 = time.perf_counter()
        self._last = self.t0

    def rate(self) -> float:
        return (self.done - self.initial) / max(time.perf_counter() - self.t0, 1e-9)

    def _count(self) -> str:
        return f"{self.done}/{self.total}" if self.total is not None else str(self.done)

    def update(self, n: int = 1) -> None:
        self.done += int(n)
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.tty:
            print(f"\r{self.label} {self._count()} {self.unit} ({self.rate():.1f} {self.unit}/s)", end="",
                  file=self.stream, flush=True)
        elif now - self._last >= self.log_interval:
            print(f"{self.label} {self._count()} {self.unit} ({self.rate():.1f} {self.unit}/s)",
                  file=self.stream, flush=True)
            self._last = now

    def close(self, note: str = "") -> float:
        """Prints the final line (count, elapsed time, rate); returns the elapsed seconds."""
        elapsed = time.perf_counter() - self.t0
        if self.enabled:
            print(("\r" if self.tty else "") + f"{self.label} {self._count()} {self.unit} in {elapsed:.1f} s "
                  f"({self.rate():.1f} {self.unit}/s){note}", file=self.stream, flush=True)
        return elapsed


@contextlib.contextmanager
def stage(label: str, enabled: bool = True, stream=None):
    """Times one step without a count: prints ``<label> ...`` then ``<label>: <s> s``."""
    stream = stream if stream is not None else sys.stderr
    t0 = time.perf_counter()
    if enabled:
        print(f"{label} ...", file=stream, flush=True)
    yield
    if enabled:
        print(f"{label}: {time.perf_counter() - t0:.1f} s", file=stream, flush=True)
