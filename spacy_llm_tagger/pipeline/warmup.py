"""The component's own learning-rate warm-up.

The first ``warmup_steps`` updates of an ``llm_tagger`` are scaled linearly up to the
optimizer's full learning rate, through thinc's ``lr_scale``, whatever optimizer drives it:
the one ``nlp.initialize()`` returns (spaCy's constant-rate Adam) or a ``spacy train``
config's. Without it the default Python-API tagger landed anywhere in a 6-point range over
seeds (docs/default-path.md).
"""

from typing import Any, Tuple


def warmup_scale(updates_done: int, warmup_steps: int) -> float:
    """The share of the learning rate the next update gets: (n + 1) / warmup_steps, at most 1."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, (updates_done + 1) / warmup_steps)


class ScaledOptimizer:
    """``optimizer`` with every update's learning rate multiplied by ``scale``."""

    def __init__(self, optimizer: Any, scale: float) -> None:
        self.optimizer = optimizer
        self.scale = scale

    def __call__(self, key: Tuple[int, str], weights: Any, gradient: Any, *, lr_scale: float = 1.0) -> Any:
        return self.optimizer(key, weights, gradient, lr_scale=lr_scale * self.scale)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)
