"""What span confidences cost: their share of the default tagger's nlp.pipe time.

    python benchmarks/bench_speed.py --only confidences

Confidences are computed from the head's scores after the forward pass (forward-backward over
the BIO lattice, span marginals) and written as a span group. Their cost is measured where it
arises: the same scores decoded with confidences on and off (``LLMTagger.predict`` after the
model, plus ``set_annotations``), best of several rounds each, against the time of the
tagger's whole ``nlp.pipe`` over the same sentences. Timing two whole ``nlp.pipe`` runs
instead would bury a difference of a few percent under this machine's 10-20% drift.
The target is at most 5%.
"""
import time
from typing import Any, Dict, List

from .common import Workload, log, timed

ROUNDS = 5


def measure(result: Dict[str, Any], work: Workload) -> None:
    """Records ``confidences``: decode + annotate seconds on and off, nlp.pipe seconds, cost."""
    pipe = work.nlp.get_pipe("llm_tagger")
    docs = [work.nlp.make_doc(text) for text in work.texts]
    log("confidences: the head's scores, once ...")
    scores = [pipe.model.ops.to_numpy(s) for s in pipe.model.predict(docs)]
    seconds: Dict[str, List[float]] = {"on": [], "off": []}
    try:
        for round_ in range(ROUNDS):
            for setting in ("on", "off"):
                pipe.confidences = setting == "on"
                fresh = [doc.copy() for doc in docs]
                start = time.perf_counter()
                pipe.set_annotations(fresh, pipe.decode_scores(scores))
                seconds[setting].append(time.perf_counter() - start)
    finally:
        pipe.confidences = True
    log("confidences: the whole nlp.pipe ...")
    pipe_seconds = min(timed(work.run_pipe) for _ in range(2))
    best = {name: min(values) for name, values in seconds.items()}
    spans = sum(len(doc.spans.get("scored_ents", [])) for doc in work.nlp.pipe([d.copy() for d in work.docs]))
    result["confidences"] = {
        "decode_seconds": best,
        "pipe_seconds": pipe_seconds,
        "cost": (best["on"] - best["off"]) / pipe_seconds,
        "scored_spans": spans,
        "rounds": seconds,
    }
