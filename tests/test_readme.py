"""The README's shell examples run as written (with a tiny model and few steps where they train)."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"


def shell_block(name: str) -> list:
    """The commands of the ```bash block that follows ``<!-- test: NAME -->`` in the README."""
    text = README.read_text(encoding="utf8")
    match = re.search(rf"<!-- test: {re.escape(name)} -->\n```bash\n(.*?)```", text, re.S)
    assert match, f"README has no bash block marked <!-- test: {name} -->"
    return [line for line in match.group(1).splitlines() if line.strip() and not line.startswith("#")]


def runnable(command: str, tiny_model: Path) -> list:
    """The argv for a README command: this interpreter, and tiny settings for training."""
    argv = shlex.split(command)
    if argv[0] == "spacy-llm-tagger":
        argv = [sys.executable, "-m", "spacy_llm_tagger", *argv[1:]]
    elif argv[0] == "python":
        argv = [sys.executable, *argv[1:]]
    if argv[3:4] == ["init-config"]:
        argv += ["--model", str(tiny_model)]
    if argv[1:4] == ["-m", "spacy", "train"]:
        argv += ["--training.max_steps", "6", "--training.eval_frequency", "3"]
    return argv


def test_your_own_data_commands_run_as_written(tiny_model_dir, tmp_path):
    (tmp_path / "projects").symlink_to(ROOT / "projects")
    commands = shell_block("your-own-data")
    assert [c.split()[0:2] for c in commands][:3] == [["spacy-llm-tagger", "convert"]] * 2 + [
        ["spacy-llm-tagger", "init-config"]
    ]
    for command in commands:
        result = subprocess.run(
            runnable(command, tiny_model_dir), cwd=tmp_path, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "training" / "model-best" / "llm_tagger").is_dir()
    assert (tmp_path / "corpus" / "dev.spacy").exists() and (tmp_path / "corpus" / "test.spacy").exists()


def test_the_spacy_train_example_with_a_layer_pattern_runs(tmp_path):
    """The `unmask '"0011"'` override, as the README writes it (it once failed unquoted)."""
    from spacy_llm_tagger.convert import convert

    from .util import make_tiny_model_dir

    four_layers = make_tiny_model_dir(tmp_path / "tiny-4", n_layers=4)
    (tmp_path / "projects").symlink_to(ROOT / "projects")
    example = ROOT / "projects" / "your_data" / "example_data" / "example.jsonl"
    convert(example, tmp_path / "train.spacy", lang="en", dev_share=0.2, dev_output=tmp_path / "dev.spacy")
    (command,) = [" ".join(line.rstrip("\\").strip() for line in shell_block("spacy-train-unmask"))]
    argv = runnable(command, four_layers) + ["--components.llm_tagger.model.name", str(four_layers)]
    result = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    config = (tmp_path / "out" / "model-best" / "config.cfg").read_text()
    assert 'unmask = "0011"' in config


@pytest.mark.parametrize("name", ["your-own-data", "spacy-train-unmask"])
def test_marked_blocks_exist(name):
    assert shell_block(name)
