"""Fast inference, measured against accuracy: truncated decoders (keep_layers) and int8.

Trains SYSTEM (the unmasked llm_tagger, llm-unmasked) once per K in --keep-layers on its first
K decoder layers (`train.py SYSTEM --output TRAINING_DIR/kK --components.llm_tagger.model.keep_layers K`),
evaluates each on the test split, then evaluates int8 (quantize = "int8" at load) on top of the
--int8-best configurations with the best dev F1, and how often int8 picks the same label as
float32 for a test token. All layers is the already trained training/SYSTEM. Each step is
skipped when its output exists, so a killed run resumes. Writes METRICS_DIR/table.md and
METRICS_DIR/<name>.json (metrics/fast unless --metrics-dir).

    python scripts/fast.py llm-unmasked --keep-layers 24,20,15,10   # into training/fast, metrics/fast
"""
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import typer

SCRIPTS = Path(__file__).resolve().parent
PROJECT = SCRIPTS.parent


def main(
    system: str = typer.Argument(..., help="The tagger's system (systems/NAME.cfg), trained in training/NAME"),
    train_args: Optional[List[str]] = typer.Argument(None, help="More train.py arguments (KEY=VALUE, model=NAME)"),
    training_dir: Path = typer.Option(PROJECT / "training" / "fast", help="Folder for one trained pipeline per K"),
    metrics_dir: Path = typer.Option(PROJECT / "metrics" / "fast", help="Folder for the metrics and table.md"),
    keep_layers: str = typer.Option("24,20,15,10", help="K values to train, comma-separated"),
    int8_best: int = typer.Option(2, help="Also evaluate int8 for the N configurations with the best dev F1"),
    test: Path = typer.Option(PROJECT / "corpus" / "test.spacy", help="Test data"),
    test_sentences: int = typer.Option(0, help="First N test sentences (0 = all)"),
    gpu_id: int = typer.Option(-1, help="GPU for training (-1 = CPU)"),
) -> None:
    runs: Dict[str, Path] = {"all": PROJECT / "training" / system}
    for k in [int(value) for value in keep_layers.split(",") if value.strip()]:
        name = f"k{k}"
        runs[name] = training_dir / name
        if not (runs[name] / "training_summary.json").exists():
            print(f"Training keep_layers = {k}", flush=True)
            run([SCRIPTS / "train.py", system, "--output", runs[name], "--gpu-id", gpu_id, *(train_args or []),
                 "--components.llm_tagger.model.keep_layers", str(k)])
    rows = []
    for name, folder in runs.items():
        evaluate(folder, metrics_dir / f"{name}.json", test, test_sentences)
        rows.append(row(name, folder, metrics_dir / f"{name}.json", "float32"))
    best = sorted(rows, key=lambda r: -r["dev_f"])[:int8_best]
    for base in best:
        name = f"{base['name']}-int8"
        evaluate(base["folder"], metrics_dir / f"{name}.json", test, test_sentences, int8=True)
        int8_row = row(name, base["folder"], metrics_dir / f"{name}.json", "int8")
        int8_row["agreement"] = agreement(metrics_dir / f"{base['name']}.labels.json", metrics_dir / f"{name}.labels.json")
        rows.append(int8_row)
    table = write_table(rows, metrics_dir / "table.md")
    print(table)


def run(command: List[object]) -> None:
    subprocess.run([sys.executable, *map(str, command)], check=True)


def evaluate(folder: Path, output: Path, test: Path, sentences: int, int8: bool = False) -> None:
    if output.exists():
        return
    print(f"Evaluating {folder}{' in int8' if int8 else ''}", flush=True)
    labels = output.with_suffix(".labels.json")
    command = [SCRIPTS / "evaluate.py", folder / "model-best", test, output,
               "--sentences", sentences, "--documents", -1, "--save-labels", labels]
    if int8:
        command += ["--override", 'components.llm_tagger.model.quantize="int8"']
    run(command)


def row(name: str, folder: Path, metrics_file: Path, precision: str) -> dict:
    metrics = json.loads(metrics_file.read_text())
    summary_file = folder / "training_summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    return {
        "name": name,
        "folder": folder,
        "precision": precision,
        "test_f": 100 * metrics["ents_f"],
        "dev_f": 100 * summary.get("best_score", float("nan")),
        "wps": metrics["words_per_second"],
        "train_s": summary.get("seconds", float("nan")),
        "train_rss": summary.get("peak_rss_mb", float("nan")),
        "rss": metrics.get("peak_rss_mb", float("nan")),
        "agreement": None,
    }


def agreement(reference: Path, other: Path) -> Optional[float]:
    """The share of test tokens whose predicted entity label (IOB + type) is the same."""
    if not (reference.exists() and other.exists()):
        return None
    a = [label for doc in json.loads(reference.read_text()) for label in doc]
    b = [label for doc in json.loads(other.read_text()) for label in doc]
    if len(a) != len(b) or not a:
        return None
    return sum(x == y for x, y in zip(a, b)) / len(a)


def write_table(rows: List[dict], path: Path) -> str:
    reference = next(r for r in rows if r["name"] == "all")
    lines = [
        "| decoder | weights | test F1 | vs all | dev F1 | words/s | speed-up | int8 = fp32 labels "
        "| train s | train peak RSS MB | inference peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        same = "" if r["agreement"] is None else f"{100 * r['agreement']:.1f}%"
        layers = "all layers" if r["name"].startswith("all") else f"first {r['name'].split('-')[0][1:]} layers"
        lines.append(
            f"| {layers} | {r['precision']} | {r['test_f']:.1f} | {r['test_f'] - reference['test_f']:+.1f} "
            f"| {r['dev_f']:.1f} | {r['wps']:.0f} | {r['wps'] / reference['wps']:.2f}x | {same} "
            f"| {r['train_s']:.0f} | {r['train_rss']:.0f} | {r['rss']:.0f} |"
        )
    table = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(table)
    for r in rows:
        r["folder"] = str(r["folder"])
    path.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    return table


if __name__ == "__main__":
    typer.run(main)
