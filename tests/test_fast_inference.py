"""keep_layers (a truncated decoder) and quantize = "int8" (CPU inference)."""

import numpy as np
import pytest
import spacy
import torch
from safetensors import safe_open

from spacy_llm_tagger.errors import ConfigError
from spacy_llm_tagger.models.quantization import check_can_quantize
from spacy_llm_tagger.models.unmasking import find_decoder_layers

from .test_component import make_nlp, ner_examples, train
from .util import SENTENCES, make_tiny_model_dir


def tagger_model(nlp):
    return nlp.get_pipe("llm_tagger").model


def token_labels(nlp, texts):
    model = tagger_model(nlp)
    docs = [nlp.make_doc(text) for text in texts]
    return np.concatenate([model.ops.to_numpy(scores).argmax(-1) for scores in model.predict(docs)])


def base_of(nlp):
    decoder = tagger_model(nlp).loaded.module.decoder
    return decoder.get_base_model() if hasattr(decoder, "get_base_model") else decoder


@pytest.fixture(scope="module")
def four_layer_base(tmp_path_factory):
    return make_tiny_model_dir(tmp_path_factory.mktemp("base4"), "llama", n_layers=4)


@pytest.fixture(scope="module")
def truncated(four_layer_base):
    nlp = make_nlp(four_layer_base, keep_layers=2, unmask="01", store_base_weights=True)
    train(nlp, ner_examples(nlp), steps=5)
    return nlp


def test_kept_layers_only_are_built_and_unmask_counts_them(truncated):
    base = base_of(truncated)
    assert len(find_decoder_layers(base)) == 2 and base.config.num_hidden_layers == 2
    # "01" splits the two kept layers, not the model's four
    assert tagger_model(truncated).loaded.unmasked_layers == [1]


def test_dropped_layers_are_not_saved_and_round_trip(truncated, tmp_path):
    truncated.to_disk(tmp_path / "pipe")
    weights = tmp_path / "pipe/llm_tagger/model/base/model.safetensors"
    with safe_open(str(weights), "pt") as saved:
        layer_ids = {int(k.split("layers.")[1].split(".")[0]) for k in saved.keys() if "layers." in k}
    assert layer_ids == {0, 1}
    loaded = spacy.load(tmp_path / "pipe")
    assert len(find_decoder_layers(base_of(loaded))) == 2
    np.testing.assert_array_equal(token_labels(truncated, SENTENCES), token_labels(loaded, SENTENCES))


def test_loading_with_other_keep_layers_is_a_clear_error(truncated, tmp_path):
    truncated.to_disk(tmp_path / "pipe")
    with pytest.raises(ConfigError, match="trained with keep_layers = 2"):
        spacy.load(tmp_path / "pipe", config={"components.llm_tagger.model.keep_layers": 3})


def test_keep_layers_out_of_range_names_the_layer_count(four_layer_base):
    nlp = make_nlp(four_layer_base, keep_layers=5)
    with pytest.raises(ConfigError, match="has 4 decoder layers"):
        nlp.initialize(lambda: ner_examples(nlp))


def test_keep_layers_equal_to_the_layer_count_is_the_whole_model(four_layer_base):
    nlp = make_nlp(four_layer_base, keep_layers=4)
    nlp.initialize(lambda: ner_examples(nlp))
    assert len(find_decoder_layers(base_of(nlp))) == 4


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = make_tiny_model_dir(tmp_path_factory.mktemp("base"), "llama")
    nlp = make_nlp(base, unmask="all", head_dropout=0.0)
    train(nlp, ner_examples(nlp), steps=30, lr=0.02)
    path = tmp_path_factory.mktemp("pipe") / "pipe"
    nlp.to_disk(path)
    return nlp, path


def test_int8_agrees_with_full_precision(trained):
    nlp, path = trained
    int8 = spacy.load(path, config={"components.llm_tagger.model.quantize": "int8"})
    seen = [example.reference.text for example in ner_examples(nlp)]
    assert (token_labels(nlp, seen) == token_labels(int8, seen)).mean() >= 0.97
    # unseen text on a 32-dimensional model has near ties: int8 flips a few of them
    assert (token_labels(nlp, SENTENCES) == token_labels(int8, SENTENCES)).mean() >= 0.9
    module = tagger_model(int8).loaded.predicting_module
    int8_linear = torch.ao.nn.quantized.dynamic.Linear
    assert any(isinstance(m, int8_linear) for m in module.decoder.modules())
    kinds = {name.rsplit(".", 1)[-1]: type(m) for name, m in module.decoder.named_modules()}
    assert kinds["down_proj"] is kinds["o_proj"] is torch.nn.Linear  # output projections: float32
    assert kinds["up_proj"] is int8_linear and kinds["q_proj"] is int8_linear
    # the full-precision network stays: it is what trains and what gets saved
    assert tagger_model(int8).loaded.module is not module


def test_int8_copy_is_rebuilt_after_training(trained):
    nlp, path = trained
    int8 = spacy.load(path, config={"components.llm_tagger.model.quantize": "int8"})
    tagger_model(int8).predict([int8.make_doc("Peter lives in Brussels .")])
    first = tagger_model(int8).loaded.inference_module
    optimizer = int8.resume_training()
    int8.update(ner_examples(int8), sgd=optimizer)
    assert tagger_model(int8).loaded.inference_module is None
    tagger_model(int8).predict([int8.make_doc("Peter lives in Brussels .")])
    assert tagger_model(int8).loaded.inference_module is not first


def test_int8_pipeline_saves_full_precision(trained, tmp_path):
    nlp, path = trained
    int8 = spacy.load(path, config={"components.llm_tagger.model.quantize": "int8"})
    list(int8.pipe(SENTENCES))
    int8.to_disk(tmp_path / "again")
    again = spacy.load(tmp_path / "again")  # saved config says int8: it loads and predicts in int8
    assert tagger_model(again).settings.quantize == "int8"
    plain = spacy.load(tmp_path / "again", config={"components.llm_tagger.model.quantize": "none"})
    np.testing.assert_array_equal(token_labels(nlp, SENTENCES), token_labels(plain, SENTENCES))


def test_quantize_errors():
    with pytest.raises(ConfigError, match="quantize must be one of"):
        make_nlp("unused", quantize="int4")
    with pytest.raises(ConfigError, match="dtype = 'float32'"):
        make_nlp("unused", quantize="int8", dtype="bfloat16")
    with pytest.raises(ConfigError, match="for CPU inference"):
        check_can_quantize(torch.device("cuda", 0))
    with pytest.raises(ConfigError, match="keep_layers must be >= 0"):
        make_nlp("unused", keep_layers=-1)


def test_keep_layers_cuts_gemma3_layer_types(tmp_path):
    # Gemma 3 lists each layer's attention type: the list must be cut with the layers, so the
    # kept sliding layers keep their window and the global ones stay global.
    base = make_tiny_model_dir(tmp_path / "gemma3", "gemma3", n_layers=6)
    nlp = make_nlp(base, keep_layers=4)
    nlp.initialize(lambda: ner_examples(nlp))
    config = base_of(nlp).config
    assert config.num_hidden_layers == 4
    assert config.layer_types == [
        "sliding_attention",
        "sliding_attention",
        "full_attention",
        "sliding_attention",
    ]
    assert len(list(nlp.pipe(SENTENCES))) == len(SENTENCES)
