"""Seeds: systems retrained with other random seeds, and the mean and spread of their scores.

    python scripts/seeds.py llm-unmasked,spacy-ner --seeds 0,1,2 [--sentences N] [--documents N] \
        [--gpu-id N] [OVERRIDES ...]

Each run goes through the project's own scripts, the same way whatever the system:

    python scripts/train.py NAME --seed S --output training/seeds/NAME-sS [--gpu-id N] [OVERRIDES]
    python scripts/evaluate.py training/seeds/NAME-sS/model-best corpus/test.spacy \
        metrics/seeds/NAME-sS.json --sentences N --documents N

OVERRIDES go to train.py as they are (`model=NAME`, `training.max_epochs=2`, ...). A run is
finished when its folder records the training config this call would train with (train.py's
train_command.json, or the seed_command.json of runs made before systems/, whose old command line
is read back into its config): finished runs are kept, so a killed call resumes and records
restored from results/ are not trained again; a run made with other settings is trained again.
Seed 0 is the main run (training/NAME, from the demo or the study) where it has the same config:
it is only evaluated, into metrics/seeds/NAME-s0.json unless metrics/NAME.json already scores it
as asked. Writes OUTPUT/seeds.json and OUTPUT/table.md. A row holds every seed run of its system,
not only this call's seeds: runs of earlier calls stay while they match the settings of this call,
and stay as recorded in the previous seeds.json when nothing records how their folder was trained
(absent, or restored without its command, as in a clone); a run trained with other settings leaves
the row.
"""
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import typer

sys.path.insert(0, str(Path(__file__).parent))
from systems import (  # noqa: E402
    PROJECT,
    TEST_DATA,
    config_text,
    fingerprint,
    parse_train_command,
    project_relative,
    same_config,
)
from train import COMMAND_FILE, plan  # noqa: E402

SCRIPTS = Path(__file__).resolve().parent
LEGACY_COMMAND_FILE = "seed_command.json"  # seed runs made before systems/: {"script": [...], "seed": S}


def wanted(name: str, seed: int, train_args: List[str]) -> Tuple[str, int]:
    """The training config (and gpu) train.py would use for NAME with SEED and TRAIN_ARGS."""
    run = plan([name, "--seed", str(seed), *train_args])
    return config_text(run["config"], run["overrides"]), run["gpu"]


def recorded(folder: Path) -> Optional[Tuple[str, int]]:
    """The training config (and gpu) a finished run in FOLDER was trained with, if it says."""
    if not (folder / "training_summary.json").exists():
        return None
    if (folder / COMMAND_FILE).exists():
        data = json.loads((folder / COMMAND_FILE).read_text())
        return data["config"], int(data.get("gpu_id", -1))
    if (folder / LEGACY_COMMAND_FILE).exists():  # the old project's train-NAME script, plus the seed
        data = json.loads((folder / LEGACY_COMMAND_FILE).read_text())
        config, overrides, gpu = parse_train_command(data["script"][0])
        return config_text(config, {**overrides, "system.seed": data["seed"]}), gpu
    return None


def finished(folder: Path, want: Tuple[str, int]) -> bool:
    found = recorded(folder)
    return found is not None and found[1] == want[1] and same_config(found[0], want[0])


def trained_by(folder: Path) -> Optional[dict]:
    """What evaluate.py records about the training of FOLDER/model-best (None: an older run)."""
    if not (folder / COMMAND_FILE).exists():
        return None
    data = json.loads((folder / COMMAND_FILE).read_text())
    return {"system": data.get("system"), "seed": data.get("seed"), "command": data.get("command"),
            "config_sha256": fingerprint(data.get("config", ""))}


def scores_run(metrics: Path, folder: Path, documents: int) -> bool:
    """Whether METRICS scores the model in FOLDER (as trained now), with documents if asked."""
    if not metrics.exists():
        return False
    data = json.loads(metrics.read_text())
    if documents >= 0 and "document_level" not in data:
        return False
    # metrics of runs made before train_command.json were deleted whenever their run was retrained
    return data.get("trained_by") == trained_by(folder)


