"""The model manager: which models and versions are served, polled from their base paths.

Parses ``models.config`` (TF Serving's ``ModelServerConfig`` text format: latest{N} / all /
specific versions, version labels), loads new versions before unloading old ones (a broken
version leaves the old one serving), replays warm-up records, and resolves a request's model
spec (name, version or label) to a loaded :class:`~tf_fanogan.serving.servable.Servable`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field

from google.protobuf import text_format

from tf_fanogan.serving.batching import BatchScheduler
from tf_fanogan.serving.protos import (
    get_model_status_pb2,
    model_server_config_pb2,
)
from tf_fanogan.serving.servable import Servable, ServingError

log = logging.getLogger("tf_fanogan.serving")

State = get_model_status_pb2.ModelVersionStatus.State

MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass
class ModelEntry:
    """One model of the server config (a ``ModelConfig`` of ``models.config``)."""

    name: str
    base_path: str
    policy: str = "latest"  # latest | all | specific
    num_versions: int = 1
    versions: tuple = ()
    labels: dict = field(default_factory=dict)

    @classmethod
    def from_proto(cls, proto) -> "ModelEntry":
        policy = proto.model_version_policy
        which = policy.WhichOneof("policy_choice")
        entry = cls(name=proto.name, base_path=proto.base_path, labels=dict(proto.version_labels))
        if which == "all":
            entry.policy = "all"
        elif which == "specific":
            entry.policy, entry.versions = "specific", tuple(sorted(policy.specific.versions))
        elif which == "latest":
            entry.num_versions = max(1, policy.latest.num_versions)
        if not proto.name or not MODEL_NAME_RE.match(proto.name):
            raise ServingError("INVALID_ARGUMENT", f"invalid model name {proto.name!r}")
        return entry

    def aspired(self, on_disk: list[int]) -> list[int]:
        if self.policy == "all":
            return list(on_disk)
        if self.policy == "specific":
            return [v for v in on_disk if v in self.versions]
        return sorted(on_disk)[-self.num_versions:]


def parse_models_config(text: str, relative_to: str | None = None):
    """Parses a ``models.config`` (ModelServerConfig text proto) into entries. A relative
    ``base_path`` is taken relative to ``relative_to`` (the config file's folder), so a config
    shipped beside the exports works from any working directory."""
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as e:
        raise ServingError("INVALID_ARGUMENT", f"cannot parse model config: {e}") from None
    entries = [ModelEntry.from_proto(m) for m in config.model_config_list.config]
    if relative_to is not None:
        entries = [e if os.path.isabs(e.base_path) or "://" in e.base_path else
                   dataclasses.replace(e, base_path=os.path.normpath(os.path.join(relative_to, e.base_path)))
                   for e in entries]
    return entries


@dataclass
class _Version:
    state: int
    servable: Servable | None = None
    error: str = ""
    mtime: float = 0.0


class ModelManager:
    """Loads, polls and resolves model versions; thread-safe."""

    def __init__(self, entries, poll_interval: float = 1.0, warmup: bool = True, batching=None):
        self.poll_interval = poll_interval
        self.warmup = warmup
        self.batching = batching  # BatchingParameters, or None for no server-side batching
        self._lock = threading.RLock()
        self._entries: dict[str, ModelEntry] = {}
        self._versions: dict[str, dict[int, _Version]] = {}
        self._stop = threading.Event()
        self._thread = None
        self.reload_config(entries)

    # -------------------------------------------------------------- lifecycle
    def start(self):
        if self.poll_interval > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._poll_loop, name="version-poller", daemon=True)
            self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        with self._lock:
            for versions in self._versions.values():
                for v in versions.values():
                    if v.servable:
                        v.servable.close()

    def _poll_loop(self):
        while not self._stop.wait(self.poll_interval):
            try:
                self.poll()
            except Exception:  # keep polling whatever one pass met
                log.exception("version poll failed")

    # -------------------------------------------------------------- config
    def reload_config(self, entries) -> None:
        """Replaces the whole config (as HandleReloadConfigRequest does), then loads.

        Versions are loaded under the old labels first; the new labels take effect only once
        every version they name is AVAILABLE, so a label never points at a loading version.
        """
        entries = {e.name: e for e in entries}
        with self._lock:
            old = self._entries
            self._entries = {name: dataclasses.replace(e, labels=dict(old[name].labels) if name in old else {})
                             for name, e in entries.items()}
            for name in list(self._versions):
                if name not in entries:
                    self._unload_all(name)
            for name in entries:
                self._versions.setdefault(name, {})
        try:
            self.poll()
            with self._lock:
                self._check_labels(entries)
                self._entries = entries
        except ServingError:
            with self._lock:
                self._entries = old  # the next poll brings the versions back in line with it
            raise

    def _check_labels(self, entries):
        for entry in entries.values():
            for label, version in entry.labels.items():
                v = self._versions[entry.name].get(version)
                if v is None and not os.path.isdir(entry.base_path):
                    raise ServingError(
                        "FAILED_PRECONDITION",
                        f"model {entry.name}: base path {entry.base_path} does not exist, so label {label!r} cannot "
                        f"point at version {version} (fix base_path in the config)")
                if v is None or v.state != State.AVAILABLE:
                    raise ServingError(
                        "FAILED_PRECONDITION",
                        f"Request to assign label to version {version} of model {entry.name}, "
                        "which is not currently available for inference")

    def _unload_all(self, name):
        for v in self._versions.pop(name, {}).values():
            if v.servable:
                v.servable.close()

    # -------------------------------------------------------------- polling
    @staticmethod
    def _on_disk(base_path: str) -> dict[int, float]:
        if not os.path.isdir(base_path):
            return {}
        out = {}
        for n in os.listdir(base_path):
            p = os.path.join(base_path, n)
            if re.fullmatch(r"\d{1,18}", n) and os.path.isdir(p):
                out[int(n)] = os.path.getmtime(p)
        return out

    def poll(self) -> None:
        """One pass: load aspired versions, then retire the others (availability-preserving)."""
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:
            disk = self._on_disk(entry.base_path)
            aspired = entry.aspired(sorted(disk))
            if not disk:  # as TF Serving, every poll until a version appears
                log.warning("No versions of servable %s found under base path %s%s. Did you forget to name your "
                            "leaf directory as a number (eg. '/1/')?", entry.name, entry.base_path,
                            "" if os.path.isdir(entry.base_path) else " (the path does not exist)")
            for version in aspired:
                with self._lock:
                    current = self._versions.get(entry.name, {}).get(version)
                if current is not None and (current.state == State.AVAILABLE or
                                            (current.state == State.END and current.mtime == disk[version])):
                    continue
                self._load(entry, version, disk[version])
            with self._lock:
                versions = self._versions.get(entry.name, {})
                any_available = any(versions.get(v) and versions[v].state == State.AVAILABLE for v in aspired)
                for version in list(versions):
                    if version in aspired:
                        continue
                    gone = version not in disk
                    if versions[version].state == State.AVAILABLE and not any_available and not gone:
                        continue  # keep serving until a replacement is available
                    old = versions.pop(version)
                    if old.servable:
                        old.servable.close()
                        log.info("unloaded %s version %d", entry.name, version)

    def _load(self, entry: ModelEntry, version: int, mtime: float) -> None:
        path = os.path.join(entry.base_path, str(version))
        with self._lock:
            self._versions.setdefault(entry.name, {})[version] = _Version(State.LOADING, mtime=mtime)
        servable = None
        try:
            servable = Servable(path)
            if self.batching is not None:
                servable.scheduler = BatchScheduler(servable.execute, self.batching, name=f"{entry.name}-v{version}")
            if self.warmup:
                servable.warmup()
        except Exception as e:  # a broken version must not take the server down
            if servable is not None:
                servable.close()
            message = getattr(e, "message", None) or str(e).split("\n")[0]
            log.error("failed to load %s version %d: %s", entry.name, version, message)
            with self._lock:
                self._versions.setdefault(entry.name, {})[version] = _Version(
                    State.END, error=f"Failed to load servable version {version} from {path}: {message}"[:1024],
                    mtime=mtime)
            return
        with self._lock:
            self._versions.setdefault(entry.name, {})[version] = _Version(State.AVAILABLE, servable, mtime=mtime)
        log.info("loaded %s version %d", entry.name, version)

    # -------------------------------------------------------------- queries
    @contextlib.contextmanager
    def serving(self, spec):
        """``with manager.serving(spec) as (version, servable)``: the servable stays loaded inside."""
        with self._lock:
            version, servable = self.resolve(spec)
            servable.acquire()
        try:
            yield version, servable
        finally:
            servable.release()

    def resolve(self, spec) -> tuple[int, Servable]:
        """ModelSpec -> (version, servable), with TF Serving's errors (see :meth:`serving`)."""
        name = spec.name
        if not name:
            raise ServingError("INVALID_ARGUMENT", "ModelSpec has no name specified.")
        with self._lock:
            entry = self._entries.get(name)
            versions = self._versions.get(name, {})
            choice = spec.WhichOneof("version_choice")
            if choice == "version":
                wanted = spec.version.value
                v = versions.get(wanted)
                if entry is None or v is None or v.state != State.AVAILABLE:
                    raise ServingError("NOT_FOUND", f"Servable not found for request: Specific({name}, {wanted})")
                return wanted, v.servable
            if choice == "version_label":
                label = spec.version_label
                if entry is None or label not in entry.labels:
                    raise ServingError("INVALID_ARGUMENT", f"Unrecognized servable version label: {label}")
                wanted = entry.labels[label]
                v = versions.get(wanted)
                if v is None or v.state != State.AVAILABLE:
                    raise ServingError("NOT_FOUND", f"Servable not found for request: Specific({name}, {wanted})")
                return wanted, v.servable
            available = [k for k, v in versions.items() if v.state == State.AVAILABLE]
            if entry is None or not available:
                raise ServingError("NOT_FOUND", f"Servable not found for request: Latest({name})")
            latest = max(available)
            return latest, versions[latest].servable

    def status(self, name: str, version: int | None = None, label: str | None = None):
        """[(version, state, error_message)] of a model, TF Serving's GetModelStatus."""
        with self._lock:
            entry = self._entries.get(name)
            versions = dict(self._versions.get(name, {}))
        if entry is None or not versions:
            raise ServingError("NOT_FOUND", f"Could not find any versions of model {name}")
        if label is not None:
            if label not in entry.labels:
                raise ServingError("INVALID_ARGUMENT", f"Unrecognized servable version label: {label}")
            version = entry.labels[label]
        if version is not None:
            if version not in versions:
                raise ServingError("NOT_FOUND", f"Could not find version {version} of model {name}")
            versions = {version: versions[version]}
        return [(k, v.state, v.error) for k, v in sorted(versions.items())]

    def wait_for(self, name: str, timeout: float = 60.0) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self._lock:
                if any(v.state == State.AVAILABLE for v in self._versions.get(name, {}).values()):
                    return True
            time.sleep(0.05)
        return False


def entries_from_flags(model_name=None, model_base_path=None, model_config_file=None):
    if model_config_file:
        with open(model_config_file) as f:
            return parse_models_config(f.read(), os.path.dirname(os.path.abspath(model_config_file)))
    if not (model_name and model_base_path):
        raise ServingError("INVALID_ARGUMENT", "give --model_name and --model_base_path, or --model_config_file")
    return [ModelEntry(name=model_name, base_path=os.path.abspath(model_base_path))]


class ConfigWatcher:
    """Reloads ``models.config`` into a manager when the file changes, as TF Serving's
    ``--model_config_file_poll_wait_seconds`` does: a bad new config is logged and the old one
    keeps serving.

    Args:
        manager: The :class:`ModelManager` to reconfigure.
        path: The config file.
        interval: Seconds between checks (> 0).
    """

    def __init__(self, manager: ModelManager, path: str, interval: float):
        self.manager, self.path, self.interval = manager, path, float(interval)
        self._seen = os.path.getmtime(path) if os.path.exists(path) else None
        self._stop = threading.Event()
        self._thread = None

    def check(self) -> bool:
        """Reloads if the file changed since the last check; True if it reloaded."""
        mtime = os.path.getmtime(self.path) if os.path.exists(self.path) else self._seen
        if mtime == self._seen:
            return False
        try:
            with open(self.path) as f:
                text = f.read()
            if not text.strip():  # caught between truncate and write: look again, unload nothing
                log.warning("%s is empty (being written?); kept the previous config", self.path)
                return False
            self._seen = mtime
            self.manager.reload_config(parse_models_config(text, os.path.dirname(os.path.abspath(self.path))))
            log.info("reloaded %s", self.path)
            return True
        except (ServingError, ValueError, OSError) as e:
            log.error("kept the previous config: %s: %s", self.path, getattr(e, "message", e))
            return False

    def start(self) -> "ConfigWatcher":
        def loop():
            while not self._stop.wait(self.interval):
                self.check()

        self._thread = threading.Thread(target=loop, name="config-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
