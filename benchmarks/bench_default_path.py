"""The default Python-API tagger, as a new user trains it: one seeded run, F1 to JSON.

SmolLM2-135M (the component's default model), ``target = "ents"``, ``unmask = "all"``, every
other setting at the component's default, the optimizer that ``nlp.initialize`` returns, the
first N CoNLL-2003 training sentences for E epochs in batches of B (one Doc per sentence,
shuffled each epoch), tested on the first M test sentences, one Doc each.

The script only uses the public API, so it measures any commit of the package:

    python benchmarks/bench_default_path.py --seed 0 --out run.json
    PYTHONPATH=/tmp/v010 python benchmarks/bench_default_path.py --seed 0 --out run-010.json

(the second with a checkout of another commit first on the path).
"""
import argparse
import importlib.resources
import json
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import spacy
import torch
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import fix_random_seed, minibatch

Sentence = Tuple[List[str], List[str]]


def read_sentences(split: str, limit: int) -> List[Sentence]:
    """The first ``limit`` sentences of a CoNLL-2003 split: (words, IOB2 entity tags)."""
    path = importlib.resources.files("neuroner") / "data" / "conll2003" / "en" / f"{split}.txt"
    sentences: List[Sentence] = []
    words: List[str] = []
    tags: List[str] = []
    for line in path.read_text(encoding="utf8").splitlines():
        if line.startswith("-DOCSTART-") or not line.strip():
            if words:
                sentences.append((words, tags))
                words, tags = [], []
                if len(sentences) == limit:
                    break
            continue
        columns = line.split()
        words.append(columns[0])
        tags.append(columns[-1])
    if words and len(sentences) < limit:
        sentences.append((words, tags))
    return sentences


def to_examples(nlp: spacy.Language, sentences: List[Sentence]) -> List[Example]:
    examples = []
    for words, tags in sentences:
        reference = Doc(nlp.vocab, words=words, ents=tags)
        examples.append(Example(Doc(nlp.vocab, words=words), reference))
    return examples


def package_commit(module_file: str) -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(module_file).parent,
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(args: argparse.Namespace) -> Dict[str, object]:
    import spacy_llm_tagger

    fix_random_seed(args.seed)
    nlp = spacy.blank("en")
    model: Dict[str, object] = {"unmask": args.unmask}
    model.update(json.loads(args.model_settings))
    settings = json.loads(getattr(args, "component_settings", "{}"))
    nlp.add_pipe("llm_tagger", config={"model": model, "target": "ents", **settings})
    train = to_examples(nlp, read_sentences("train", args.train))
    test = to_examples(nlp, read_sentences("test", args.test))
    started = time.time()
    optimizer = nlp.initialize(lambda: train)
    for name, value in json.loads(args.optimizer).items():
        setattr(optimizer, name, value)
    rng = random.Random(args.seed)
    losses_per_epoch = []
    for epoch in range(args.epochs):
        rng.shuffle(train)
        losses: Dict[str, float] = {}
        for batch in minibatch(train, args.batch):
            nlp.update(batch, sgd=optimizer, losses=losses)
        losses_per_epoch.append(round(losses.get("llm_tagger", 0.0), 4))
        print(f"epoch {epoch}: loss {losses_per_epoch[-1]}", file=sys.stderr, flush=True)
    train_seconds = time.time() - started
    if getattr(args, "save", None):
        nlp.to_disk(args.save)
    scores = nlp.evaluate(test)
    return {
        "ents_f": round(100 * scores["ents_f"], 2),
        "ents_p": round(100 * scores["ents_p"], 2),
        "ents_r": round(100 * scores["ents_r"], 2),
        "seed": args.seed,
        "losses": losses_per_epoch,
        "train_seconds": round(train_seconds, 1),
        "package": spacy_llm_tagger.__file__,
        "package_version": spacy_llm_tagger.__version__,
        "package_commit": package_commit(spacy_llm_tagger.__file__),
        "settings": vars(args),
        "versions": {
            "torch": torch.__version__,
            "spacy": spacy.__version__,
            "transformers": __import__("transformers").__version__,
            "peft": __import__("peft").__version__,
            "python": platform.python_version(),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=1000, help="training sentences")
    parser.add_argument("--test", type=int, default=500, help="test sentences")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--unmask", default="all")
    parser.add_argument("--model-settings", default="{}", help="JSON: more [model] settings")
    parser.add_argument("--component-settings", default="{}", help="JSON: more llm_tagger settings")
    parser.add_argument("--optimizer", default="{}", help="JSON: optimizer attributes to set")
    parser.add_argument("--save", type=Path, default=None, help="also save the trained pipeline here")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    record = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf8")
    print(json.dumps({k: record[k] for k in ("ents_f", "seed", "train_seconds", "package_commit")}))


if __name__ == "__main__":
    main()
