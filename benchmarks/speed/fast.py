"""The fast configurations (keep_layers, int8) against the default tagger and the bare forward.

    python benchmarks/bench_speed.py --only overhead,fast

Each configuration is a tagger built like the default one (same weights, untrained head and
adapters: speed does not depend on their values) with ``keep_layers`` and/or ``quantize``
set. The default's ``nlp.pipe``, the bare transformers forward of the full model (overhead.py)
and every configuration are timed in alternating rounds, best of each, so the ratios come
from the same minutes of a machine whose speed drifts. Accuracy is not measured here: the
project's ``fast`` command trains and scores each configuration.
"""
from typing import Any, Callable, Dict, List

from .common import Workload, build_tagger, log, timed
from .overhead import raw_forward

CONFIGURATIONS: Dict[str, Dict[str, Any]] = {
    "keep_layers=20": {"keep_layers": 20},
    "keep_layers=15": {"keep_layers": 15},
    "int8": {"quantize": "int8"},
    "keep_layers=20 + int8": {"keep_layers": 20, "quantize": "int8"},
    "keep_layers=15 + int8": {"keep_layers": 15, "quantize": "int8"},
}
ROUNDS = 3


def measure(result: Dict[str, Any], work: Workload) -> None:
    """Records ``fast``: words/s per configuration, its rounds, and ratios to the default."""
    batch_size = work.tagger["batch_size"]
    log("fast: the bare forward of the full model ...")
    _, run_raw = raw_forward(work.nlp, work.texts, work.n_words)
    runners: Dict[str, Callable[[], Any]] = {"default": work.run_pipe, "raw_forward": run_raw}
    for name, settings in CONFIGURATIONS.items():
        log(f"fast: building {name} ...")
        nlp, _ = build_tagger(**settings)
        runners[name] = lambda nlp=nlp: list(nlp.pipe([d.copy() for d in work.docs], batch_size=batch_size))
        runners[name]()  # warm-up; builds the int8 copy
    rounds: Dict[str, List[float]] = {name: [] for name in runners}
    for round_ in range(ROUNDS):
        log(f"fast: round {round_ + 1}/{ROUNDS} ...")
        for name, run in runners.items():
            rounds[name].append(work.n_words / timed(run))
    best = {name: max(values) for name, values in rounds.items()}
    result["fast"] = {
        "batch_size": batch_size,
        "words_per_second": best,
        "ratio_to_default": {name: best[name] / best["default"] for name in best},
        "rounds": rounds,
    }
