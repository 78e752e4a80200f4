"""Saving and loading pipelines offline; clear errors for missing pieces."""

import shutil

import numpy as np
import pytest
import spacy

from spacy_llm_tagger.errors import ModelError, ModelNotFoundError

from .test_component import make_nlp, ner_examples, train
from .util import SENTENCES, make_tiny_model_dir


def scores_of(nlp, texts):
    tagger = nlp.get_pipe("llm_tagger")
    docs = [nlp.make_doc(t) for t in texts]
    return [tagger.model.ops.to_numpy(s) for s in tagger.model.predict(docs)]


def ents_of(nlp, texts):
    return [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = make_tiny_model_dir(tmp_path_factory.mktemp("base"), "llama")
    nlp = make_nlp(base, unmask="01")
    train(nlp, ner_examples(nlp), steps=5)
    return nlp, base


def test_round_trip_identical_predictions(trained, tmp_path):
    nlp, _ = trained
    nlp.to_disk(tmp_path / "pipe")
    assert (tmp_path / "pipe/llm_tagger/model/adapter/adapter_model.safetensors").exists()
    assert not (tmp_path / "pipe/llm_tagger/model/base").exists()
    loaded = spacy.load(tmp_path / "pipe")
    for a, b in zip(scores_of(nlp, SENTENCES), scores_of(loaded, SENTENCES)):
        np.testing.assert_array_equal(a, b)
    assert ents_of(nlp, SENTENCES) == ents_of(loaded, SENTENCES)
    assert loaded.get_pipe("llm_tagger").model.loaded.unmasked_layers == [1, 2]


def test_to_bytes_round_trip(trained):
    nlp, _ = trained
    loaded = spacy.blank("en").from_config(nlp.config)
    loaded.from_bytes(nlp.to_bytes())
    for a, b in zip(scores_of(nlp, SENTENCES), scores_of(loaded, SENTENCES)):
        np.testing.assert_array_equal(a, b)


def test_missing_base_model_is_a_clear_error(trained, tmp_path):
    nlp, base = trained
    moved = tmp_path / "base-copy"
    shutil.copytree(base, moved)
    copy = make_nlp(moved, unmask="01")
    copy.initialize(lambda: ner_examples(copy))
    copy.to_disk(tmp_path / "pipe")
    shutil.rmtree(moved)
    with pytest.raises(ModelNotFoundError, match="store_base_weights"):
        spacy.load(tmp_path / "pipe")
    # the documented fix: point 'name' at the base model
    fixed = spacy.load(tmp_path / "pipe", config={"components.llm_tagger.model.name": str(base)})
    assert len(fixed("Peter lives in Brussels .")) == 5


def test_store_base_weights_is_self_contained(trained, tmp_path):
    nlp, base = trained
    moved = tmp_path / "base-copy"
    shutil.copytree(base, moved)
    copy = make_nlp(moved, unmask="01", store_base_weights=True)
    copy.initialize(lambda: ner_examples(copy))
    copy.to_disk(tmp_path / "pipe")
    shutil.rmtree(moved)
    loaded = spacy.load(tmp_path / "pipe")
    for a, b in zip(scores_of(copy, SENTENCES), scores_of(loaded, SENTENCES)):
        np.testing.assert_array_equal(a, b)


def test_missing_or_corrupt_files_name_the_file(trained, tmp_path):
    nlp, _ = trained
    nlp.to_disk(tmp_path / "pipe")
    head = tmp_path / "pipe/llm_tagger/model/head.safetensors"
    head.write_bytes(head.read_bytes()[:20])
    with pytest.raises(ModelNotFoundError, match="head.safetensors"):
        spacy.load(tmp_path / "pipe")
    head.unlink()
    with pytest.raises(ModelNotFoundError, match="head.safetensors"):
        spacy.load(tmp_path / "pipe")


def test_adapters_from_another_base_are_rejected(trained, tmp_path):
    nlp, _ = trained
    nlp.to_disk(tmp_path / "pipe")
    other = make_tiny_model_dir(tmp_path / "other", "qwen2")
    with pytest.raises((ModelError, ModelNotFoundError)):
        spacy.load(tmp_path / "pipe", config={"components.llm_tagger.model.name": str(other)})


def test_missing_model_folder(tmp_path):
    nlp = make_nlp(tmp_path / "nope")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        nlp.initialize(lambda: ner_examples(nlp))


def test_truncated_model_folder(trained, tmp_path):
    _, base = trained
    broken = tmp_path / "broken"
    shutil.copytree(base, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    nlp = make_nlp(broken)
    with pytest.raises(ModelNotFoundError, match="broken"):
        nlp.initialize(lambda: ner_examples(nlp))
