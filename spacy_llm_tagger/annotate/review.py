"""The review queue: the least confident predictions first, for people to check.

Written as JSONL that annotation tools read as pre-annotated tasks (Prodigy's ``ner.manual``
among them): ``{"text", "spans": [{"start", "end", "label", "score"}], "meta": {...}}``.
"""

import heapq
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

REVIEW_FILE = "review.jsonl"


def annotated_records(output: Path) -> Iterator[Dict[str, Any]]:
    """The records of an annotate OUTPUT folder's JSONL shards, in input order."""
    for shard in sorted(output.glob("shard-*.jsonl")):
        with shard.open(encoding="utf8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def least_confident(records: Iterator[Dict[str, Any]], size: int) -> List[Dict[str, Any]]:
    """The ``size`` records whose least probable span is least probable, that one first.

    Records without a scored span are not in the queue (there is no probability to rank).
    """
    ranked: List[Tuple[float, int, Dict[str, Any]]] = []
    for position, record in enumerate(records):
        scores = [span["score"] for span in record.get("spans", []) if "score" in span]
        if scores:
            ranked.append((min(scores), position, record))
    return [
        {
            "text": record["text"],
            "spans": record["spans"],
            "meta": {"id": record.get("id"), "min_score": score},
        }
        for score, _position, record in heapq.nsmallest(size, ranked)
    ]


def write_review_queue(output: Path, size: int) -> Path:
    """OUTPUT/review.jsonl from the finished shards; its path."""
    queue = least_confident(annotated_records(output), size)
    path = output / REVIEW_FILE
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(task, ensure_ascii=False) + "\n" for task in queue), encoding="utf8")
    tmp.replace(path)
    return path
