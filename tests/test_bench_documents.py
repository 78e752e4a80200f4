"""benchmarks/bench_documents.py builds the documents it scores as described (issue #31)."""

from pathlib import Path

import spacy

from spacy_llm_tagger.models.alignment import sentence_starts

from .util import load_module

DOCUMENTS = Path(__file__).parent.parent / "benchmarks" / "bench_documents.py"
SENTENCES = [
    [("LONDON", "B-LOC"), ("1996-08-30", "O")],
    [("Simmons", "B-PER"), ("won", "O"), (".", "O")],
    [("Leicestershire", "B-ORG"), ("22", "O")],
    [("Somerset", "B-ORG"), ("11", "O")],
]


def bench_documents():
    return load_module(DOCUMENTS, "bench_documents")


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


def test_every_slice_of_consecutive_documents_is_scored_from_one_reading():
    module = load_module(DOCUMENTS.parent / "bench_document_slices.py", "bench_document_slices")
    nlp = spacy.blank("en")

    def read(words, gold, found):
        reference = spacy.tokens.Doc(nlp.vocab, words=words, ents=gold)
        return spacy.training.Example(spacy.tokens.Doc(nlp.vocab, words=words, ents=found), reference)

    right = read(["Paris", "!"], ["B-LOC", "O"], ["B-LOC", "O"])
    wrong = read(["Paris", "!"], ["B-LOC", "O"], ["O", "O"])
    # document 1 is read right per sentence but wrong whole; documents 0 and 2 right both ways
    sentences = [[right], [right], [right]]
    documents = [right, wrong, right]
    rows = module.slice_scores(sentences, documents, 2)
    assert [row["offset"] for row in rows] == [0, 1]
    assert [row["per_sentence"] for row in rows] == [100.0, 100.0]
    assert [row["whole"] for row in rows] == [66.67, 66.67]
    assert module.slice_scores(sentences, documents, 1)[1]["loss"] == 100.0
