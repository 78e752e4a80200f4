"""Scaling with document length: words/s and peak RSS for one doc of N words.

    python benchmarks/bench_speed.py --only scaling --scaling 10,100,1000,10000,100000

Each size runs in a fresh process (bench_speed.py ``--child-scaling N``), so that one size's
memory does not carry into the next: a warm-up on a 10-word doc first (it merges the adapters
once), then the peak RSS is reset after loading (``/proc/self/clear_refs``) and ``nlp(doc)``
timed, best of two up to 10,000 words.
"""
import argparse
import json
from typing import Any, Dict

from .common import build_tagger, child, log, peak_rss_mb, reset_peak_rss, test_docs, timed


def scaling_child(n_words: int) -> None:
    """Run in a subprocess: words/s and peak RSS for one doc of n_words."""
    from spacy.tokens import Doc

    nlp, _ = build_tagger()
    docs, _ = test_docs(nlp, 4000)
    words = [t.text for d in docs for t in d]
    words = (words * (n_words // len(words) + 1))[:n_words]
    doc = Doc(nlp.vocab, words=words)
    nlp(Doc(nlp.vocab, words=words[:10]))  # warm-up: merges the adapters once
    before = reset_peak_rss()
    seconds = timed(lambda: nlp(doc.copy()), repeat=2 if n_words <= 10000 else 1)
    print(json.dumps({
        "words": n_words,
        "words_per_second": n_words / seconds,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
    }))


def measure(result: Dict[str, Any], args: argparse.Namespace) -> None:
    """Records ``scaling``, one entry per size in ``--scaling``."""
    result["scaling"] = []
    for size in [int(s) for s in args.scaling.split(",") if s]:
        log(f"scaling: one doc of {size} words ...")
        result["scaling"].append(child(["--child-scaling", str(size)]))
