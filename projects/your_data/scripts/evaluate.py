"""Score a trained pipeline on a .spacy test set, per label, at two levels:

- documents: every test document as it is, read from its raw text as nlp(text) reads it;
- sentences: every sentence of every document on its own, as nlp(sentence) reads it.

Writes OUTPUT_DIR/test_documents.json and OUTPUT_DIR/test_sentences.json: spaCy's scores
(ents_p, ents_r, ents_f, ents_per_type: {label: {p, r, f}}) plus the gold count per label.
Usage: python scripts/evaluate.py MODEL TEST.spacy OUTPUT_DIR
"""
import json
import sys
from collections import Counter
from pathlib import Path

import spacy
from spacy.tokens import DocBin
from spacy.training import Example


def score(nlp, references, level):
    examples = [Example(nlp.make_doc(ref.text), ref) for ref in references]
    scores = nlp.evaluate(examples)
    gold = Counter(ent.label_ for ref in references for ent in ref.ents)
    result = {
        "level": level,
        "docs": len(examples),
        "words": sum(len(ref) for ref in references),
        "ents_p": scores["ents_p"],
        "ents_r": scores["ents_r"],
        "ents_f": scores["ents_f"],
        "ents_per_type": scores["ents_per_type"] or {},
        "gold_ents_per_type": dict(sorted(gold.items())),
        "words_per_second": round(scores["speed"], 1),
    }
    print(f"{level}: {len(examples)} docs, P {result['ents_p']:.3f} R {result['ents_r']:.3f} F {result['ents_f']:.3f}")
    for label, prf in sorted(result["ents_per_type"].items()):
        print(f"  {label:<20} P {prf['p']:.3f} R {prf['r']:.3f} F {prf['f']:.3f}  ({gold[label]} gold)")
    return result


def main(model: str, data: str, output_dir: str) -> None:
    nlp = spacy.load(model)
    docs = list(DocBin().from_disk(data).get_docs(nlp.vocab))
    # documents without sentence boundaries count as one sentence
    sentences = [
        sent.as_doc() for doc in docs for sent in (doc.sents if doc.has_annotation("SENT_START") else [doc[:]])
    ]
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for level, references in (("documents", docs), ("sentences", sentences)):
        result = {"model": model, "data": data, **score(nlp, references, level)}
        (out / f"test_{level}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
