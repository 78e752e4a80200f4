"""Keep the small records of finished runs in results/, to commit them, and bring them back.

The models stay out of git, but what the README's tables are made of does not: every
metrics/**/*.json and *.md and, per finished training run, training_summary.json,
train_seconds.txt, training_log.jsonl and the command that trained it (train_command.json;
seed_command.json for seed runs made before systems/), and per scored sweep pattern
(sweep/**/dev_metrics.json) its dev metrics and training records. `save` copies them
under results/ (same relative paths); `restore` copies them back where they are missing, so
`compare`, `full-table` and `seeds` (which skips finished seeds made by the current commands)
can go on from runs made on another machine or in another session.

    python scripts/results.py save . results        # in projects/conll03
    python scripts/results.py restore . results
"""
import shutil
from pathlib import Path
from typing import Iterable, Iterator

import typer

app = typer.Typer(add_completion=False, help=__doc__.split("\n")[0])

TRAINING_RECORDS = ("training_summary.json", "train_seconds.txt", "training_log.jsonl", "train_command.json",
                    "seed_command.json")


def records(root: Path) -> Iterator[Path]:
    """The record files under root (a project folder or a results folder), relative to it."""
    for pattern in ("metrics/**/*.json", "metrics/**/*.md"):
        yield from (path.relative_to(root) for path in root.glob(pattern))
    # a training folder counts once its run finished (wrote its summary): a half run is
    # retrained, never restored as if it were done
    for summary in root.glob("training/**/training_summary.json"):
        yield from run_records(root, summary.parent, TRAINING_RECORDS)
    # a sweep pattern counts once its model was scored on dev: sweep.py skips it then, so a
    # restored sweep goes on with the patterns that are left
    for scored in root.glob("sweep/**/dev_metrics.json"):
        yield from run_records(root, scored.parent, ("dev_metrics.json", *TRAINING_RECORDS))


def run_records(root: Path, folder: Path, names: Iterable[str]) -> Iterator[Path]:
    """The files NAMES of the run in FOLDER that exist, relative to ROOT."""
    for name in names:
        if (folder / name).exists():
            yield (folder / name).relative_to(root)


def copy_records(source: Path, target: Path, overwrite: bool) -> int:
    copied = 0
    for relative in sorted(set(records(source))):
        destination = target / relative
        if destination.exists() and not overwrite:
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / relative, destination)
        copied += 1
    return copied


@app.command()
def save(
    project: Path = typer.Argument(..., help="The project folder"),
    results: Path = typer.Argument(..., help="Folder to copy the records into (committed)"),
) -> None:
    """Copy the records of every run in the project into RESULTS (newer runs overwrite)."""
    print(f"{copy_records(project, results, overwrite=True)} records saved to {results}")


@app.command()
def restore(
    project: Path = typer.Argument(..., help="The project folder"),
    results: Path = typer.Argument(..., help="Folder the records were saved to"),
) -> None:
    """Copy saved records back into the project where a file of that name is missing."""
    if not results.is_dir():
        raise SystemExit(f"No saved results in {results}: run `python scripts/results.py save` first")
    print(f"{copy_records(results, project, overwrite=False)} records restored from {results}")


if __name__ == "__main__":
    app()
