"""Rank systems on dev F1 alone: to choose a setting (a learning rate, a layer set) without test.

    python scripts/rank.py lr/gemma-0011-1e-4,lr/gemma-0011-3e-4 [--train] [--seed 0] \
        [--output metrics/lr/gemma-0011.md] [--gpu-id N]

With --train, each system missing a finished run of its current settings in training/SYSTEM is
trained first (`train.py SYSTEM --seed S`): finished runs are kept, so a killed call resumes.
Then writes a table of each run's best dev F1 (the model-best that would be tested), its step,
the last step and the training seconds, best first. Nothing is scored on test.
"""
import json
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import typer

sys.path.insert(0, str(Path(__file__).parent))
from seeds import finished, wanted  # noqa: E402
from systems import PROJECT  # noqa: E402

SCRIPTS = Path(__file__).resolve().parent


def train_missing(names: List[str], seed: int, gpu_id: int) -> None:
    for name in names:
        folder = PROJECT / "training" / name
        args = ["--gpu-id", str(gpu_id)]
        if finished(folder, wanted(name, seed, args)):
            print(f"{name}: finished, kept", flush=True)
            continue
        command = [sys.executable, str(SCRIPTS / "train.py"), name, "--seed", str(seed), *args]
        print("+ " + " ".join(command[1:]), flush=True)
        subprocess.run(command, check=True)


def summary(name: str) -> Optional[dict]:
    path = PROJECT / "training" / name / "training_summary.json"
    return json.loads(path.read_text()) if path.exists() else None


def write_ranking(names: List[str], path: Optional[Path]) -> str:
    rows = [(name, summary(name)) for name in names]
    done = sorted((row for row in rows if row[1]), key=lambda row: -row[1]["best_score"])
    lines = ["| system | best dev F1 | best / last step | train s |", "|---|---|---|---|"]
    for name, s in done:
        lines.append(f"| {name} | {100 * s['best_score']:.1f} | {s['best_step']} / {s['steps']} | {s['seconds']:.0f} |")
    lines.extend(f"| {name} | not trained | - | - |" for name, s in rows if not s)
    lines.append("")
    lines.append("Dev F1 on the system's dev sentences, at the best evaluation (model-best); no test scores.")
    text = "\n".join(lines) + "\n"
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return text


def main(
    systems: str = typer.Argument(..., help="Comma-separated systems (systems/NAME.cfg)"),
    train: bool = typer.Option(False, "--train", help="Train the systems without a finished run first"),
    seed: int = typer.Option(0, help="With --train: the seed of every run"),
    output: Optional[Path] = typer.Option(None, help="Also write the table to this file"),
    gpu_id: int = typer.Option(-1, help="With --train: GPU for training (-1 = CPU)"),
) -> None:
    names = [s for s in systems.split(",") if s]
    if train:
        train_missing(names, seed, gpu_id)
    print(write_ranking(names, output))


if __name__ == "__main__":
    typer.run(main)
