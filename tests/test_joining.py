"""Joining neighbouring training examples (join_rate): nothing lost, nothing changed by rate 0."""

import random

import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example

from spacy_llm_tagger.errors import ConfigError
from spacy_llm_tagger.pipeline.joining import join_neighbours


def examples(nlp, n):
    made = []
    for i in range(n):
        words = [f"Word{i}", "lives", "in", "Paris", "."]
        reference = Doc(nlp.vocab, words=words, ents=["B-PER", "O", "O", "B-LOC", "O"])
        made.append(Example(Doc(nlp.vocab, words=words), reference))
    return made


def test_joined_examples_keep_every_token_and_entity_in_order():
    nlp = spacy.blank("en")
    original = examples(nlp, 9)
    joined = join_neighbours(original, 0.5, random.Random(0).random)
    assert len(joined) < len(original)  # some were joined
    assert [t.text for eg in joined for t in eg.reference] == [
        t.text for eg in original for t in eg.reference
    ]
    assert [(e.text, e.label_) for eg in joined for e in eg.reference.ents] == [
        (e.text, e.label_) for eg in original for e in eg.reference.ents
    ]
    pair = next(eg for eg in joined if len(eg.predicted) == 10)
    assert " . Word" in pair.predicted.text  # two sentences, one input
    assert len(pair.predicted) == len(pair.reference) and not pair.predicted.ents


def test_rate_zero_changes_nothing_and_draws_nothing():
    nlp = spacy.blank("en")
    original = examples(nlp, 4)

    def draw():
        raise AssertionError("drew a number at rate 0")

    assert join_neighbours(original, 0.0, draw) == original


def test_join_rate_is_checked():
    nlp = spacy.blank("en")
    with pytest.raises(ConfigError, match="join_rate"):
        nlp.add_pipe("llm_tagger", config={"join_rate": 1.5})
