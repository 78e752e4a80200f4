"""Where a trained llm_tagger loses when whole documents arrive as bare tokens.

Each gold sentence of the documents is put in a group by how the tagger's boundary rules
(``sentence_starts``: sentence-final punctuation, line breaks) read the bare document: both of its
boundaries found ("matched"), or inside a rule "sentence" that holds others and fits one trained
window ("merged, fits") or is longer ("merged, overlong"). Its entities are scored read one Doc
per sentence and read in the bare document; the extra errors per group say where the loss is.
Also the same by document length. See docs/whole-documents.md:

    python benchmarks/bench_document_loss.py MODEL --split valid --documents 0 --out loss.json
"""
import argparse
import json
from collections import defaultdict
from typing import Dict, List, Set, Tuple

import spacy
from bench_documents import example, read_documents

from spacy_llm_tagger.models.alignment import sentence_starts

Entity = Tuple[int, int, str]
LENGTHS = ((0, 100), (100, 200), (200, 400), (400, 10**9))


def entities(doc: spacy.tokens.Doc, offset: int = 0) -> Set[Entity]:
    return {(ent.start + offset, ent.end + offset, ent.label_) for ent in doc.ents}


def counts(gold: Set[Entity], predicted: Set[Entity]) -> List[int]:
    """true positives, false positives, false negatives"""
    return [len(gold & predicted), len(predicted - gold), len(gold - predicted)]


def f_score(tp: int, fp: int, fn: int) -> float:
    return round(200 * tp / max(1, 2 * tp + fp + fn), 2)


def measure(model: str, split: str, documents: int) -> Dict[str, object]:
    chosen = read_documents(split)
    chosen = chosen[:documents] if documents else chosen
    nlp = spacy.load(model)
    tagger = nlp.get_pipe("llm_tagger").model
    tokenizer = tagger.loaded.tokenizer
    sentences = [example(nlp, [s], False).predicted for d in chosen for s in d]
    per_sentence = iter(nlp.pipe(sentences, batch_size=64))
    whole = [example(nlp, d, False) for d in chosen]
    bare = nlp.pipe([e.predicted for e in whole], batch_size=8)
    groups: Dict[str, List[int]] = defaultdict(lambda: [0] * 6)
    by_length: Dict[str, List[int]] = defaultdict(lambda: [0] * 6)
    for sents, eg, bare_doc in zip(chosen, whole, bare):
        gold, read_bare = entities(eg.reference), entities(bare_doc)
        rule_starts = [int(i) for i in sentence_starts(eg.predicted)] + [len(eg.predicted)]
        doc_counts = [0] * 6
        rule_subwords: Dict[Tuple[int, int], int] = {}  # a rule "sentence" holds several gold ones
        start = 0
        for sentence in sents:
            end = start + len(sentence)
            read_alone = entities(next(per_sentence), start)
            if start in rule_starts and end in rule_starts:
                group = "matched"
            else:
                a = max(i for i in rule_starts[:-1] if i <= start)
                b = min(i for i in rule_starts if i > start)
                if (a, b) not in rule_subwords:
                    text = eg.predicted[a:b].text
                    rule_subwords[a, b] = len(tokenizer(text, add_special_tokens=False)["input_ids"])
                fits = tagger.sentence_length is None or rule_subwords[a, b] + 2 <= tagger.sentence_length
                group = "merged, fits" if fits else "merged, overlong"
            inside = {e for e in gold if start <= e[0] < end}
            row = counts(inside, {e for e in read_alone if start <= e[0] < end})
            row += counts(inside, {e for e in read_bare if start <= e[0] < end})
            groups[group] = [x + y for x, y in zip(groups[group], row)]
            doc_counts = [x + y for x, y in zip(doc_counts, row)]
            start = end
        words = len(eg.predicted)
        bucket = next(f"{lo}-{hi}" if hi < 10**9 else f"{lo}+" for lo, hi in LENGTHS if lo <= words < hi)
        by_length[bucket] = [x + y for x, y in zip(by_length[bucket], doc_counts)]

    def summary(rows: Dict[str, List[int]]) -> Dict[str, dict]:
        return {
            name: {
                "entities": r[0] + r[2],
                "per_sentence": f_score(*r[:3]),
                "bare": f_score(*r[3:]),
                "extra_errors": r[4] + r[5] - r[1] - r[2],
            }
            for name, r in rows.items()
        }

    return {
        "model": model,
        "split": split,
        "documents": len(chosen),
        "groups": summary(groups),
        "by_document_words": summary(by_length),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="trained pipeline folder")
    parser.add_argument("--split", default="valid", help="valid (dev) or test")
    parser.add_argument("--documents", type=int, default=0, help="how many documents (0 = all)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    record = measure(args.model, args.split, args.documents)
    with open(args.out, "w", encoding="utf8") as handle:
        json.dump(record, handle, indent=2)
        handle.write("\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
