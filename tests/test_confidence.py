"""Span and token confidences: forward-backward against brute-force enumeration."""
import itertools

import numpy as np
import pytest

from spacy_llm_tagger.pipeline.confidence import (
    forward_backward_batch,
    span_probabilities,
    tempered_log_probs,
    token_marginals,
)
from spacy_llm_tagger.pipeline.decoding import bio_constraints, bio_to_spans

N_LABELS = 2
N_TAGS = 1 + 2 * N_LABELS


def valid(sequence, start, allowed):
    return start[sequence[0]] and all(allowed[a, b] for a, b in zip(sequence, sequence[1:]))


def enumerate_valid(log_probs):
    """Every valid tag sequence with its probability under the constrained model."""
    start, allowed = bio_constraints(N_LABELS)
    sequences = [s for s in itertools.product(range(N_TAGS), repeat=len(log_probs)) if valid(s, start, allowed)]
    weights = np.array([np.exp(sum(log_probs[i, t] for i, t in enumerate(s))) for s in sequences])
    return sequences, weights / weights.sum()


def random_log_probs(rng, n_tokens):
    return tempered_log_probs(rng.normal(scale=2.0, size=(n_tokens, N_TAGS)), 1.0)


@pytest.mark.parametrize("n_tokens", [1, 2, 4, 5])
def test_marginals_equal_brute_force_enumeration(n_tokens):
    rng = np.random.default_rng(n_tokens)
    log_probs = random_log_probs(rng, n_tokens)
    start, allowed = bio_constraints(N_LABELS)
    (lattice,) = forward_backward_batch([log_probs], start, allowed)
    sequences, probs = enumerate_valid(log_probs)
    expected_tokens = np.zeros((n_tokens, N_TAGS))
    span_mass = {}
    for sequence, p in zip(sequences, probs):
        for i, tag in enumerate(sequence):
            expected_tokens[i, tag] += p
        for span in bio_to_spans(np.array(sequence)):
            span_mass[span] = span_mass.get(span, 0.0) + p
    marginals = token_marginals(lattice)
    np.testing.assert_allclose(marginals, expected_tokens, atol=1e-9)
    np.testing.assert_allclose(marginals.sum(axis=1), 1.0, atol=1e-9)
    every_span = [(b, e, label) for b in range(n_tokens) for e in range(b + 1, n_tokens + 1) for label in range(N_LABELS)]
    got = span_probabilities(log_probs, lattice, every_span)
    np.testing.assert_allclose(got, [span_mass.get(s, 0.0) for s in every_span], atol=1e-9)


def test_no_probability_on_invalid_sequences():
    rng = np.random.default_rng(0)
    log_probs = random_log_probs(rng, 4)
    log_probs[:, 2] += 5.0  # the model loves I-label0, which may not start or follow O
    start, allowed = bio_constraints(N_LABELS)
    (lattice,) = forward_backward_batch([log_probs], start, allowed)
    marginals = token_marginals(lattice)
    assert marginals[0, 2] == 0.0 and marginals[0, 4] == 0.0  # no I tag first
    assert np.all(marginals >= 0) and np.allclose(marginals.sum(axis=1), 1.0)


def test_batched_equals_one_doc_at_a_time():
    rng = np.random.default_rng(1)
    docs = [random_log_probs(rng, n) for n in (7, 0, 3, 12, 1, 3)]
    start, allowed = bio_constraints(N_LABELS)
    batched = forward_backward_batch(docs, start, allowed, max_cells=16)
    for doc, lattice in zip(docs, batched):
        if not len(doc):
            assert lattice.log_alpha.shape == (0, N_TAGS)
            continue
        (alone,) = forward_backward_batch([doc], start, allowed)
        np.testing.assert_allclose(lattice.log_alpha, alone.log_alpha)
        np.testing.assert_allclose(lattice.log_beta, alone.log_beta)
        assert lattice.log_z == pytest.approx(alone.log_z)


def test_temperature_flattens_and_sharpens():
    scores = np.array([[3.0, 1.0, 0.0, 0.0, -1.0]])
    sharp, flat = np.exp(tempered_log_probs(scores, 0.5)), np.exp(tempered_log_probs(scores, 2.0))
    assert sharp.max() > np.exp(tempered_log_probs(scores, 1.0)).max() > flat.max()
    np.testing.assert_allclose(flat.sum(), 1.0)
