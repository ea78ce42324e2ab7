"""Server-side batching for the local server, driven by TF Serving's ``batching_parameters.txt``.

The real server (``--enable_batching --batching_parameters_file``) queues concurrent Predict
calls per signature, concatenates their inputs on dim 0 into one session run of at most
``max_batch_size`` rows, pads the batch up to the next ``allowed_batch_sizes`` entry, and slices
every output back per request -- which is why every output of our signatures is batch-major.
:class:`BatchScheduler` does the same over one :class:`~tf_fanogan.serving.servable.Servable`.
Requests are only batched with others of the same signature, outputs, dtypes and per-example
shape, so a malformed request fails alone instead of failing the batch it would have joined.
With ``enable_large_batch_splitting``, as in TF Serving, ``max_batch_size`` bounds a request and
``max_execution_batch_size`` a batch run: a larger request is split into pieces that are
batched like any others and its outputs put back together in order.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from tf_fanogan.serving.servable import ServingError


@dataclass
class BatchingParameters:
    """The fields of TF Serving's ``BatchingParameters`` that the local server honours."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    allowed_batch_sizes: list[int] = field(default_factory=list)
    pad_variable_length_inputs: bool = False
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int = 0  # with splitting: the largest batch run (0: max_batch_size)

    @property
    def execution_batch_size(self) -> int:
        """The largest batch actually run: ``max_execution_batch_size`` when large batches are
        split, else ``max_batch_size`` (which then also bounds a request)."""
        if self.enable_large_batch_splitting and self.max_execution_batch_size:
            return self.max_execution_batch_size
        return self.max_batch_size

    def __post_init__(self):
        if self.max_batch_size < 1 or self.num_batch_threads < 1 or self.max_enqueued_batches < 1:
            raise ValueError("max_batch_size, num_batch_threads and max_enqueued_batches must be positive")
        if self.batch_timeout_micros < 0:
            raise ValueError("batch_timeout_micros must be >= 0")
        sizes = self.allowed_batch_sizes
        if sizes:
            if sizes != sorted(set(sizes)) or sizes[0] < 1:
                raise ValueError(f"allowed_batch_sizes must be positive and strictly increasing, got {sizes}")
            if sizes[-1] != self.execution_batch_size:
                which = ("max_execution_batch_size" if self.execution_batch_size != self.max_batch_size
                         else "max_batch_size")
                raise ValueError(f"The last entry in allowed_batch_sizes must match {which}; "
                                 f"last entry was {sizes[-1]}; expected {self.execution_batch_size}")
        if self.max_execution_batch_size < 0 or self.max_execution_batch_size > self.max_batch_size:
            raise ValueError(f"max_execution_batch_size must lie in 1..max_batch_size ({self.max_batch_size}), "
                             f"got {self.max_execution_batch_size}")
        if self.pad_variable_length_inputs:
            raise ValueError("pad_variable_length_inputs is not supported by the local server")


_WRAPPED = {"max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
            "max_execution_batch_size"}
_BOOLS = {"pad_variable_length_inputs", "enable_large_batch_splitting"}
_IGNORED = {"thread_pool_name"}


def parse_batching_parameters(text: str, source: str = "batching parameters") -> BatchingParameters:
    """Parses the text proto TF Serving reads with ``--batching_parameters_file``.

    Raises:
        ValueError: naming the file and the field on anything unknown or malformed.
    """
    values: dict = {"allowed_batch_sizes": []}
    body = re.sub(r"#[^\n]*", "", text)
    pos = 0
    token = re.compile(r"\s*(?:(?P<name>\w+)\s*(?::\s*(?P<scalar>[\w.\"]+)|\{\s*value\s*:\s*(?P<wrapped>[\w.\"]+)\s*\})"
                       r"|(?P<end>\Z))")
    while True:
        m = token.match(body, pos)
        if m is None:
            snippet = body[pos:pos + 40].strip().splitlines()[0] if body[pos:].strip() else ""
            raise ValueError(f"{source}: cannot parse near {snippet!r}")
        if m.group("end") is not None:
            break
        pos = m.end()
        name, raw = m.group("name"), m.group("scalar") or m.group("wrapped")
        if name in _IGNORED:
            continue
        if name == "allowed_batch_sizes":
            values[name].append(_int(raw, name, source))
        elif name in _BOOLS:
            if raw.lower() not in ("true", "false"):
                raise ValueError(f"{source}: field {name} wants true or false, got {raw!r}")
            values[name] = raw.lower() == "true"
        elif name in _WRAPPED:
            values[name] = _int(raw, name, source)
        else:
            raise ValueError(f"{source}: unknown field {name!r}")
    try:
        return BatchingParameters(**values)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None


