"""The tagger's loss through thinc gives the numbers of the hand-written softmax cross-entropy."""

import numpy as np
import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example

from spacy_llm_tagger.pipeline.targets import MISSING


def reference_loss(pipe, examples, scores):
    """The hand-written numpy loss that get_loss replaced (release 0.1.0), kept to compare."""
    ops = pipe.model.ops
    tag_index = {tag: i for i, tag in enumerate(pipe.tag_names)}
    golds = [pipe.target.gold(eg, tag_index) for eg in examples]
    flat_gold = np.concatenate(golds) if golds else np.zeros((0,), dtype=np.int64)
    flat_scores = ops.to_numpy(ops.xp.concatenate(scores)) if scores else np.zeros((0, 1))
    known = flat_gold != MISSING
    n_known = max(int(known.sum()), 1)
    shifted = flat_scores - flat_scores.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    rows = np.flatnonzero(known)
    loss = float(-np.log(probs[rows, flat_gold[rows]] + 1e-12).sum() / n_known)
    d_flat = probs
    d_flat[rows, flat_gold[rows]] -= 1.0
    d_flat[~known] = 0.0
    d_flat /= n_known
    d_flat = ops.asarray2f(d_flat.astype("float32"))
    boundaries = np.cumsum([len(g) for g in golds])[:-1].tolist()
    return loss, list(ops.xp.split(d_flat, boundaries))


def tagger(target, labels):
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("llm_tagger", config={"target": target, "model": {"name": "not-loaded"}})
    for label in labels:
        pipe.add_label(label)
    return nlp, pipe


def ner_examples(nlp):
    words = ["Peter", "Blackburn", "lives", "in", "Brussels", "."]
    return [
        # every token known
        Example(
            Doc(nlp.vocab, words=words),
            Doc(nlp.vocab, words=words, ents=["B-PER", "I-PER", "O", "O", "B-LOC", "O"]),
        ),
        # missing annotation on two tokens
        Example(
            Doc(nlp.vocab, words=words),
            Doc(nlp.vocab, words=words, ents=["B-PER", "I-PER", None, None, "B-LOC", "O"]),
        ),
        # other tokens than the reference: the split token has no aligned gold tag
        Example(
            nlp.make_doc("Peter Blackburn lives in Brussels."),
            Doc(nlp.vocab, words=words, ents=["B-PER", "I-PER", "O", "O", "B-LOC", "O"]),
        ),
        # no gold at all, and an empty doc
        Example(Doc(nlp.vocab, words=["x", "y"]), Doc(nlp.vocab, words=["x", "y"])),
        Example(Doc(nlp.vocab, words=[]), Doc(nlp.vocab, words=[])),
    ]


def tag_examples(nlp):
    words = ["The", "cat", "sat", "."]
    return [
        Example(Doc(nlp.vocab, words=words), Doc(nlp.vocab, words=words, tags=["DT", "NN", "VBD", "."])),
        Example(Doc(nlp.vocab, words=words), Doc(nlp.vocab, words=words, tags=["DT", "", "VBD", ""])),
    ]


@pytest.mark.parametrize("target", ["ents", "spans:sc", "tag"])
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_loss_and_gradient_equal_the_hand_written_cross_entropy(target, scale):
    if target == "tag":
        nlp, pipe = tagger(target, ["DT", "NN", "VBD", "."])
        examples = tag_examples(nlp)
    else:
        nlp, pipe = tagger(target, ["LOC", "PER"])
        examples = ner_examples(nlp)
        if target == "spans:sc":
            for eg in examples[:3]:
                eg.reference.spans["sc"] = list(eg.reference.ents)
    rng = np.random.default_rng(0)
    n_tags = len(pipe.tag_names)
    scores = [(rng.normal(size=(len(eg.predicted), n_tags)) * scale).astype("float32") for eg in examples]
    loss, d_scores = pipe.get_loss(examples, [s.copy() for s in scores])
    expected_loss, expected_d = reference_loss(pipe, examples, [s.copy() for s in scores])
    assert loss == pytest.approx(expected_loss, rel=1e-6, abs=1e-7)
    assert len(d_scores) == len(expected_d)
    for got, expected, eg in zip(d_scores, expected_d, examples):
        assert got.shape == (len(eg.predicted), n_tags) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)
    assert loss > 0 and any(np.abs(d).sum() > 0 for d in d_scores)


def test_loss_is_a_mean_over_the_words_with_a_gold_tag():
    nlp, pipe = tagger("tag", ["DT", "NN", "VBD", "."])
    examples = tag_examples(nlp)
    scores = [np.zeros((4, 4), dtype="float32") for _ in examples]  # uniform: -log(1/4) per word
    loss, d_scores = pipe.get_loss(examples, scores)
    assert loss == pytest.approx(np.log(4), rel=1e-6)
    known_words = 4 + 2
    assert d_scores[0][0].tolist() == pytest.approx([(0.25 - 1) / known_words] + [0.25 / known_words] * 3)
    assert d_scores[1][1].tolist() == [0.0] * 4  # missing gold: no gradient
