"""Train the llm_tagger for every unmask pattern of N layer groups and rank them on dev F1.

The reference paper's experiment (arXiv 2401.14556: 4 groups -> 16 patterns) as a
tool for your own data and model. Each pattern is trained in its own process with
`spacy train`; its dev score is read from the saved model's meta.json.

With --keep-layers "0,15" every pattern is also trained on the first 15 layers (the pattern
then splits those 15): runs = 2**groups x len(keep_layers), each costing about K/n_layers
of a full-depth run.
"""
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import typer


def main(
    config: Path = typer.Argument(..., help="llm_tagger training config"),
    output_dir: Path = typer.Argument(..., help="Folder for one trained pipeline per pattern"),
    groups: int = typer.Option(4, help="Number of layer groups (2**groups patterns)"),
    train: Path = typer.Option(..., help="Training .spacy"),
    dev: Path = typer.Option(..., help="Dev .spacy"),
    train_sentences: int = typer.Option(300),
    dev_sentences: int = typer.Option(200),
    epochs: int = typer.Option(1),
    keep_layers: str = typer.Option("0", help="Decoder depths K, comma-separated (0 = every layer)"),
    score_key: str = typer.Option("ents_f"),
    extra: List[str] = typer.Option([], help="Extra overrides: --extra --key=value"),
) -> None:
    patterns = ["".join(bits) for bits in itertools.product("01", repeat=groups)]
    depths = [int(k) for k in keep_layers.split(",") if k.strip()]
    runs = [(pattern, k) for k in depths for pattern in patterns]
    results = []
    output_dir.mkdir(parents=True, exist_ok=True)
    for index, (pattern, k) in enumerate(runs, 1):
        out = output_dir / (f"unmask_{pattern}" + (f"_k{k}" if k else ""))
        metrics_file = out / "dev_metrics.json"
        if not metrics_file.exists():
            print(f"[{index}/{len(runs)}] training unmask={pattern} keep_layers={k}", flush=True)
            start = time.perf_counter()
            command = [
                sys.executable, str(Path(__file__).parent / "train.py"), str(config), str(out),
                "--paths.train", str(train), "--paths.dev", str(dev),
                "--paths.train_sentences", str(train_sentences),
                "--paths.dev_sentences", str(dev_sentences),
                "--training.max_epochs", str(epochs),
                "--training.logger.progress_bar", "null",
                # JSON-quoted: a bare 0011 on the command line would be read as the number 11
                "--components.llm_tagger.model.unmask", json.dumps(pattern),
                "--components.llm_tagger.model.keep_layers", str(k),
                *[part for item in extra for part in item.split("=", 1)],
            ]
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            evaluate = [
                sys.executable, str(Path(__file__).parent / "evaluate.py"),
                str(out / "model-last"), str(dev), str(metrics_file),
                "--sentences", str(dev_sentences),
            ]
            subprocess.run(evaluate, check=True, stdout=subprocess.DEVNULL)
            print(f"    done in {time.perf_counter() - start:.0f} s", flush=True)
        score = json.loads(metrics_file.read_text()).get(score_key) or 0.0
        results.append({"pattern": pattern, "keep_layers": k, score_key: score})
        print(f"    unmask={pattern} keep_layers={k}: dev {score_key} = {100 * score:.1f}", flush=True)
    results.sort(key=lambda r: -r[score_key])
    lines = ["| rank | unmask | keep_layers | dev " + score_key + " |", "|---|---|---|---|"]
    lines += [
        f"| {i} | `{r['pattern']}` | {r['keep_layers'] or 'all'} | {100 * r[score_key]:.1f} |"
        for i, r in enumerate(results, 1)
    ]
    table = "\n".join(lines)
    (output_dir / "ranking.md").write_text(table + "\n")
    (output_dir / "ranking.json").write_text(json.dumps(results, indent=2))
    print(table)


if __name__ == "__main__":
    typer.run(main)
