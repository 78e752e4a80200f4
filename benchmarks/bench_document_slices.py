"""The whole-document loss on every slice of N consecutive CoNLL-2003 documents, not a chosen few.

Reads every document of a split once per sentence (one Doc each) and once whole (one reading of
bench_documents.py: bare tokens, wire text, gold boundaries), then scores every run of N
consecutive documents from those predictions (no second pass), and reports the whole split,
the worst slice and how many slices lose more than a limit (issue #31: 3 F1 on 60 documents).

    python benchmarks/bench_document_slices.py MODEL --split test --variant wire_learned \
        --slice 60 --out slices.json
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

import spacy
from spacy.scorer import get_ner_prf
from spacy.training import Example

sys.path.insert(0, str(Path(__file__).parent))
from bench_documents import VARIANTS, example, read_documents  # noqa: E402


def predict(nlp: spacy.Language, examples: Sequence[Example], batch_size: int = 16) -> List[Example]:
    """The examples with their predicted docs annotated by ``nlp`` (in order)."""
    docs = nlp.pipe((eg.predicted for eg in examples), batch_size=batch_size)
    return [Example(doc, eg.reference) for doc, eg in zip(docs, examples)]


def f1(examples: Sequence[Example]) -> float:
    return round(100 * get_ner_prf(list(examples))["ents_f"], 2)


def slice_scores(sentences: List[List[Example]], documents: List[Example], size: int) -> List[Dict[str, float]]:
    """Per-sentence and whole-document F1 of every run of ``size`` consecutive documents;
    ``sentences[k]`` are document k's predicted sentences, ``documents[k]`` the whole document."""
    rows = []
    for offset in range(len(documents) - size + 1):
        per_sentence = f1([eg for doc in sentences[offset : offset + size] for eg in doc])
        whole = f1(documents[offset : offset + size])
        rows.append({"offset": offset, "per_sentence": per_sentence, "whole": whole,
                     "loss": round(per_sentence - whole, 2)})
    return rows


def measure(model: str, split: str, variant: str, size: int, limit: float) -> Dict[str, object]:
    window, gold_sentences, line_breaks = VARIANTS[variant]
    nlp = spacy.load(model, config={"components.llm_tagger.model.inference_window": window} if window else {})
    chosen = read_documents(split)
    started = time.time()
    per_document = [[example(nlp, [s], False) for s in d] for d in chosen]
    flat = predict(nlp, [eg for doc in per_document for eg in doc])
    sentences, k = [], 0
    for doc in per_document:
        sentences.append(flat[k : k + len(doc)])
        k += len(doc)
    print(f"sentences read, {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    documents = predict(nlp, [example(nlp, d, gold_sentences, line_breaks) for d in chosen], batch_size=4)
    print(f"documents read ({variant}), {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    rows = slice_scores(sentences, documents, size)
    worst = max(rows, key=lambda row: row["loss"])
    per_sentence, whole = f1(flat), f1(documents)
    return {
        "model": model,
        "split": split,
        "variant": variant,
        "documents": len(chosen),
        "per_sentence": per_sentence,
        "whole": whole,
        "loss": round(per_sentence - whole, 2),
        "slice": size,
        "slices": len(rows),
        "worst_slice": worst,
        "mean_slice_loss": round(sum(row["loss"] for row in rows) / len(rows), 2),
        "slices_over_limit": sum(row["loss"] > limit for row in rows),
        "limit": limit,
        "every_slice": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="trained pipeline folder")
    parser.add_argument("--split", default="test", help="valid (dev) or test")
    parser.add_argument("--variant", default="wire_learned", choices=sorted(VARIANTS))
    parser.add_argument("--slice", type=int, default=60, help="documents per slice")
    parser.add_argument("--limit", type=float, default=3.0, help="the loss a slice may have (F1)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    record = measure(args.model, args.split, args.variant, args.slice, args.limit)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n", encoding="utf8")
    print(json.dumps({key: value for key, value in record.items() if key != "every_slice"}))


if __name__ == "__main__":
    main()
