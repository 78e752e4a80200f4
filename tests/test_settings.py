"""The settings are written once: both architectures and the component's defaults derive from them."""

import inspect
from dataclasses import MISSING, fields

import pytest
import spacy
from spacy.util import registry
from thinc.api import Config

from spacy_llm_tagger.models.settings import DEFAULT_MODEL_NAME, DecoderSettings
from spacy_llm_tagger.pipeline.llm_tagger import DEFAULT_MODEL

ARCHITECTURES = {
    # registered name -> settings it leaves out, extra parameters it adds
    "spacy-llm-tagger.DecoderTagger.v1": ((), ("nO",)),
    "spacy-llm-tagger.DecoderTransformerModel.v1": (("head_dropout",), ()),
}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_architecture_signature_is_the_settings(name):
    excluded, extra = ARCHITECTURES[name]
    parameters = inspect.signature(registry.architectures.get(name)).parameters
    settings = [f for f in fields(DecoderSettings) if f.name not in excluded]
    assert list(parameters) == [f.name for f in settings] + list(extra)
    for setting in settings:
        parameter = parameters[setting.name]
        expected = inspect.Parameter.empty if setting.default is MISSING else setting.default
        assert parameter.default == expected, setting.name
        assert parameter.annotation == setting.type, setting.name


def test_component_default_model_holds_every_default():
    assert DEFAULT_MODEL["@architectures"] == "spacy-llm-tagger.DecoderTagger.v1"
    assert DEFAULT_MODEL["name"] == DEFAULT_MODEL_NAME
    for setting in fields(DecoderSettings):
        if setting.default is not MISSING:
            assert DEFAULT_MODEL[setting.name] == setting.default, setting.name


def test_filled_config_spells_out_every_setting_and_rejects_unknown_ones(tiny_model_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("llm_tagger", config={"model": {"name": str(tiny_model_dir), "lora_r": 4}})
    model_config = nlp.config["components"]["llm_tagger"]["model"]
    assert model_config["lora_r"] == 4 and model_config["window_overlap"] == 64
    assert {f.name for f in fields(DecoderSettings)} <= set(model_config)
    # the filled config round-trips through its text form
    assert Config().from_str(nlp.config.to_str())["components"]["llm_tagger"]["model"] == model_config
    with pytest.raises(Exception, match="lora_rank"):
        spacy.blank("en").add_pipe("llm_tagger", config={"model": {"lora_rank": 4}})


def test_an_unknown_setting_suggests_the_closest_known_name(tmp_path):
    from spacy_llm_tagger.distributed.training import load_training_config
    from spacy_llm_tagger.errors import ConfigError

    from .test_training import CONFIG

    suggestion = r"`lora_rank` \(did you mean `lora_r`\?\) in \[components\.llm_tagger\.model\]"
    # `spacy-llm-tagger train` checks the config (and its overrides) before spaCy validates it
    with pytest.raises(ConfigError, match=suggestion):
        load_training_config(CONFIG, {"components.llm_tagger.model.lora_rank": 8})
    config = spacy.util.load_config(CONFIG, interpolate=False)
    config["components"]["llm_tagger"]["model"]["poolling"] = "mean"
    config.to_disk(tmp_path / "typo.cfg")
    with pytest.raises(ConfigError, match="`poolling` \\(did you mean `pooling`\\?\\)"):
        load_training_config(tmp_path / "typo.cfg", {})
    # the architectures themselves, called from Python
    with pytest.raises(ConfigError, match="did you mean `lora_r`"):
        registry.architectures.get("spacy-llm-tagger.DecoderTagger.v1")(name="x", lora_rank=4)
    with pytest.raises(ConfigError, match=r"`xyz` in the \[model\] block. Known settings: name, unmask"):
        registry.architectures.get("spacy-llm-tagger.DecoderTagger.v1")(name="x", xyz=4)


def test_settings_are_validated_in_the_architecture():
    from spacy_llm_tagger.errors import ConfigError

    with pytest.raises(ConfigError, match="pooling"):
        registry.architectures.get("spacy-llm-tagger.DecoderTagger.v1")(name="x", pooling="max")


def test_a_copy_of_a_loaded_model_predicts_the_same(tiny_model_dir):
    from .test_component import make_nlp, ner_examples

    nlp = make_nlp(tiny_model_dir)
    nlp.initialize(lambda: ner_examples(nlp))
    model = nlp.get_pipe("llm_tagger").model
    copied = model.copy()
    assert copied is not model and copied.loaded.module is not model.loaded.module
    docs = [eg.predicted for eg in ner_examples(nlp)]
    for a, b in zip(model.predict(docs), copied.predict(docs)):
        assert (a == b).all()
