"""Train one of the project's systems (systems/SYSTEM.cfg) with `spacy train`.

    python scripts/train.py SYSTEM [--seed S] [--output DIR] [--gpu-id N] [--model NAME]
        [--checkpoint-steps N] [OVERRIDES]

OVERRIDES are config overrides as `spacy train` takes them (`--training.max_epochs 2`), or
written KEY=VALUE (`training.max_epochs=2`, the form project variables use); `model=NAME` is
`--model NAME`: the base decoder of the system's tagger (a hub id, a model folder, a .gguf file or
`package:DIST/FILE`; systems without a decoder ignore it). The run writes to training/SYSTEM
(--output: elsewhere), whatever the current folder; relative paths in configs are read from the
project folder. Values written `package:DIST/path` become paths to files inside installed Python
packages (the MiniLM encoder of spacy-transformers), except in this package's architectures,
which resolve them on their own and keep them portable in the saved pipeline.

Training is resumable: stopped (killed, out of time), the same command goes on from
OUTPUT/checkpoint, written at every dev evaluation (and every --checkpoint-steps); a finished
run, or one of other settings, trains again from the start. For a seed, the steps are those
`spacy train` takes.

Writes OUTPUT/training_log.jsonl (one line per dev evaluation, from spaCy's ConsoleLogger.v3),
OUTPUT/training_summary.json (seconds, the step of the last evaluation, epochs completed, the best
dev score and its step) and, once training has finished, OUTPUT/train_command.json: the system,
the seed, this command and the full training config, which `seeds.py` compares to tell finished
runs of the current settings.

The form `python scripts/train.py CONFIG OUTPUT [--section.key value ...] [--gpu-id N]` (a config
file instead of a system), which the project's commands used before systems/, still works.
"""
import json
import os
import resource
import shlex
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import spacy_llm_tagger  # noqa: F401  (registers the llm_tagger pieces)
from spacy_llm_tagger.checkpoints import TrainingProgress
from spacy_llm_tagger.errors import ModelNotFoundError
from spacy_llm_tagger.models.loading import PACKAGE_PREFIX, package_path
from spacy_llm_tagger.resumable_training import train_resumable
from spacy_llm_tagger.spacy_adapter import parse_overrides

sys.path.insert(0, str(Path(__file__).parent))
from systems import PROJECT, config_text, system_overrides, training_config  # noqa: E402

COMMAND_FILE = "train_command.json"
USAGE = __doc__.split("\n\n")[1]


def resolve_package_path(value: Any) -> Any:
    if not isinstance(value, str) or not value.startswith(PACKAGE_PREFIX):
        return value
    try:
        return package_path(value)
    except ModelNotFoundError as err:
        sys.exit(str(err))


