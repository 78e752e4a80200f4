"""Prototype for #31: train the default Python-API tagger with some training examples joined.

Each batch's examples are joined in pairs (neighbours in the shuffled batch) with probability
JOIN_RATE (default 0.3), so the tagger also learns inputs that hold an unpunctuated sentence
boundary - what it meets when a document arrives as bare tokens and the punctuation rules merge
a dateline or a headline with the next sentence. Then as bench_default_path.py (same arguments):

    JOIN_RATE=0.3 python results/documents/joined_training_prototype.py --seed 0 --save /tmp/join_s0 --out x.json
    python bench_documents.py /tmp/join_s0 --split valid --documents 0 --variants bare_learned --out y.json
"""
import os
import random
import sys
from pathlib import Path

from spacy.tokens import Doc
from spacy.training import Example

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from spacy_llm_tagger.pipeline.llm_tagger import LLMTagger  # noqa: E402

RATE = float(os.environ.get("JOIN_RATE", "0.3"))
RNG = random.Random(int(os.environ.get("JOIN_SEED", "1234")))
update = LLMTagger.update


def joined(examples):
    examples = list(examples)
    out, i = [], 0
    while i < len(examples):
        if i + 1 < len(examples) and RNG.random() < RATE:
            a, b = examples[i], examples[i + 1]
            out.append(Example(Doc.from_docs([a.predicted, b.predicted]), Doc.from_docs([a.reference, b.reference])))
            i += 2
        else:
            out.append(examples[i])
            i += 1
    return out


def joined_update(self, examples, **kwargs):
    return update(self, joined(examples), **kwargs)


LLMTagger.update = joined_update

if __name__ == "__main__":
    import bench_default_path

    bench_default_path.main()
