"""Where a trained NER pipeline's wrong entities come from, per type, on a CoNLL split.

Every predicted entity that is not a gold entity of the same type and span is a false positive of
its type, sorted into one kind: ``wrong type`` (the same span is gold with another type),
``boundary`` (it overlaps a gold entity with other bounds) or ``no entity`` (nothing gold there).
Every gold entity not predicted exactly is a false negative. Usage:

    python scripts/errors.py training/full/llm-unmasked/model-best corpus/test.spacy \
        metrics/full/errors/llm-unmasked.json
"""
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

import spacy
import typer
from spacy.tokens import Doc

from spacy_llm_tagger.corpus import create_sentence_corpus

Spans = Dict[Tuple[int, int], str]


def entity_spans(doc: Doc) -> Spans:
    return {(ent.start, ent.end): ent.label_ for ent in doc.ents}


def false_positive_kind(span: Tuple[int, int], gold: Spans) -> str:
    if span in gold:
        return f"wrong type (gold {gold[span]})"
    start, end = span
    if any(g_start < end and start < g_end for g_start, g_end in gold):
        return "boundary"
    return "no entity"


def count_errors(pairs: List[Tuple[Doc, Doc]], top: int) -> Dict[str, dict]:
    """Per type: true and false positives, false negatives, false positives by kind and the
    most frequent false-positive and missed strings."""
    tp: Counter = Counter()
    fn: Counter = Counter()
    kinds: Dict[str, Counter] = defaultdict(Counter)
    fp_strings: Dict[str, Counter] = defaultdict(Counter)
    missed: Dict[str, Counter] = defaultdict(Counter)
    for predicted, reference in pairs:
        gold, pred = entity_spans(reference), entity_spans(predicted)
        for span, label in pred.items():
            if gold.get(span) == label:
                tp[label] += 1
            else:
                kind = false_positive_kind(span, gold)
                kinds[label][kind] += 1
                fp_strings[label][f"{predicted[span[0]:span[1]].text} ({kind})"] += 1
        for span, label in gold.items():
            if pred.get(span) != label:
                fn[label] += 1
                missed[label][f"{reference[span[0]:span[1]].text} (predicted {pred.get(span, 'nothing')})"] += 1
    result = {}
    for label in sorted(set(tp) | set(fn) | set(kinds)):
        n_fp = sum(kinds[label].values())
        precision = tp[label] / max(tp[label] + n_fp, 1)
        recall = tp[label] / max(tp[label] + fn[label], 1)
        result[label] = {
            "tp": tp[label], "fp": n_fp, "fn": fn[label],
            "p": round(100 * precision, 1), "r": round(100 * recall, 1),
            "fp_by_kind": dict(kinds[label].most_common()),
            "top_false_positives": fp_strings[label].most_common(top),
            "top_missed": missed[label].most_common(top),
        }
    return result


def main(
    model: Path = typer.Argument(..., help="Trained pipeline folder"),
    data: Path = typer.Argument(..., help=".spacy file"),
    output: Path = typer.Argument(..., help="JSON to write"),
    sentences: int = typer.Option(0, help="Use the first N sentences (0 = all)"),
    top: int = typer.Option(20, help="How many strings to list per type"),
) -> None:
    nlp = spacy.load(model)
    examples = list(create_sentence_corpus(data, limit=sentences)(nlp))
    predicted = nlp.pipe([eg.predicted for eg in examples], batch_size=64)
    result = {"model": str(model), "sentences": len(examples),
              "types": count_errors([(doc, eg.reference) for doc, eg in zip(predicted, examples)], top)}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))
    for label, row in result["types"].items():
        kinds = ", ".join(f"{kind} {n}" for kind, n in row["fp_by_kind"].items())
        print(f"{label}: P {row['p']} R {row['r']}; {row['fp']} false positives ({kinds}); {row['fn']} missed")


if __name__ == "__main__":
    typer.run(main)
