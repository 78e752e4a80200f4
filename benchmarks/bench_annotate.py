"""Records/s of `spacy-llm-tagger annotate`: the local engine, and Ray Data with 1 and N workers.

    python benchmarks/bench_annotate.py --output benchmarks/results/annotate.json

Needs the CoNLL-2003 project's trained pipeline and test corpus (`make demo`). Every run is the
real command line in a fresh process (imports, Ray start and model loading included), on the
first --docs test documents written as JSONL. Each configuration runs twice, on --small-docs and
on --docs documents; the steady rate is the extra records over the extra seconds, so start-up
cancels out. Scaling efficiency = rate(N workers) / (N x rate(1 worker)). The estimate for a big
corpus uses the measured per-worker rate and efficiency; its price per worker-hour is an input.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import spacy
from spacy.tokens import DocBin

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "projects" / "conll03"


def write_records(corpus: Path, path: Path, limit: int) -> int:
    """The first ``limit`` documents of ``corpus`` as JSONL; returns their word count."""
    nlp = spacy.blank("en")
    words = 0
    with path.open("w", encoding="utf8") as f:
        for i, doc in enumerate(DocBin().from_disk(corpus).get_docs(nlp.vocab)):
            if i >= limit:
                break
            words += len(doc)
            f.write(json.dumps({"id": i, "text": doc.text}) + "\n")
    return words


def timed_annotate(model: Path, records: Path, engine: List[str], shard_size: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "spacy_llm_tagger", "annotate", str(model), str(records),
                   str(Path(out) / "annotations"), "--shard-size", str(shard_size), *engine]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "TQDM_DISABLE": "1"})
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=PROJECT / "training" / "llm-unmasked" / "model-best")
    parser.add_argument("--corpus", type=Path, default=PROJECT / "corpus" / "test.spacy")
    parser.add_argument("--docs", type=int, default=96)
    parser.add_argument("--small-docs", type=int, default=16)
    parser.add_argument("--shard-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="the largest Ray worker count")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0)
    parser.add_argument("--corpus-docs", type=float, default=10e6, help="documents in the estimate")
    parser.add_argument("--price-per-worker-hour", type=float, default=0.05,
                        help="USD per worker-hour in the estimate (an assumption: set yours)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "annotate.json")
    args = parser.parse_args()
    for needed in (args.model, args.corpus):
        if not needed.exists():
            sys.exit(f"{needed} not found: run `make demo` first (or pass --model / --corpus).")
    gpu = ["--gpus-per-worker", str(args.gpus_per_worker)] if args.gpus_per_worker else []
    configs: Dict[str, List[str]] = {"local": ["--engine", "local"]}
    for n in sorted({1, args.workers}):
        configs[f"ray-{n}"] = ["--engine", "ray", "--workers", str(n), *gpu]
    with tempfile.TemporaryDirectory() as tmp:
        small, big = Path(tmp) / "small.jsonl", Path(tmp) / "big.jsonl"
        small_words = write_records(args.corpus, small, args.small_docs)
        big_words = write_records(args.corpus, big, args.docs)
        rows = {}
        for name, engine in configs.items():
            print(f"{name}: {args.small_docs} then {args.docs} documents ...", flush=True)
            t_small = timed_annotate(args.model, small, engine, args.shard_size)
            t_big = timed_annotate(args.model, big, engine, args.shard_size)
            extra = max(t_big - t_small, 1e-9)
            rows[name] = {
                "seconds_small": round(t_small, 1),
                "seconds_big": round(t_big, 1),
                "records_per_s": round((args.docs - args.small_docs) / extra, 3),
                "words_per_s": round((big_words - small_words) / extra, 1),
            }
            print(f"  {rows[name]}", flush=True)
    one, many = rows["ray-1"]["records_per_s"], rows[f"ray-{args.workers}"]["records_per_s"]
    efficiency = many / (args.workers * one) if args.workers > 1 else 1.0
    words_per_doc = big_words / args.docs
    hours_one_worker = args.corpus_docs / one / 3600
    estimate = {
        "documents": args.corpus_docs,
        "words_per_document": round(words_per_doc, 1),
        "per_worker_records_per_s": one,
        "scaling_efficiency": round(efficiency, 3),
        "worker_hours": round(hours_one_worker / efficiency, 1),
        "hours_on_64_workers": round(hours_one_worker / efficiency / 64, 1),
        "usd_at_price": round(hours_one_worker / efficiency * args.price_per_worker_hour, 0),
        "price_per_worker_hour": args.price_per_worker_hour,
    }
    result = {
        "model": str(args.model), "docs": args.docs, "small_docs": args.small_docs,
        "words": big_words, "shard_size": args.shard_size, "cpu_count": os.cpu_count(),
        "gpus_per_worker": args.gpus_per_worker, "engines": rows, "estimate": estimate,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print("\n| engine | records/s | words/s |\n|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} | {row['records_per_s']:.2f} | {row['words_per_s']:.0f} |")
    print(f"\nscaling efficiency 1 -> {args.workers} workers: {efficiency:.2f}")
    print(f"{args.corpus_docs:.0f} documents of ~{words_per_doc:.0f} words: "
          f"{estimate['worker_hours']:.0f} worker-hours "
          f"({estimate['hours_on_64_workers']:.1f} h on 64 workers), about "
          f"${estimate['usd_at_price']:.0f} at ${args.price_per_worker_hour}/worker-hour")


if __name__ == "__main__":
    main()
