"""Memory: peak RSS of inference and of training, and resident memory along a long nlp.pipe.

    python benchmarks/bench_speed.py --only memory
    python benchmarks/bench_speed.py --only growth --growth-docs 4000

Each measurement runs in a fresh process (bench_speed.py ``--child-memory MODE`` or
``--child-growth N``). memory: the peak is reset after loading (``/proc/self/clear_refs``),
then nlp.pipe over 512 sentences (batch size 256) or 4 training steps of 16 sentences.
growth: the resident memory every 500 docs of nlp.pipe (batch size 64) over N docs, to tell
memory that levels off from memory that grows without bound.
"""
import argparse
import json
import time
from typing import Any, Dict

from .common import build_tagger, child, current_rss_mb, log, peak_rss_mb, reset_peak_rss, test_docs


def memory_child(mode: str) -> None:
    """Run in a subprocess: peak RSS of inference or of training on 16-sentence batches."""
    nlp, examples = build_tagger()
    docs, _ = test_docs(nlp, 512)
    base_rss = reset_peak_rss()
    if mode == "inference":
        list(nlp.pipe(docs, batch_size=256))
    else:
        optimizer = nlp.resume_training()
        for i in range(0, 64, 16):
            nlp.update(examples[i:i + 16], sgd=optimizer)
    print(json.dumps({"mode": mode, "peak_rss_mb": peak_rss_mb(), "after_load_rss_mb": base_rss}))


def growth_child(n_docs: int) -> None:
    """Run in a subprocess: resident memory along one long nlp.pipe run."""
    nlp, _ = build_tagger()
    docs, _ = test_docs(nlp, 4000)
    texts = [d.text for d in docs]
    stream = (texts[i % len(texts)] for i in range(n_docs))
    samples = []
    start = time.perf_counter()
    for i, doc in enumerate(nlp.pipe(stream, batch_size=64), start=1):
        if i % 500 == 0 or i == n_docs:
            samples.append({"docs": i, "rss_mb": round(current_rss_mb(), 1)})
    seconds = time.perf_counter() - start
    print(json.dumps({"docs": n_docs, "seconds": seconds, "samples": samples}))


def measure_memory(result: Dict[str, Any], args: argparse.Namespace) -> None:
    """Records ``memory``: inference, then training."""
    log("memory ...")
    result["memory"] = [child(["--child-memory", "inference"]), child(["--child-memory", "training"])]


def measure_growth(result: Dict[str, Any], args: argparse.Namespace) -> None:
    """Records ``memory_growth``."""
    log(f"resident memory along nlp.pipe over {args.growth_docs} docs ...")
    result["memory_growth"] = child(["--child-growth", str(args.growth_docs)])
