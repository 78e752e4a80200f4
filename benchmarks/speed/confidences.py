"""What span confidences cost: the default tagger's nlp.pipe with and without them.

    python benchmarks/bench_speed.py --only confidences

The same tagger (``confidences`` is on by default) runs the test sentences with confidences
on and off in alternating rounds, best of each; the cost is 1 - words/s(on) / words/s(off).
The target is at most 5% of nlp.pipe time.
"""
from typing import Any, Dict, List

from .common import Workload, log, timed

ROUNDS = 3


def measure(result: Dict[str, Any], work: Workload) -> None:
    """Records ``confidences``: words/s on and off, their rounds and the relative cost."""
    pipe = work.nlp.get_pipe("llm_tagger")
    rounds: Dict[str, List[float]] = {"on": [], "off": []}
    try:
        for round_ in range(ROUNDS):
            log(f"confidences: round {round_ + 1}/{ROUNDS} ...")
            for setting in ("on", "off"):
                pipe.confidences = setting == "on"
                rounds[setting].append(work.n_words / timed(work.run_pipe))
    finally:
        pipe.confidences = True
    best = {name: max(values) for name, values in rounds.items()}
    spans = sum(len(doc.spans.get("scored_ents", [])) for doc in work.nlp.pipe([d.copy() for d in work.docs]))
    result["confidences"] = {
        "words_per_second": best,
        "cost": 1 - best["on"] / best["off"],
        "scored_spans": spans,
        "rounds": rounds,
    }