def _int(raw: str, name: str, source: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{source}: field {name} wants an integer, got {raw!r}") from None


class _Task:
    __slots__ = ("feeds", "size", "enqueued", "done", "result", "error")

    def __init__(self, feeds: dict, size: int):
        self.feeds = feeds
        self.size = size
        self.enqueued = time.monotonic()
        self.done = threading.Event()
        self.result = None
        self.error = None


class BatchScheduler:
    """Forms batches from concurrent calls and runs them with ``execute(feeds, fetches)``.

    ``stats`` counts batches, tasks, padding rows and the largest batch run (for tests and the
    benchmark to show that batching really happened).
    """

    def __init__(self, execute, params: BatchingParameters, name: str = "batcher"):
        self.execute = execute
        self.params = params
        self._queues: dict[tuple, deque] = {}
        self._cv = threading.Condition()
        self._stopped = False
        self.stats = {"batches": 0, "tasks": 0, "padding_rows": 0, "largest_batch": 0}
        self._threads = [threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True)
                         for i in range(params.num_batch_threads)]
        for t in self._threads:
            t.start()

    def submit(self, feeds: dict, fetches: list) -> list:
        """Blocks until the call's rows have run in some batch; returns its outputs."""
        sizes = {v.shape[0] for v in feeds.values()}
        if len(sizes) != 1:
            raise ServingError("INVALID_ARGUMENT",
                               f"Batching session Run() input tensors must have equal 0th-dimension size; got {sorted(sizes)}")
        size = sizes.pop()
        if size > self.params.max_batch_size:
            raise ServingError("INVALID_ARGUMENT",
                               f"Task size {size} is larger than maximum input batch size {self.params.max_batch_size}")
        if size == 0:
            return self.execute(feeds, fetches)
        key = (tuple(fetches),) + tuple(sorted((k, v.dtype.str, v.shape[1:]) for k, v in feeds.items()))
        step = self.params.execution_batch_size  # a larger task is split, as enable_large_batch_splitting does
        tasks = [_Task({k: v[lo:lo + step] for k, v in feeds.items()}, min(step, size - lo))
                 for lo in range(0, size, step)]
        exec_size = self.params.execution_batch_size
        with self._cv:
            if self._stopped:
                raise ServingError("UNAVAILABLE", "Servable is being unloaded")
            queue = self._queues.setdefault(key, deque())
            queued_rows = sum(t.size for t in queue) + size
            if math.ceil(queued_rows / exec_size) > self.params.max_enqueued_batches:
                raise ServingError("UNAVAILABLE", "The batch scheduling queue to which this task was submitted is full")
            queue.extend(tasks)
            self._cv.notify_all()
        for task in tasks:
            task.done.wait()
        for task in tasks:
            if task.error is not None:
                raise task.error
        if len(tasks) == 1:
            return tasks[0].result
        return [np.concatenate([t.result[i] for t in tasks], axis=0) for i in range(len(fetches))]

    # ---------------------------------------------------------------- batch threads
    def _take(self):
        """Under the lock: the next ready batch (key, tasks), or the seconds to wait."""
        timeout = self.params.batch_timeout_micros / 1e6
        now = time.monotonic()
        wait = None
        for key, queue in sorted(self._queues.items(), key=lambda kv: kv[1][0].enqueued if kv[1] else math.inf):
            if not queue:
                continue
            rows = sum(t.size for t in queue)
            age = now - queue[0].enqueued
            exec_size = self.params.execution_batch_size
            if rows >= exec_size or age >= timeout or self._stopped:
                tasks, total = [], 0
                while queue and total + queue[0].size <= exec_size:
                    total += queue[0].size
                    tasks.append(queue.popleft())
                if not queue:
                    del self._queues[key]
                return key, tasks
            left = timeout - age
            wait = left if wait is None else min(wait, left)
        return wait

    def _loop(self):
        while True:
            with self._cv:
                while True:
                    got = self._take()
                    if isinstance(got, tuple):
                        break
                    if self._stopped:
                        return
                    self._cv.wait(got)
            key, tasks = got
            self._run(list(key[0]), tasks)

    def _run(self, fetches: list, tasks: list) -> None:
        total = sum(t.size for t in tasks)
        target = next((s for s in self.params.allowed_batch_sizes if s >= total), total)
        try:
            feeds = {}
            for name in tasks[0].feeds:
                parts = [t.feeds[name] for t in tasks]
                if target > total:  # pad by repeating the first row; padded rows are dropped below
                    first = parts[0][:1]
                    parts.append(np.repeat(first, target - total, axis=0))
                feeds[name] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
            values = self.execute(feeds, fetches)
            for fetch, value in zip(fetches, values):
                if np.ndim(value) == 0 or np.shape(value)[0] != target:
                    raise ServingError("INTERNAL", f"Batched output tensor {fetch} is not batch-major: "
                                                   f"shape {np.shape(value)} for a batch of {target}")
            offset = 0
            for t in tasks:
                t.result = [v[offset:offset + t.size] for v in values]
                offset += t.size
        except ServingError as e:
            for t in tasks:
                t.error = e
        except Exception as e:  # never leave a caller waiting forever
            for t in tasks:
                t.error = ServingError("INTERNAL", f"batch run failed: {e}")
        with self._cv:
            self.stats["batches"] += 1
            self.stats["tasks"] += len(tasks)
            self.stats["padding_rows"] += target - total
            self.stats["largest_batch"] = max(self.stats["largest_batch"], total)
        for t in tasks:
            t.done.set()

    def stop(self) -> None:
        """Runs what is queued, then stops the batch threads."""
        with self._cv:
            self._stopped = True
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout=30)
