"""Seeds: key systems retrained with other random seeds, and the mean and spread of their scores.

Each system runs the project's own commands `train-NAME` and `evaluate-NAME` (project.yml,
variables substituted, `--var KEY=VALUE` overriding them as weasel's overrides would), with
`--system.seed SEED` added and the outputs moved to training/seeds/NAME-sSEED and
metrics/seeds/NAME-sSEED.json. Seed 0 is the project's main run (training/NAME and
metrics/NAME.json, from `demo` or `all`: the configs' seed is 0) where it exists and
project.lock says the current command made it. Finished runs are skipped, so a killed run
resumes; a run made by another command (a variable changed since) is trained again, as weasel
reruns a command whose script changed.

    python scripts/seeds.py . metrics/seeds --systems llm-unmasked,spacy-ner --seeds 0,1,2 \
        --var train_sentences=1000 ...
"""
import json
import shlex
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import typer

COMMAND_FILE = "seed_command.json"  # in a seed run's folder: the train-NAME script that made it


def project_commands(root: Path, variables: Dict[str, str]) -> Dict[str, str]:
    """The project's commands (one-line scripts), variables substituted."""
    from weasel.util import load_project_config

    config = load_project_config(root, overrides={f"vars.{k}": v for k, v in variables.items()})
    return {command["name"]: command["script"] for command in config["commands"]}


def seeded(script: List[str], name: str, seed: int) -> List[str]:
    """The train or evaluate command of NAME, writing under seeds/NAME-sSEED."""
    if len(script) != 1:
        raise SystemExit(f"Expected one script line in the commands of {name!r}, got {len(script)}")
    args = shlex.split(script[0])
    training, metrics = seed_paths(Path(), name, seed)
    moved = {
        f"training/{name}": str(training),
        f"training/{name}/model-best": str(training / "model-best"),
        f"metrics/{name}.json": str(metrics),
    }
    if not any(arg in moved for arg in args):
        raise SystemExit(f"The command of {name!r} does not write training/{name} or metrics/{name}.json")
    args = [moved.get(arg, arg) for arg in args]
    if args[0] == "python":
        args[0] = sys.executable
    return args


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
    }


def seed_paths(root: Path, name: str, seed: int) -> Tuple[Path, Path]:
    """The training folder and metrics file of NAME's run with SEED (seed 0's main run aside)."""
    return root / "training" / "seeds" / f"{name}-s{seed}", root / "metrics" / "seeds" / f"{name}-s{seed}.json"


def main_run_command(root: Path, name: str) -> Optional[List[str]]:
    """The script project.lock records for train-NAME (the main run's command), if any."""
    import srsly

    lock = root / "project.lock"
    if not lock.exists():
        return None
    entry = (srsly.read_yaml(lock) or {}).get(f"train-{name}") or {}
    return entry.get("script")


def finished_run(root: Path, name: str, seed: int, script: List[str]) -> Optional[dict]:
    """The scores of NAME with SEED if that run was trained by SCRIPT (train-NAME's current
    script) and evaluated (seed 0: the main run where project.lock says SCRIPT made it), else None."""
    main_metrics = root / "metrics" / f"{name}.json"
    main_training = root / "training" / name
    if seed == 0 and main_metrics.exists() and main_training.exists():
        if main_run_command(root, name) == script:
            return read_run(0, main_metrics, main_training)
    training, metrics = seed_paths(root, name, seed)
    if (training / "training_summary.json").exists() and metrics.exists():
        if trained_by(training) == script:
            return read_run(seed, metrics, training)
    return None


def trained_by(training: Path) -> Optional[List[str]]:
    """The train-NAME script a seed run was started with (None for runs that did not record it)."""
    path = training / COMMAND_FILE
    return json.loads(path.read_text())["script"] if path.exists() else None


def earlier_systems(root: Path, names: List[str]) -> List[str]:
    """Systems other than NAMES with per-seed metrics in metrics/seeds."""
    found = set()
    for path in (root / "metrics" / "seeds").glob("*-s*.json"):
        name, _, seed = path.stem.rpartition("-s")
        if seed.isdigit() and name not in names:
            found.add(name)
    return sorted(found)


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


def train_and_evaluate(root: Path, name: str, seed: int, script: List[str], evaluate: List[str]) -> dict:
    """Train NAME with SEED (unless a run by SCRIPT is there), evaluate it, return its scores.
    A folder trained by another command is trained again; the command is recorded at the end,
    so a killed run has none and is trained again too."""
    training, metrics = seed_paths(root, name, seed)
    if trained_by(training) != script:
        if (training / "training_summary.json").exists():
            print(f"{training} was trained by another command: training it again", flush=True)
        metrics.unlink(missing_ok=True)
        print(f"Training {name}, seed {seed}", flush=True)
        training.mkdir(parents=True, exist_ok=True)
        (training / COMMAND_FILE).unlink(missing_ok=True)
        (training / "training_summary.json").unlink(missing_ok=True)
        run(seeded(script, name, seed) + ["--system.seed", str(seed)], root)
        (training / COMMAND_FILE).write_text(json.dumps({"script": script, "seed": seed}, indent=2) + "\n")
    if not metrics.exists():
        metrics.parent.mkdir(parents=True, exist_ok=True)
        run(seeded(evaluate, name, seed), root)
    return read_run(seed, metrics, training)


def main(
    root: Path = typer.Argument(..., help="The project folder (with project.yml)"),
    output: Path = typer.Argument(..., help="Folder for the per-seed metrics, seeds.json and table.md"),
    systems: str = typer.Option(..., help="Comma-separated systems: each has train-NAME and evaluate-NAME commands"),
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds (0 = the main run where it exists)"),
    var: List[str] = typer.Option([], help="Project variable overrides: --var KEY=VALUE"),
) -> None:
    variables = dict(item.split("=", 1) for item in var)
    commands = project_commands(root, variables)
    names = [name.strip() for name in systems.split(",") if name.strip()]
    seed_list = [int(seed) for seed in seeds.split(",") if seed.strip()]
    for name in names:
        for kind in ("train", "evaluate"):
            if f"{kind}-{name}" not in commands:
                raise SystemExit(f"No command {kind}-{name} in {root / 'project.yml'}")
    rows = []
    for name in names:
        script = commands[f"train-{name}"]
        runs = []
        for seed in seed_list:
            done = finished_run(root, name, seed, script)
            if done is None:
                done = train_and_evaluate(root, name, seed, script, commands[f"evaluate-{name}"])
            runs.append(done)
        rows.append(summary_row(name, runs))
    # systems seeded by earlier calls keep their rows (when their runs match the current
    # commands), so one table holds every finished system
    for name in earlier_systems(root, names):
        script = commands.get(f"train-{name}")
        runs = [done for seed in seed_list if script and (done := finished_run(root, name, seed, script))]
        if runs:
            rows.append(summary_row(name, runs))
    output.mkdir(parents=True, exist_ok=True)
    (output / "seeds.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(write_table(rows, output / "table.md"))


def run(args: List[str], cwd: Path) -> None:
    print("Running:", " ".join(shlex.quote(str(a)) for a in args), flush=True)
    subprocess.run([str(a) for a in args], cwd=cwd, check=True)


if __name__ == "__main__":
    typer.run(main)