def split_args(args: List[str], options: Tuple[str, ...]) -> Tuple[Dict[str, str], List[str]]:
    """The named options (`--seed 1`, `--seed=1`; `model=NAME` is `--model NAME`) and the config
    overrides, as `spacy train` reads them (`--key value`, `--key=value`; KEY=VALUE added)."""
    found: Dict[str, str] = {}
    rest: List[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name in options or (name == "model" and eq):
            if not eq:
                if i + 1 >= len(args):
                    sys.exit(f"{name} needs a value\n{USAGE}")
                i += 1
                value = args[i]
            found["--model" if name == "model" else name] = value
        elif arg.startswith("--"):
            rest.append(arg)
            if not eq and i + 1 < len(args) and not args[i + 1].startswith("--"):
                i += 1
                rest.append(args[i])  # its value, whatever it holds
        elif eq:  # KEY=VALUE
            rest += [f"--{name}", value]
        else:
            sys.exit(f"Unexpected argument {arg!r}\n{USAGE}")
        i += 1
    return found, rest


def plan(args: List[str]) -> dict:
    """What a command line trains: system (or config), output folder, gpu, overrides."""
    if not args or args[0] in ("-h", "--help"):
        sys.exit(USAGE)
    target, *rest = args
    if target.endswith(".cfg"):  # the old form: CONFIG OUTPUT [overrides]
        if not rest:
            sys.exit(USAGE)
        output, *rest = rest
        options, rest = split_args(rest, ("--gpu-id",))
        overrides = {k: resolve_package_path(v) for k, v in parse_overrides(rest).items()}
        return {"system": None, "config": str(Path(target).resolve()), "overrides": overrides,
                "output": Path(output).resolve(), "gpu": int(options.get("--gpu-id", -1)), "seed": None,
                "checkpoint_steps": 0}
    options, rest = split_args(rest, ("--seed", "--output", "--gpu-id", "--model", "--checkpoint-steps"))
    seed = int(options["--seed"]) if "--seed" in options else None
    config, overrides = system_overrides(
        target, seed=seed, model=options.get("--model", ""), extra=parse_overrides(rest)
    )
    output = Path(options["--output"]).resolve() if "--output" in options else PROJECT / "training" / target
    return {"system": target, "config": config, "overrides": overrides, "output": output,
            "gpu": int(options.get("--gpu-id", -1)), "seed": seed,
            "checkpoint_steps": int(options.get("--checkpoint-steps", 0))}


def main(args: Optional[List[str]] = None) -> None:
    args = sys.argv[1:] if args is None else args
    run = plan(args)
    command = "python scripts/train.py " + " ".join(shlex.quote(a) for a in args)
    if run["system"]:
        os.chdir(PROJECT)  # systems name corpus/, assets/ relative to the project folder
    config_path, overrides = run["config"], dict(run["overrides"])
    config_values = training_config(config_path, overrides)
    recorded = config_text(config_path, overrides) if run["system"] else None
    # Model names in the config itself (spacy-transformers' `name`), except in spacy-llm-tagger
    # architectures, which resolve `package:` names on their own (and keep them portable).
    for name, component in config_values.get("components", {}).items():
        key = f"components.{name}.model.name"
        model = component.get("model", {})
        value = model.get("name")
        ours = str(model.get("@architectures", "")).startswith("spacy-llm-tagger.")
        if not ours and isinstance(value, str) and value.startswith(PACKAGE_PREFIX):
            overrides[key] = resolve_package_path(value)
    output_dir: Path = run["output"]
    log_file = output_dir / "training_log.jsonl"
    if "training.logger.output_file" not in overrides:
        overrides["training.logger.output_file"] = str(log_file)  # rewritten on every start
    (output_dir / COMMAND_FILE).unlink(missing_ok=True)  # written again once this run has finished
    # a stopped run of the same config goes on from its checkpoint; anything else starts over
    progress = train_resumable(Path(config_path), output_dir, overrides, use_gpu=run["gpu"], restart_stale=True,
                               checkpoint_steps=run["checkpoint_steps"])
    (output_dir / "train_seconds.txt").write_text(f"{progress.seconds:.1f}\n")
    summary = summarize(log_file, progress)
    (output_dir / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if recorded is not None:
        record = {"system": run["system"], "seed": config_values["system"]["seed"], "gpu_id": run["gpu"],
                  "command": command, "config": recorded}
        (output_dir / COMMAND_FILE).write_text(json.dumps(record, indent=2) + "\n")
    print(f"Training took {progress.seconds:.0f} s, {summary['steps']} steps; "
          f"best dev score {summary.get('best_score')} at step {summary.get('best_step')}")


def summarize(log_file: Path, progress: TrainingProgress) -> dict:
    """Time, the last step and its epoch (the run's own count: a run evaluated less often than it
    stepped trained past its last evaluation) and the best evaluation, from the logger's JSONL."""
    summary: dict = {
        "seconds": round(progress.seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "steps": progress.step,
        "epochs_completed": progress.epoch,
    }
    if not log_file.exists():
        return summary
    rows = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    if not rows:
        return summary
    best = max(rows, key=lambda row: (row["score"], -row["step"]))
    summary.update(evaluations=len(rows), best_step=best["step"], best_score=round(best["score"], 4))
    return summary


if __name__ == "__main__":
    main()
