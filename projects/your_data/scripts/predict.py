"""Write a pipeline's predictions on the texts of a .spacy file to JSON: per document, the
entities (start char, end char, label) and the llm_tagger's raw tag scores per token (before
the calibration temperature, which changes probabilities only, never the predicted tags).

Runs in the project's environment and in install-check's fresh venv (needs spaCy only).
Usage: python scripts/predict.py MODEL DATA.spacy OUTPUT.json
MODEL: a pipeline folder or an installed pipeline package.
"""
import json
import sys
from pathlib import Path

import spacy
from spacy.tokens import DocBin


def main(model: str, data: str, output: str) -> None:
    nlp = spacy.load(model)
    texts = [doc.text for doc in DocBin().from_disk(data).get_docs(nlp.vocab)]
    taggers = [name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory == "llm_tagger"]
    tagger = nlp.get_pipe(taggers[0])
    records = []
    for text, doc in zip(texts, nlp.pipe(texts)):
        scores = tagger.model.ops.to_numpy(tagger.model.predict([nlp.make_doc(text)])[0])
        records.append({
            "text": text,
            "ents": [[ent.start_char, ent.end_char, ent.label_] for ent in doc.ents],
            "scores": [[round(float(x), 5) for x in row] for row in scores],
        })
    result = {"model": model, "pipeline": f"{nlp.meta['name']} {nlp.meta['version']}", "docs": records}
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(json.dumps(result) + "\n", encoding="utf8")
    print(f"{model}: {sum(len(r['ents']) for r in records)} entities in {len(records)} docs -> {output}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
