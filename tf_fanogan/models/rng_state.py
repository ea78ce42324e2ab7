"""The trainers' noise-generator state travels with their weights.

Keras saves a model's layers and optimizers but not a ``SeedGenerator`` held by a subclassed
model, so a run resumed by ``BackupAndRestore`` would replay the z and alpha draws from the
start. :class:`SeedStateMixin` adds the generator's state to the saved variables.
"""

from __future__ import annotations

SEED_KEY = "seed_generator_state"


class SeedStateMixin:
    """For a ``keras.Model`` with a ``seed_generator`` attribute."""

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[SEED_KEY] = self.seed_generator.state

    def load_own_variables(self, store):
        keys = list(store.keys())
        if SEED_KEY in keys:
            self.seed_generator.state.assign(store[SEED_KEY])
            store = {k: store[k] for k in keys if k != SEED_KEY}
        super().load_own_variables(store)
