"""Write the documents of a .spacy corpus as JSONL records (id, text): input for `annotate`.

    python scripts/texts.py corpus/test.spacy corpus/test_texts.jsonl
"""
import json
from pathlib import Path

import spacy
import typer
from spacy.tokens import DocBin


def main(
    corpus: Path = typer.Argument(..., help=".spacy file of documents"),
    output: Path = typer.Argument(..., help="JSONL to write"),
) -> None:
    nlp = spacy.blank("en")
    docs = DocBin().from_disk(corpus).get_docs(nlp.vocab)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf8") as f:
        count = 0
        for count, doc in enumerate(docs, 1):
            f.write(json.dumps({"id": f"{corpus.stem}-{count}", "text": doc.text}, ensure_ascii=False) + "\n")
    print(f"{count} documents written to {output}")


if __name__ == "__main__":
    typer.run(main)