def seed_paths(root: Path, name: str, seed: int) -> Tuple[Path, Path]:
    """The training folder and metrics file of NAME's run with SEED."""
    return root / "training" / "seeds" / f"{name}-s{seed}", root / "metrics" / "seeds" / f"{name}-s{seed}.json"


def read_run(seed: int, metrics: Path, training: Path) -> dict:
    m = json.loads(metrics.read_text())
    summary_file = training / "training_summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    return {
        "seed": seed,
        "f": 100 * m["ents_f"],
        "doc_f": 100 * m.get("document_level", {}).get("ents_f", float("nan")),
        "dev_f": 100 * summary.get("best_score", float("nan")),
        "best_step": summary.get("best_step"),
        "train_s": summary.get("seconds", float("nan")),
        "training": str(project_relative(training)),
    }


def find_run(name: str, seed: int, want: Tuple[str, int], documents: int) -> Tuple[Optional[Path], Path]:
    """(the finished training folder of NAME with SEED, or None; the metrics file for it)."""
    training, metrics = seed_paths(PROJECT, name, seed)
    if finished(training, want):
        return training, metrics
    main = PROJECT / "training" / name
    if seed == 0 and finished(main, want):
        main_metrics = PROJECT / "metrics" / f"{name}.json"
        return main, main_metrics if scores_run(main_metrics, main, documents) else metrics
    return None, metrics


def summary_row(name: str, runs: List[dict]) -> dict:
    """Mean, spread (sample standard deviation) and range of test F1 over the seeds."""
    def stats(values: List[float]) -> Dict[str, float]:
        values = [v for v in values if v == v]  # NaN = not measured
        if not values:
            return {"mean": float("nan"), "sd": float("nan"), "min": float("nan"), "max": float("nan")}
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return {"mean": statistics.fmean(values), "sd": sd, "min": min(values), "max": max(values)}

    return {
        "system": name,
        "seeds": [run["seed"] for run in runs],
        "f": stats([run["f"] for run in runs]),
        "doc_f": stats([run["doc_f"] for run in runs]),
        "dev_f": stats([run["dev_f"] for run in runs]),
        "train_s": stats([run["train_s"] for run in runs]),
        "runs": runs,
    }


def metrics_seeds(root: Path) -> Dict[str, Set[int]]:
    """The seeds of every system with per-seed metrics in metrics/seeds (NAME-sS.json)."""
    folder = root / "metrics" / "seeds"
    found: Dict[str, Set[int]] = {}
    for path in folder.glob("**/*-s*.json"):
        name, _, seed = str(path.relative_to(folder).with_suffix("")).rpartition("-s")
        if seed.isdigit():
            found.setdefault(name, set()).add(int(seed))
    return found


def earlier_systems(root: Path, names: List[str]) -> List[str]:
    """Systems other than NAMES with per-seed metrics in metrics/seeds."""
    return sorted(set(metrics_seeds(root)) - set(names))


def previous_rows(seeds_file: Path) -> Dict[str, dict]:
    """The rows an earlier call wrote to SEEDS_FILE, by system."""
    if not seeds_file.exists():
        return {}
    return {row["system"]: row for row in json.loads(seeds_file.read_text())}


def known_seeds(root: Path, name: str, previous: Dict[str, dict]) -> Set[int]:
    """Seeds of NAME that an earlier call recorded: in the previous row or as a metrics file."""
    return set(previous.get(name, {}).get("seeds", [])) | metrics_seeds(root).get(name, set())


def kept_runs(name: str, seeds: Set[int], train_args: List[str], previous: Optional[dict]) -> Dict[int, dict]:
    """Runs of NAME with SEEDS, from an earlier call, that stay in its row: finished and scored
    with this call's settings, or recorded in PREVIOUS where nothing records how their folder was
    trained (absent, or restored without its command: as in a clone)."""
    recorded_runs = {run["seed"]: run for run in (previous or {}).get("runs", [])}
    kept = {}
    for seed in sorted(seeds):
        training, metrics = find_run(name, seed, wanted(name, seed, train_args), -1)
        if training is not None and scores_run(metrics, training, -1):
            kept[seed] = read_run(seed, metrics, training)
        elif seed in recorded_runs and not any(map(recorded, run_folders(name, recorded_runs[seed]))):
            kept[seed] = recorded_runs[seed]  # no record of its training left to check it against
    return kept


