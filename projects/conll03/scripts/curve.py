"""Learning curve: test F1 against the number of training sentences, from the seed runs.

    python scripts/curve.py llm-unmasked,gemma-0011,trf-ner,spacy-ner --sizes 100,300,1000,3000 \
        [--train --seeds 0,1,2 --large-seeds 0]

At 1,000 sentences a system is its own seed runs (`seeds.py SYSTEM`); at another size N it is
`curve/SYSTEM-N` (systems/curve/, the same system on the first N training sentences). With
--train, first runs seeds.py for every point, smallest sizes first (--seeds up to 1,000
sentences, --large-seeds above): finished runs are kept, so a killed call resumes. Reads
metrics/seeds/seeds.json, which seeds.py writes, and writes OUTPUT/curve.md (mean ± sd over
seeds, and how many) and OUTPUT/curve.png (means with their spread, sentences on a log scale).
"""
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import typer

sys.path.insert(0, str(Path(__file__).parent))
from systems import PROJECT  # noqa: E402

DEFAULT_SIZE = 1000


def curve_system(system: str, size: int) -> str:
    """The system that trains SYSTEM on SIZE sentences."""
    return system if size == DEFAULT_SIZE else f"curve/{system}-{size}"


def train_points(systems: List[str], sizes: List[int], seeds: str, large_seeds: str, gpu_id: int) -> None:
    """seeds.py for every (system, size), one size at a time from the smallest."""
    for size in sorted(sizes):
        names = ",".join(curve_system(system, size) for system in systems)
        chosen = seeds if size <= DEFAULT_SIZE else large_seeds
        command = [sys.executable, str(Path(__file__).parent / "seeds.py"), names, "--seeds", chosen]
        print("+ " + " ".join(command[1:]), flush=True)
        subprocess.run([*command, "--gpu-id", str(gpu_id)], check=True)


def read_rows(seeds_file: Path) -> Dict[str, dict]:
    if not seeds_file.exists():
        return {}
    return {row["system"]: row for row in json.loads(seeds_file.read_text())}


def cell(row: Optional[dict]) -> str:
    if row is None:
        return "-"
    f = row["f"]
    spread = f" ± {f['sd']:.1f}" if len(row["seeds"]) > 1 else ""
    return f"{f['mean']:.1f}{spread} ({len(row['seeds'])})"


def write_table(systems: List[str], sizes: List[int], rows: Dict[str, dict], path: Path) -> str:
    lines = [
        "| system | " + " | ".join(f"{size:,} sentences" for size in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for system in systems:
        cells = [cell(rows.get(curve_system(system, size))) for size in sizes]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Test F1 (full test split, one Doc per sentence): mean ± sd over seeds (how many seeds); "
        "the same dev and test sentences at every size."
    )
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def write_chart(systems: List[str], sizes: List[int], rows: Dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for system in systems:
        points = [(size, rows[curve_system(system, size)]["f"]) for size in sizes if curve_system(system, size) in rows]
        if not points:
            continue
        xs = [size for size, _ in points]
        means = [f["mean"] for _, f in points]
        sds = [f["sd"] for _, f in points]
        ax.errorbar(xs, means, yerr=sds, marker="o", capsize=3, label=system)
    ax.set_xscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels([f"{size:,}" for size in sizes])
    ax.set_xlabel("training sentences")
    ax.set_ylabel("test F1")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(
    systems: str = typer.Argument(..., help="Comma-separated systems"),
    sizes: str = typer.Option("100,300,1000,3000", help="Comma-separated training-set sizes"),
    seeds_file: Path = typer.Option(PROJECT / "metrics" / "seeds" / "seeds.json", help="seeds.py's records"),
    output: Path = typer.Option(PROJECT / "metrics" / "curve", help="Folder for curve.md and curve.png"),
    train: bool = typer.Option(False, "--train", help="Train and score the missing points first (seeds.py)"),
    seeds: str = typer.Option("0,1,2", help="With --train: seeds up to 1,000 sentences"),
    large_seeds: str = typer.Option("0", help="With --train: seeds above 1,000 sentences"),
    gpu_id: int = typer.Option(-1, help="With --train: GPU for training (-1 = CPU)"),
) -> None:
    names = [s for s in systems.split(",") if s]
    counts = [int(s) for s in sizes.split(",") if s]
    if train:
        train_points(names, counts, seeds, large_seeds, gpu_id)
    rows = read_rows(seeds_file)
    output.mkdir(parents=True, exist_ok=True)
    print(write_table(names, counts, rows, output / "curve.md"))
    write_chart(names, counts, rows, output / "curve.png")


if __name__ == "__main__":
    typer.run(main)
