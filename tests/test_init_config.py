"""`spacy-llm-tagger init-config`: a complete config that trains from convert's output."""

import json

import pytest
import spacy
from spacy.cli.train import train
from spacy.util import load_config, load_model_from_config
from typer.testing import CliRunner

from spacy_llm_tagger.cli import app
from spacy_llm_tagger.convert import convert
from spacy_llm_tagger.errors import ConfigError
from spacy_llm_tagger.init_config import init_config
from spacy_llm_tagger.training_callbacks import untrained_best_warning

from .test_component import NER_DATA


def prodigy_file(path, copies):
    records = [
        {"text": text, "spans": [{"start": s, "end": e, "label": l} for s, e, l in ents]}
        for text, ents in NER_DATA
    ] * copies
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize(
    "target,score", [("ents", "ents_f"), ("tag", "tag_acc"), ("pos", "pos_acc"), ("spans:sc", "spans_sc_f")]
)
def test_the_config_is_complete_and_weighs_the_targets_own_score(tmp_path, target, score):
    config = init_config(tmp_path / "config.cfg", target=target)
    assert load_config(tmp_path / "config.cfg").to_str() == config.to_str()
    nlp = load_model_from_config(load_config(tmp_path / "config.cfg"), auto_fill=True, validate=True)
    assert nlp.pipe_names == ["llm_tagger"]
    assert nlp.get_pipe("llm_tagger").cfg["target"] == target
    assert dict(config["training"]["score_weights"]) == {score: 1.0}
    assert config["training"]["max_epochs"] == 0  # no epoch cap on small data


def test_unknown_target_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        init_config(tmp_path / "config.cfg", target="entities")


def test_the_tagger_warms_up_and_the_learning_rate_then_stays(tmp_path):
    config = init_config(tmp_path / "config.cfg")
    assert config["components"]["llm_tagger"]["warmup_steps"] == 30
    assert isinstance(config["training"]["optimizer"]["learn_rate"], float)  # no total needed


def test_unmask_and_learn_rate_options_reach_the_config(tmp_path):
    result = CliRunner().invoke(
        app, ["init-config", str(tmp_path / "config.cfg"), "--unmask", "0011", "--learn-rate", "6e-4"]
    )
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "config.cfg")
    assert config["components"]["llm_tagger"]["model"]["unmask"] == "0011"
    assert config["training"]["optimizer"]["learn_rate"] == 0.0006
    assert init_config(tmp_path / "indices.cfg", unmask="3, 5")["components"]["llm_tagger"]["model"][
        "unmask"
    ] == [3, 5]
    assert init_config(tmp_path / "default.cfg")["components"]["llm_tagger"]["model"]["unmask"] == "all"


@pytest.mark.parametrize("unmask", ["0012", "1,x"])
def test_a_bad_unmask_option_names_the_forms_it_takes(tmp_path, unmask):
    result = CliRunner().invoke(app, ["init-config", str(tmp_path / "config.cfg"), "--unmask", unmask])
    assert result.exit_code == 1
    assert "0011" in result.output or "0,1,5" in result.output
    assert not (tmp_path / "config.cfg").exists()


def test_a_base_pipeline_comes_first_frozen_and_its_scores_do_not_pick_model_best(tmp_path):
    base = spacy.blank("en")
    base.add_pipe("sentencizer")
    tagger = base.add_pipe("tagger")
    tagger.add_label("NN")
    base.initialize()
    base.to_disk(tmp_path / "base")
    config = init_config(tmp_path / "config.cfg", base_pipeline=str(tmp_path / "base"))
    assert config["nlp"]["pipeline"] == ["sentencizer", "tagger", "llm_tagger"]
    assert config["training"]["frozen_components"] == ["sentencizer", "tagger"]
    assert config["components"]["tagger"] == {"source": str(tmp_path / "base")}
    weights = dict(config["training"]["score_weights"])
    assert weights["ents_f"] == 1.0 and weights["tag_acc"] is None
    with pytest.raises(ConfigError, match="Cannot load --base-pipeline"):
        init_config(tmp_path / "other.cfg", base_pipeline="no_such_pipeline_installed")


def test_untrained_best_warning():
    assert untrained_best_warning([(0, 0.1), (10, 0.3)]) is None
    assert "untrained model" in untrained_best_warning([(0, 0.07), (10, 0.0), (20, 0.07)])
    assert "single evaluation" in untrained_best_warning([(0, 0.0)])
    assert untrained_best_warning([]) is None


def test_convert_init_config_and_spacy_train_make_a_trained_tagger(tiny_model_dir, tmp_path, capsys):
    convert(prodigy_file(tmp_path / "train.jsonl", 4), tmp_path / "train.spacy")
    convert(prodigy_file(tmp_path / "dev.jsonl", 1), tmp_path / "dev.spacy")
    result = CliRunner().invoke(
        app, ["init-config", str(tmp_path / "config.cfg"), "--model", str(tiny_model_dir)]
    )
    assert result.exit_code == 0, result.output
    overrides = {
        "paths.train": str(tmp_path / "train.spacy"),
        "paths.dev": str(tmp_path / "dev.spacy"),
        "training.max_steps": 40,
        "training.eval_frequency": 10,
        "training.optimizer.learn_rate": 0.01,
        "components.llm_tagger.warmup_steps": 5,
        "training.logger.progress_bar": None,
    }
    train(tmp_path / "config.cfg", tmp_path / "out", overrides=overrides)
    captured = capsys.readouterr()
    assert "ENTS_F" in captured.out
    best = spacy.load(tmp_path / "out" / "model-best")
    assert best.meta["performance"]["ents_f"] > 0.5, captured.out
    assert "untrained model" not in captured.err


def test_a_run_that_never_beats_its_first_evaluation_warns(tiny_model_dir, tmp_path, capsys):
    convert(prodigy_file(tmp_path / "train.jsonl", 1), tmp_path / "train.spacy")
    init_config(tmp_path / "config.cfg", model=str(tiny_model_dir))
    overrides = {
        "paths.train": str(tmp_path / "train.spacy"),
        "paths.dev": str(tmp_path / "train.spacy"),
        "training.max_steps": 3,
        "training.eval_frequency": 10,
        "training.logger.progress_bar": None,
    }
    train(tmp_path / "config.cfg", tmp_path / "out", overrides=overrides)
    assert "untrained model" in capsys.readouterr().err


def test_the_config_calibrates_each_checkpoint_on_the_dev_data(tiny_model_dir, tmp_path, monkeypatch):
    from spacy_llm_tagger.pipeline.llm_tagger import LLMTagger
    from spacy_llm_tagger.training_callbacks import calibrate_before_to_disk

    config = init_config(tmp_path / "config.cfg")
    assert config["training"]["before_to_disk"]["@misc"] == "spacy-llm-tagger.calibrate.v1"
    assert config["training"]["before_to_disk"]["path"] == "${paths.dev}"
    convert(prodigy_file(tmp_path / "dev.jsonl", 1), tmp_path / "dev.spacy")
    nlp = spacy.blank("en")
    nlp.add_pipe("llm_tagger", config={"model": {"name": str(tiny_model_dir)}})
    calls = []
    monkeypatch.setattr(LLMTagger, "calibrate", lambda self, examples: calls.append(list(examples)))
    assert calibrate_before_to_disk(str(tmp_path / "dev.spacy"), limit=3)(nlp) is nlp
    (examples,) = calls
    assert len(examples) == 3 and all(len(eg.reference.ents) for eg in examples)
    assert calibrate_before_to_disk(None)(nlp) is nlp and len(calls) == 1
