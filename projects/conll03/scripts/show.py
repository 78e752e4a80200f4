"""Print the entities a trained pipeline finds in a sample text and write a displaCy HTML page."""
from pathlib import Path

import spacy
import typer
from spacy import displacy

SAMPLE = (
    "Germany's representative to the European Union, Werner Zwingmann, told Reuters in "
    "Brussels on Wednesday that consumers should buy sheepmeat from countries other than Britain."
)


def main(model: Path, output_html: Path, text: str = typer.Option(SAMPLE)) -> None:
    nlp = spacy.load(model)
    doc = nlp(text)
    print(f"Entities in: {text}")
    for ent in doc.ents:
        print(f"  {ent.text!r:35} {ent.label_}")
    output_html.parent.mkdir(parents=True, exist_ok=True)
    output_html.write_text(displacy.render(doc, style="ent", page=True), encoding="utf8")
    print(f"displaCy page written to {output_html}")


if __name__ == "__main__":
    typer.run(main)
