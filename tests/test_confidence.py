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
    sequences = [
        s for s in itertools.product(range(N_TAGS), repeat=len(log_probs)) if valid(s, start, allowed)
    ]
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
    every_span = [
        (b, e, label)
        for b in range(n_tokens)
        for e in range(b + 1, n_tokens + 1)
        for label in range(N_LABELS)
    ]
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


# -- in the component: where the scores go, threshold, serialization, calibration ----------

import spacy  # noqa: E402
from spacy.tokens import DocBin  # noqa: E402
from spacy.training import Example  # noqa: E402

from spacy_llm_tagger.calibration import (  # noqa: E402
    HeldOut,
    calibrate,
    collect,
    expected_calibration_error,
    find_tagger,
    fit_temperature,
    negative_log_likelihood,
    outcomes,
)
from spacy_llm_tagger.corpus import tokens_only  # noqa: E402
from spacy_llm_tagger.errors import ConfigError  # noqa: E402

from .test_component import make_nlp, ner_examples, train  # noqa: E402
from .util import SENTENCES  # noqa: E402

TEXTS = [
    "Peter Blackburn lives in Brussels .",
    "EU rejects German call to boycott British lamb .",
] + SENTENCES


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    nlp = make_nlp(tiny_model_dir, head_dropout=0.0)
    train(nlp, ner_examples(nlp), steps=20, lr=0.02)
    path = tmp_path_factory.mktemp("scored") / "pipe"
    nlp.to_disk(path)
    return path


def scored(doc, key="scored_ents"):
    group = doc.spans[key]
    return [(s.start, s.end, s.label_) for s in group], list(group.attrs["scores"])


def test_every_entity_has_a_probability_next_to_doc_ents(trained):
    nlp = spacy.load(trained)
    docs = list(nlp.pipe(TEXTS))
    assert any(doc.ents for doc in docs)
    for doc in docs:
        spans, scores = scored(doc)
        assert spans == [(e.start, e.end, e.label_) for e in doc.ents]
        assert len(scores) == len(spans) and all(0.0 <= p <= 1.0 for p in scores)


def test_scores_survive_docbin_to_bytes_and_to_disk(trained, tmp_path):
    nlp = spacy.load(trained)
    docs = list(nlp.pipe(TEXTS))
    docbin = DocBin(docs=docs)
    docbin.to_disk(tmp_path / "docs.spacy")
    restored = list(DocBin().from_disk(tmp_path / "docs.spacy").get_docs(nlp.vocab))
    assert [scored(d) for d in restored] == [scored(d) for d in docs]
    again = spacy.tokens.Doc(nlp.vocab).from_bytes(docs[0].to_bytes())
    assert scored(again) == scored(docs[0])
    nlp.get_pipe("llm_tagger").cfg["temperature"] = 2.5
    nlp.to_disk(tmp_path / "pipe")
    reloaded = spacy.load(tmp_path / "pipe")
    assert reloaded.get_pipe("llm_tagger").temperature == 2.5
    hotter = [scored(d)[1] for d in reloaded.pipe(TEXTS)]
    assert hotter != [scored(d)[1] for d in docs]  # the temperature is used


def test_threshold_keeps_unlikely_spans_out_of_doc_ents(trained):
    scores = sorted(p for doc in spacy.load(trained).pipe(TEXTS) for p in scored(doc)[1])
    assert len(scores) >= 2 and scores[0] < scores[-1]
    threshold = (scores[0] + scores[-1]) / 2
    nlp = spacy.load(trained, config={"components.llm_tagger.threshold": threshold})
    dropped = 0
    for doc in nlp.pipe(TEXTS):
        spans, probs = scored(doc)
        kept = [s for s, p in zip(spans, probs) if p >= threshold]
        assert [(e.start, e.end, e.label_) for e in doc.ents] == kept
        dropped += len(spans) - len(kept)
    assert dropped > 0


def test_spans_and_tag_targets_carry_scores(tiny_model_dir):
    spans_nlp = make_nlp(tiny_model_dir, target="spans:sc", head_dropout=0.0)
    examples = ner_examples(spans_nlp)
    for eg in examples:
        eg.reference.spans["sc"] = list(eg.reference.ents)
    train(spans_nlp, examples, steps=10, lr=0.02)
    doc = spans_nlp(TEXTS[0])
    assert len(doc.spans["sc"].attrs["scores"]) == len(doc.spans["sc"])
    report = spans_nlp.get_pipe("llm_tagger").calibrate(examples)  # a probability per span
    assert report.predictions == sum(len(d.spans["sc"]) for d in spans_nlp.pipe(eg.text for eg in examples))
    tag_nlp = make_nlp(tiny_model_dir, target="tag", head_dropout=0.0)
    tag_examples = ner_examples(tag_nlp)
    for eg in tag_examples:
        for token in eg.reference:
            token.tag_ = "NNP" if token.text[0].isupper() else "XX"
    train(tag_nlp, tag_examples, steps=10, lr=0.02)
    doc = tag_nlp(TEXTS[0])
    assert all(0.0 < token._.tag_score <= 1.0 for token in doc)
    report = tag_nlp.get_pipe("llm_tagger").calibrate(tag_examples)  # a probability per token
    assert report.predictions == sum(len(eg.predicted) for eg in tag_examples)