def run_folders(name: str, run: dict) -> List[Path]:
    """Where a recorded RUN of NAME was trained (rows written before runs named it: both places)."""
    if "training" in run:
        return [PROJECT / run["training"]]
    folders = [seed_paths(PROJECT, name, run["seed"])[0]]
    return folders + [PROJECT / "training" / name] if run["seed"] == 0 else folders


def write_table(rows: List[dict], path: Path) -> str:
    lines = [
        "| system | seeds | test F1 mean ± sd | min - max | doc F1 mean ± sd | dev F1 mean | train s mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: -r["f"]["mean"]):
        f, doc, dev = r["f"], r["doc_f"], r["dev_f"]
        lines.append(
            f"| {r['system']} | {len(r['seeds'])} | {f['mean']:.1f} ± {f['sd']:.1f} | "
            f"{f['min']:.1f} - {f['max']:.1f} | {doc['mean']:.1f} ± {doc['sd']:.1f} | "
            f"{dev['mean']:.1f} | {r['train_s']['mean']:.0f} |"
        )
    table = "\n".join(lines) + "\n"
    path.write_text(table)
    return table


def main(
    systems: str = typer.Argument(..., help="Comma-separated systems (names in systems/)"),
    train_args: Optional[List[str]] = typer.Argument(
        None, help="More arguments for train.py: config overrides KEY=VALUE, model=NAME"
    ),
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds (0 = the main run where it matches)"),
    output: Path = typer.Option(PROJECT / "metrics" / "seeds", help="Folder for seeds.json and table.md"),
    sentences: int = typer.Option(0, help="Test sentences to score (0 = all)"),
    documents: int = typer.Option(0, help="Test documents to score as whole documents (0 = all, -1 = none)"),
    gpu_id: int = typer.Option(-1, help="GPU for training (-1 = CPU)"),
) -> None:
    train_args = [*(train_args or []), "--gpu-id", str(gpu_id)]
    names = [name.strip() for name in systems.split(",") if name.strip()]
    seed_list = [int(seed) for seed in seeds.split(",") if seed.strip()]
    previous = previous_rows(output / "seeds.json")
    rows = []
    for name in names:
        runs = {}
        for seed in seed_list:
            want = wanted(name, seed, train_args)
            training, metrics = find_run(name, seed, want, documents)
            if training is None:
                training = seed_paths(PROJECT, name, seed)[0]
                if (training / "training_summary.json").exists():
                    print(f"{training} was trained with other settings: training it again", flush=True)
                metrics.unlink(missing_ok=True)
                print(f"Training {name}, seed {seed}", flush=True)
                run([SCRIPTS / "train.py", name, "--seed", seed, "--output", project_relative(training), *train_args])
            if not scores_run(metrics, training, documents):
                run([SCRIPTS / "evaluate.py", project_relative(training / "model-best"), TEST_DATA, project_relative(metrics),
                     "--sentences", sentences, "--documents", documents])
            runs[seed] = read_run(seed, metrics, training)
        earlier = known_seeds(PROJECT, name, previous) - set(runs)
        runs = {**kept_runs(name, earlier, train_args, previous.get(name)), **runs}
        rows.append(summary_row(name, [runs[seed] for seed in sorted(runs)]))
    # systems seeded by earlier calls keep their rows while their runs match the current settings
    for name in sorted((set(earlier_systems(PROJECT, names)) | set(previous)) - set(names)):
        kept = kept_runs(name, known_seeds(PROJECT, name, previous), train_args, previous.get(name))
        if kept:
            rows.append(summary_row(name, [kept[seed] for seed in sorted(kept)]))
    output.mkdir(parents=True, exist_ok=True)
    (output / "seeds.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(write_table(rows, output / "table.md"))


def run(args: List[object]) -> None:
    args = [sys.executable, *map(str, args)]
    print("Running:", " ".join(shlex.quote(a) for a in args), flush=True)
    subprocess.run(args, cwd=PROJECT, check=True)


if __name__ == "__main__":
    typer.run(main)
