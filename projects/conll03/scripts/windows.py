"""How a trained llm_tagger reads whole documents, for several inference windows.

Scores the same test text two ways: one Doc per sentence, and one Doc per document (bare
tokens, no sentence boundaries, as ``nlp(article)`` sees it), the latter once per
``inference_window`` (0 = the length the model learned). Usage:

    python scripts/windows.py training/llm-unmasked-sentences/model-best corpus/test.spacy \
        metrics/windows-llm-unmasked-sentences.json --documents 40 --windows 0,64,128,256,512
"""
import json
from pathlib import Path
from typing import List

import spacy
import typer
from evaluate import document_examples, score_docs  # scripts/evaluate.py
from spacy.training import Example
from systems import from_project  # scripts/systems.py

from spacy_llm_tagger.corpus import tokens_only


def entity_f1(nlp, examples: List[Example]) -> float:
    return score_docs(nlp, examples, batch_size=16)["ents_f"]


def main(
    model: Path = typer.Argument(..., help="Trained pipeline folder (an llm_tagger pipeline)"),
    data: Path = typer.Argument(..., help=".spacy file of documents with sentence boundaries"),
    output: Path = typer.Argument(..., help="JSON to write"),
    documents: int = typer.Option(40, help="Use the first N documents (0 = all)"),
    windows: str = typer.Option("0,64,128,256,512", help="inference_window values (0 = learned)"),
) -> None:
    model, data, output = from_project(model, data, output)
    nlp = spacy.load(model)
    whole = document_examples(nlp, data, documents)
    sentences = [
        Example(tokens_only(s.as_doc(), nlp.vocab), s.as_doc()) for eg in whole for s in eg.reference.sents
    ]
    result = {
        "model": str(model),
        "documents": len(whole),
        "words": sum(len(eg.reference) for eg in whole),
        "sentence_f1": entity_f1(nlp, sentences),
        "document_f1": {},
    }
    print(f"{len(whole)} documents, {result['words']} words; one Doc per sentence: F1 {100 * result['sentence_f1']:.1f}")
    for window in [int(w) for w in windows.split(",") if w.strip()]:
        loaded = spacy.load(model, config={"components.llm_tagger.model.inference_window": window})
        tagger_model = loaded.get_pipe("llm_tagger").model
        f1 = entity_f1(loaded, whole)
        result["document_f1"][str(window)] = {
            "f1": f1,
            "segment_length": tagger_model.segment_length,
        }
        print(
            f"one Doc per document, inference_window {window} (windows of "
            f"{tagger_model.segment_length} subwords): F1 {100 * f1:.1f}"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    typer.run(main)
