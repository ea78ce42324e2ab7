"""Resumable units of work for the long benchmarks.

A benchmark is a list of units (say, one data set x method x seed); each unit's result is a
JSON file written atomically under ``<out>/units/`` when the unit finishes, so a run killed at
any point and started again skips the finished units and redoes only the one it was in (whose
detector training itself resumes per epoch from its work directory).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class Units:
    """Finished units of one benchmark, one JSON file each under ``<out>/units/``."""

    def __init__(self, out: str):
        self.dir = os.path.join(out, "units")
        os.makedirs(self.dir, exist_ok=True)

    def path(self, key: str) -> str:
        return os.path.join(self.dir, key.replace("/", "__") + ".json")

    def get(self, key: str):
        try:
            with open(self.path(key)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: dict) -> dict:
        return self._write(key, {**value, "unit": key, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                                 "commit": git_commit()})

    def _write(self, key: str, value: dict) -> dict:
        tmp = self.path(key) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(value, f, indent=2, default=float)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path(key))
        return value

    def amend(self, key: str, extra: dict) -> dict:
        """Adds figures to a finished unit, keeping its commit and time; the amending commit is
        recorded under ``amended``."""
        value = self.get(key)
        value.update(extra)
        value.setdefault("amended", []).append({"keys": sorted(extra), "commit": git_commit(),
                                                "at": time.strftime("%Y-%m-%d %H:%M:%S")})
        return self._write(key, value)

    def run(self, key: str, fn) -> dict:
        """The unit's stored result, or ``fn()``'s, stored."""
        done = self.get(key)
        if done is not None:
            return done
        print(f"[unit] {key}", flush=True)
        t = time.time()
        value = fn()
        value["unit_wall_s"] = time.time() - t
        return self.put(key, value)

    def all(self) -> dict[str, dict]:
        out = {}
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".json"):
                with open(os.path.join(self.dir, name)) as f:
                    value = json.load(f)
                out[value["unit"]] = value
        return out


def mean_std(values) -> tuple[float, float]:
    values = [float(v) for v in values]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def fmt(values, digits: int = 4) -> str:
    m, s = mean_std(values)
    return f"{m:.{digits}f} ± {s:.{digits}f}" if len(values) > 1 else f"{m:.{digits}f}"


def variant_rows(results: list[dict], variants, cells) -> list[str]:
    """One markdown table row per variant that has finished units: ``cells(variant, units, col)``
    gives the row's cells, ``col(key, digits=4)`` the mean ± std of a figure over its seeds."""
    lines = []
    for variant in variants:
        rs = [r for r in results if r["variant"] == variant]
        if rs:
            col = lambda k, d=4, rs=rs: fmt([r[k] for r in rs], d)  # noqa: E731
            lines.append("| " + " | ".join(str(c) for c in cells(variant, rs, col)) + " |")
    return lines
