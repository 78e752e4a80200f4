"""Predictions do not depend on batching, padding or windowing."""

import numpy as np
import pytest

from .test_component import make_nlp, ner_examples
from .util import FAMILIES, SENTENCES


def predict(nlp, docs):
    tagger = nlp.get_pipe("llm_tagger")
    return [tagger.model.ops.to_numpy(s) for s in tagger.model.predict(docs)]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("unmask", ["none", "all"])
def test_doc_alone_equals_doc_in_padded_batch(tiny_family_dir, family, unmask):
    nlp = make_nlp(tiny_family_dir(family), unmask=unmask, max_batch_tokens=4096)
    nlp.initialize(lambda: ner_examples(nlp))
    docs = [nlp.make_doc(t) for t in SENTENCES]
    batched = predict(nlp, docs)
    for doc, scores in zip(docs, batched):
        alone = predict(nlp, [doc])[0]
        assert scores.shape == (len(doc), 9)
        np.testing.assert_allclose(alone, scores, atol=1e-4)


def test_small_token_budget_splits_batches_without_changing_output(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir, max_length=64, max_batch_tokens=64)
    nlp.initialize(lambda: ner_examples(nlp))
    big = make_nlp(tiny_model_dir, max_length=64, max_batch_tokens=100000)
    big.get_pipe("llm_tagger").from_bytes(nlp.get_pipe("llm_tagger").to_bytes())
    docs = [nlp.make_doc(t) for t in SENTENCES * 3]
    for a, b in zip(predict(nlp, docs), predict(big, docs)):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_long_doc_windows_cover_every_token(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir, max_length=32, window_overlap=8, unmask="all")
    nlp.initialize(lambda: ner_examples(nlp))
    text = " ".join(SENTENCES * 20)
    doc = nlp(text)
    assert len(doc) > 500
    (scores,) = predict(nlp, [nlp.make_doc(text)])
    assert scores.shape[0] == len(doc) and np.isfinite(scores).all()
    # a sentence far into the long doc scores like the sentence alone, as far
    # as its window context allows: the scores are not all equal (real output)
    assert scores.std(axis=0).max() > 0


def test_pipe_keeps_count_and_order(tiny_model_dir):
    nlp = make_nlp(tiny_model_dir)
    nlp.initialize(lambda: ner_examples(nlp))
    texts = ["", " ", "a", *SENTENCES, "\n\n", "x " * 300] * 3
    docs = list(nlp.pipe(texts, batch_size=4))
    assert [d.text for d in docs] == texts


def test_automatic_batch_tokens_depend_on_the_device():
    from spacy_llm_tagger.errors import ConfigError
    from spacy_llm_tagger.models.settings import DecoderSettings

    auto = DecoderSettings(name="any")
    assert auto.batch_tokens("cpu") == 512 and auto.batch_tokens("cuda") == 8192
    assert DecoderSettings(name="any", max_batch_tokens=100).batch_tokens("cpu") == 100
    with pytest.raises(ConfigError, match="max_batch_tokens"):
        DecoderSettings(name="any", max_batch_tokens=-1)
    with pytest.raises(ConfigError, match="Invalid unmask"):
        DecoderSettings(name="any", unmask="left-only")
