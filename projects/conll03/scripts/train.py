"""Run `spacy train` with overrides; values written `package:DIST/path` become paths.

Lets configs name model files shipped inside installed Python packages (the
all-MiniLM-L6-v2 encoder for spacy-transformers, say) without hard-coded
site-packages paths.  Usage: train.py CONFIG OUTPUT [--gpu-id N] [--section.key value ...]

Writes OUTPUT/training_log.jsonl (one line per dev evaluation, from spaCy's ConsoleLogger.v3)
and OUTPUT/training_summary.json: seconds, the step of the last evaluation, epochs completed, the best dev
score and its step.
"""
import json
import resource
import sys
import time
from pathlib import Path

from spacy.cli.train import train
from spacy.util import load_config

import spacy_llm_tagger  # noqa: F401  (registers the llm_tagger pieces)
from spacy_llm_tagger.distributed.spacy_adapter import parse_overrides
from spacy_llm_tagger.errors import ModelNotFoundError
from spacy_llm_tagger.models.loading import PACKAGE_PREFIX, package_path


def resolve_package_path(value: str) -> str:
    if not isinstance(value, str) or not value.startswith(PACKAGE_PREFIX):
        return value
    try:
        return package_path(value)
    except ModelNotFoundError as err:
        sys.exit(str(err))


def main() -> None:
    config, output, *rest = sys.argv[1:]
    use_gpu = -1
    if "--gpu-id" in rest:
        at = rest.index("--gpu-id")
        use_gpu = int(rest[at + 1])
        rest = rest[:at] + rest[at + 2:]
    overrides = parse_overrides(rest)
    overrides = {k: resolve_package_path(v) for k, v in overrides.items()}
    # Model names in the config itself (e.g. spacy-transformers' `name`), except in
    # spacy-llm-tagger architectures, which resolve `package:` names on their own (and
    # keep them portable).
    config_values = load_config(Path(config), overrides=overrides, interpolate=False)
    for name, component in config_values.get("components", {}).items():
        key = f"components.{name}.model.name"
        model = component.get("model", {})
        value = model.get("name")
        ours = str(model.get("@architectures", "")).startswith("spacy-llm-tagger.")
        if not ours and isinstance(value, str):
            if value.startswith("package:") and key not in overrides:
                overrides[key] = resolve_package_path(value)
    output_dir = Path(output)
    log_file = output_dir / "training_log.jsonl"
    if "training.logger.output_file" not in overrides:
        log_file.unlink(missing_ok=True)  # the logger will not overwrite an old log
        overrides["training.logger.output_file"] = str(log_file)
    start = time.perf_counter()
    train(Path(config), output_dir, use_gpu=use_gpu, overrides=overrides)
    seconds = time.perf_counter() - start
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "train_seconds.txt").write_text(f"{seconds:.1f}\n")
    summary = summarize(log_file, seconds)
    (output_dir / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"Training took {seconds:.0f} s, {summary.get('steps')} steps; "
          f"best dev score {summary.get('best_score')} at step {summary.get('best_step')}")


def summarize(log_file: Path, seconds: float) -> dict:
    """Steps and epochs run and the best evaluation, read from the logger's JSONL."""
    summary: dict = {
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if not log_file.exists():
        return summary
    rows = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    if not rows:
        return summary
    best = max(rows, key=lambda row: (row["score"], -row["step"]))
    summary.update(
        steps=rows[-1]["step"], epochs_completed=rows[-1]["epoch"], evaluations=len(rows),
        best_step=best["step"], best_score=round(best["score"], 4),
    )
    return summary


if __name__ == "__main__":
    main()
