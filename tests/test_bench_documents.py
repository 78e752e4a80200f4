"""benchmarks/bench_documents.py builds the documents it scores as described (issue #31)."""

import importlib.util
from pathlib import Path

import spacy

from spacy_llm_tagger.models.alignment import sentence_starts

DOCUMENTS = Path(__file__).parent.parent / "benchmarks" / "bench_documents.py"
SENTENCES = [
    [("LONDON", "B-LOC"), ("1996-08-30", "O")],
    [("Simmons", "B-PER"), ("won", "O"), (".", "O")],
    [("Leicestershire", "B-ORG"), ("22", "O")],
    [("Somerset", "B-ORG"), ("11", "O")],
]


def bench_documents():
    spec = importlib.util.spec_from_file_location("bench_documents", DOCUMENTS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wire_text_breaks_lines_after_unpunctuated_sentences_only():
    nlp = spacy.blank("en")
    example = bench_documents().example(nlp, SENTENCES, False, line_breaks=True)
    assert example.predicted.text == "LONDON 1996-08-30\nSimmons won . Leicestershire 22\nSomerset 11 "
    assert [t.text for t in example.predicted] == [t.text for t in example.reference]
    assert [e.text for e in example.reference.ents] == ["LONDON", "Simmons", "Leicestershire", "Somerset"]
    assert not example.predicted.has_annotation("SENT_START")
    # the rules cut where the wire text breaks lines and after the full stop: every gold boundary
    assert sentence_starts(example.predicted).tolist() == [0, 3, 6, 9]


def test_bare_tokens_keep_one_space_after_every_word_and_no_boundaries():
    nlp = spacy.blank("en")
    example = bench_documents().example(nlp, SENTENCES, False)
    assert example.predicted.text == "LONDON 1996-08-30 Simmons won . Leicestershire 22 Somerset 11 "
    assert sentence_starts(example.predicted).tolist() == [0, 5]
