"""Runs the your_data project on tiny settings: a tiny random decoder instead of SmolLM2 and
10 training steps on the example data. Run from the repository root:
    python -m pytest projects/your_data            # the workflow without install-check
    python -m pytest projects/your_data --slow     # + install-check (fresh venv, PyPI: minutes)
"""
import json
import os
import shutil
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import srsly

PROJECT = Path(__file__).parent
sys.path.insert(0, str(PROJECT.parent.parent))
from tests.util import make_tiny_model_dir  # noqa: E402

FILES = ("project.yml", "README.md", "configs", "scripts", "example_data", "example_texts.txt")
LABELS = {"company", "person", "product"}
TINY = {"vars.max_steps": 10, "vars.eval_frequency": 5, "vars.review_size": 5, "vars.base_package": ""}


def copy_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for item in FILES:
        src = PROJECT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / item)
    return root


def run(root: Path, name: str, overrides: dict) -> None:
    from weasel.cli.run import project_run

    cwd = os.getcwd()
    os.chdir(root)  # weasel reads the current directory first
    try:
        project_run(root, name, overrides=overrides, capture=False)
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The `all` workflow up to install-check, with a tiny decoder; then the review loop."""
    # one torch thread: a tiny model is faster so, most of all on a busy machine
    threads = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    root = copy_project(tmp_path_factory.mktemp("your_data"))
    tiny = make_tiny_model_dir(tmp_path_factory.mktemp("tiny-decoder"), "llama", n_layers=2)
    overrides = {**TINY, "vars.model": str(tiny)}
    run(root, "init-config", overrides)
    steps = srsly.read_yaml(root / "project.yml")["workflows"]["all"]
    assert steps[-1] == "install-check"
    for step in steps[:-1]:
        run(root, step, overrides)
    run(root, "review", overrides)
    yield root, overrides
    if threads is None:
        os.environ.pop("OMP_NUM_THREADS")
    else:
        os.environ["OMP_NUM_THREADS"] = threads


def test_workflow_writes_per_label_metrics_and_a_wheel(project):
    root, overrides = project
    assert "tiny-decoder" in (root / "configs" / "config.cfg").read_text()
    for level, docs in (("documents", 40), ("sentences", 99)):
        metrics = json.loads((root / "metrics" / f"test_{level}.json").read_text())
        assert metrics["level"] == level and metrics["docs"] == docs
        assert 0.0 <= metrics["ents_f"] <= 1.0
        assert set(metrics["gold_ents_per_type"]) == LABELS
        assert sum(metrics["gold_ents_per_type"].values()) == 131
        for prf in metrics["ents_per_type"].values():
            assert set(prf) == {"p", "r", "f"}
    assert (root / "training" / "model-best" / "meta.json").exists()
    cfg = json.loads((root / "training" / "model-best" / "llm_tagger" / "cfg").read_text())
    assert cfg["temperature"] > 0 and set(cfg["labels"]) == LABELS
    name = "en_your_data_tagger-0.1.0"
    assert (root / "packages" / name / "dist" / f"{name}-py3-none-any.whl").exists()


def test_review_queue_goes_back_into_training(project):
    import spacy
    from spacy.training import Corpus
    from weasel.cli.run import check_rerun
    from weasel.util import load_project_config

    root, overrides = project
    queue = [json.loads(line) for line in (root / "annotations" / "review" / "review.jsonl").open()]
    assert len(queue) == 5 and all("score" in span for task in queue for span in task["spans"])
    # a person corrects the queue (here: keeps it) and saves it where reviewed_data points
    shutil.copy(root / "annotations" / "review" / "review.jsonl", root / "assets" / "reviewed.jsonl")
    run(root, "add-reviewed", overrides)
    assert len(list(Corpus(root / "corpus" / "train")(spacy.blank("en")))) == 120 + 5
    commands = {c["name"]: c for c in load_project_config(root, overrides=overrides)["commands"]}
    assert check_rerun(root, commands["train"]) and not check_rerun(root, commands["convert"])


def test_readme_is_weasel_document_output(tmp_path):
    from weasel.cli.document import project_document

    shutil.copy(PROJECT / "project.yml", tmp_path / "project.yml")
    shutil.copy(PROJECT / "README.md", tmp_path / "README.md")
    project_document(tmp_path, tmp_path / "README.md")
    assert (tmp_path / "README.md").read_text() == (PROJECT / "README.md").read_text(), (
        "README.md is out of date: run `weasel document --output README.md` in projects/your_data"
    )


def test_committed_config_is_init_config_output(tmp_path):
    root = copy_project(tmp_path / "copy")
    (root / "configs" / "config.cfg").unlink()
    run(root, "init-config", {})
    assert (root / "configs" / "config.cfg").read_text() == (PROJECT / "configs" / "config.cfg").read_text(), (
        "configs/config.cfg differs from what init-config writes now: run `weasel run init-config` "
        "in projects/your_data (and keep any edits you meant)"
    )


def index_reachable() -> bool:
    url = urlparse(os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=5).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_install_check_in_a_fresh_venv(project):
    if not index_reachable():
        pytest.skip("install-check needs the package index (PyPI)")
    root, overrides = project
    run(root, "all", overrides)  # every step but install-check is up to date
    check = json.loads((root / "metrics" / "install_check.json").read_text())
    assert check["identical"] and check["docs"] == 40 and check["max_score_difference"] <= 1e-4
    assert check["venv_packages"]["spacy-llm-tagger"]
