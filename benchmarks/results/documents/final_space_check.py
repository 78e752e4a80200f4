"""Check (not part of the package), issue #31: a pipeline trained before the tagger recorded how
its training texts ended, read with the ending that training would have recorded - counted on
the same training texts (the project's first 1,000 sentences, one Doc each) - on the whole
CoNLL-2003 test split: per sentence, as wire documents and as bare documents (the project's
scripts/evaluate.py readings).

    python benchmarks/results/documents/final_space_check.py PROJECT MODEL OUT.json
    (PROJECT: projects/conll03 after `convert`; MODEL: its training/llm-unmasked-sentences/model-best)
"""
import json
import sys
import time
from pathlib import Path

import spacy

project, model_path, out = (Path(arg).resolve() for arg in sys.argv[1:4])
sys.path.insert(0, str(project / "scripts"))
import evaluate  # noqa: E402  (the project's readings)

from spacy_llm_tagger.corpus import create_document_corpus  # noqa: E402
from spacy_llm_tagger.models.alignment import ends_in_whitespace  # noqa: E402

nlp = spacy.load(model_path)
model = nlp.get_pipe("llm_tagger").model
train = list(create_document_corpus(project / "corpus" / "train.spacy", limit=1000, max_words=0)(nlp))
ends = [int(ends_in_whitespace(example.predicted)) for example in train]
if model.trained_final_space.total == 0:
    model.trained_final_space.add(ends)
record = {
    "model": str(model_path),
    "training_texts": len(train),
    "ending_in_whitespace": sum(ends),
    "final_space": model.final_space,
}
print(record, flush=True)
test = project / "corpus" / "test.spacy"
readings = {
    "per_sentence": lambda: list(evaluate.create_sentence_corpus(test, limit=0)(nlp)),
    "wire": lambda: evaluate.document_examples(nlp, test, 0, "wire"),
    "bare": lambda: evaluate.document_examples(nlp, test, 0, "bare"),
}
for name, examples in readings.items():
    started = time.time()
    record[name] = round(100 * nlp.evaluate(examples(), batch_size=64 if name == "per_sentence" else 8)["ents_f"], 2)
    print(name, record[name], f"{time.time() - started:.0f} s", flush=True)
    record["environment"] = evaluate.environment()
    out.write_text(json.dumps(record, indent=2))