def test_bad_threshold_is_a_clear_error(tiny_model_dir):
    with pytest.raises(ConfigError, match="threshold"):
        make_nlp(tiny_model_dir).add_pipe("llm_tagger", name="second", config={"threshold": 1.5})
    with pytest.raises(ConfigError, match="confidences"):
        make_nlp(tiny_model_dir).add_pipe(
            "llm_tagger", name="second", config={"threshold": 0.5, "confidences": False}
        )


def synthetic_overconfident(pipe, n_docs=300, n_tokens=8, flip=0.3, seed=0):
    """Single-token entities; the scores say ~99% sure, but 30% of the labels are wrong."""
    rng = np.random.default_rng(seed)
    n_labels = len(pipe.labels)
    held_out = HeldOut([], [], [])
    for _ in range(n_docs):
        tags = np.zeros(n_tokens, dtype=np.int64)
        gold = set()
        for i in range(0, n_tokens, 2):
            if rng.random() < 0.5:
                label = int(rng.integers(n_labels))
                gold.add((i, i + 1, label))
                shown = (label + 1) % n_labels if rng.random() < flip else label
                tags[i] = 1 + 2 * shown
        scores = rng.normal(scale=0.3, size=(n_tokens, 1 + 2 * n_labels))
        scores[np.arange(n_tokens), tags] += 6.0
        held_out.scores.append(scores)
        held_out.gold.append(gold)
        held_out.spaces.append(np.zeros(n_tokens, dtype=bool))
    return held_out


def test_calibration_lowers_ece_on_an_overconfident_model(trained):
    pipe = spacy.load(trained).get_pipe("llm_tagger")
    held_out = synthetic_overconfident(pipe)
    before = expected_calibration_error(*outcomes(pipe, held_out, 1.0))
    temperature = fit_temperature(pipe, held_out)
    after = expected_calibration_error(*outcomes(pipe, held_out, temperature))
    assert temperature > 1.0
    assert before > 0.2 and after < before / 3, (before, after, temperature)


def gold_token_examples(nlp):
    return [Example(tokens_only(eg.reference, nlp.vocab), eg.reference) for eg in ner_examples(nlp)]


def test_the_component_fits_its_temperature_and_saves_it(trained, tmp_path):
    nlp = spacy.load(trained)
    pipe = nlp.get_pipe("llm_tagger")
    examples = gold_token_examples(nlp)
    report = pipe.calibrate(examples)
    assert pipe.temperature == report.temperature == pipe.cfg["temperature"]
    assert report.predictions > 0 and 0.0 <= report.ece_after <= 1.0
    held_out = collect(pipe, examples)
    fitted = negative_log_likelihood(*outcomes(pipe, held_out, report.temperature))
    assert fitted <= negative_log_likelihood(*outcomes(pipe, held_out, 1.0))  # 1.0 is on the grid
    nlp.to_disk(tmp_path / "pipe")
    assert spacy.load(tmp_path / "pipe").get_pipe("llm_tagger").temperature == report.temperature
    with pytest.raises(ConfigError, match="temperature"):
        pipe.temperature = 0.0


def test_calibrate_command_saves_the_temperature_through_the_component(trained, tmp_path):
    import shutil

    pipeline = tmp_path / "pipe"
    shutil.copytree(trained, pipeline)
    model_files = {p: p.read_bytes() for p in (pipeline / "llm_tagger" / "model").rglob("*") if p.is_file()}
    nlp = spacy.load(pipeline)
    DocBin(docs=[eg.reference for eg in ner_examples(nlp)]).to_disk(tmp_path / "dev.spacy")
    report = calibrate(pipeline, tmp_path / "dev.spacy", limit=3)
    assert set(report) == {"component", "temperature", "predictions", "ece_before", "ece_after"}
    assert report["component"] == "llm_tagger" and report["predictions"] > 0
    assert spacy.load(pipeline).get_pipe("llm_tagger").temperature == report["temperature"]
    assert {p: p.read_bytes() for p in model_files} == model_files  # only the cfg was written
    with pytest.raises(ConfigError, match="no llm_tagger"):
        find_tagger(spacy.blank("en"))
