"""``tf.distribute`` for both training stages: strategies by name and replica-aware helpers.

The custom ``train_step``s of :class:`~tf_fanogan.models.wgan_gp.WGANGP` and
:class:`~tf_fanogan.models.encoder_trainer.EncoderTrainer` run once per replica on that replica's
share of the global batch. Keras' optimizers *sum* the replicas' gradients, so each
replica's loss is divided by the number of replicas (:func:`scale_loss`): the update is then
the gradient of the mean over the global batch, as on one device. Noise (z, alpha) is drawn
for the whole global batch on every replica from the same seed state and each replica takes
its own rows (:func:`replica_rows`), so a run on N replicas sees the same noise, image for
image, as one device running the same global batch.

Strategies:

* ``none``: Keras' default (one device);
* ``mirrored``: ``MirroredStrategy`` over the GPUs of this machine (or the devices named);
* ``multi_worker``: ``MultiWorkerMirroredStrategy`` over the workers in ``TF_CONFIG``; every
  worker runs the same command with its own ``TF_CONFIG`` task.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("none", "mirrored", "multi_worker")


class StrategyError(ValueError):
    """An unknown strategy name or an unusable ``TF_CONFIG``."""


def make_strategy(name: str | None = "none", devices=None) -> tf.distribute.Strategy:
    """The ``tf.distribute`` strategy called ``name`` (see the module docstring)."""
    if name is None or isinstance(name, tf.distribute.Strategy):
        return name if name is not None else tf.distribute.get_strategy()
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        raw = os.environ.get("TF_CONFIG")
        if not raw:
            raise StrategyError("--strategy multi_worker needs TF_CONFIG (cluster.worker and task) in the environment")
        try:
            cfg = json.loads(raw)
            workers = cfg["cluster"]["worker"]
            task = cfg["task"]
            if task.get("type") not in ("worker", "chief") or not isinstance(task.get("index"), int):
                raise KeyError("task")
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise StrategyError(f"TF_CONFIG is not a usable cluster spec ({e}): expected "
                                '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", '
                                '"index": 0}}') from None
        if not workers:
            raise StrategyError("TF_CONFIG lists no workers")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise StrategyError(f"strategy must be one of {STRATEGIES}, got {name!r}")


def is_distributed(strategy: tf.distribute.Strategy) -> bool:
    """False for TF's default (no-op) strategy, True for any real one, even on one device."""
    return type(strategy).__name__ != "_DefaultDistributionStrategy"


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """True on the worker that writes files (worker 0 or the ``chief`` task; always when not multi-worker)."""
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                              and "chief" not in resolver.cluster_spec().as_dict())


def worker_index(strategy: tf.distribute.Strategy | None = None) -> int:
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    return int(getattr(resolver, "task_id", 0) or 0) if resolver is not None else 0


def num_replicas() -> int:
    """Replicas in sync in the current replica context (1 outside a strategy)."""
    ctx = tf.distribute.get_replica_context()
    return int(ctx.num_replicas_in_sync) if ctx is not None else tf.distribute.get_strategy().num_replicas_in_sync


def scale_loss(loss):
    """A replica's loss divided by the number of replicas (optimizers sum replicas' gradients)."""
    n = num_replicas()
    return loss if n == 1 else loss / n


def replica_rows(global_tensor):
    """This replica's contiguous share of a tensor drawn for the whole global batch."""
    ctx = tf.distribute.get_replica_context()
    n = num_replicas()
    if n == 1 or ctx is None:
        return global_tensor
    local = tf.shape(global_tensor)[0] // n
    start = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * local
    return global_tensor[start:start + local]


def distribute_options(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Shards in-memory datasets by element (each worker keeps its share of every global batch)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _multi_worker(strategy) -> bool:
    in_mode = getattr(strategy.extended, "_in_multi_worker_mode", None)
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(in_mode and in_mode())


def metric_results(metrics) -> dict:
    """``{name: result}`` for a ``train_step``/``test_step`` to return.

    Under a multi-worker strategy Keras reduces step outputs with
    ``strategy.reduce("MEAN", value, axis=0)``, which fails on scalars, so there each result
    gets a length-1 axis (reduced back to a scalar); elsewhere results stay scalars.
    """
    out = {m.name: m.result() for m in metrics}
    if _multi_worker(tf.distribute.get_strategy()):
        out = {k: tf.reshape(v, [1]) for k, v in out.items()}
    return out
