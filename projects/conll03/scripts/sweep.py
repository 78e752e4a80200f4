"""Train the llm_tagger for every unmask pattern of N layer groups and rank them on dev F1.

The reference paper's experiment (arXiv 2401.14556: 4 groups -> 16 patterns) as a
tool for your own data and model. Each pattern is trained in its own process with the settings
of SYSTEM (systems/sweep.cfg: one epoch of 300 sentences, 200 dev sentences):

    python scripts/train.py sweep --output OUTPUT_DIR/unmask_PATTERN \
        --components.llm_tagger.model.unmask '"PATTERN"' --components.llm_tagger.model.keep_layers K

then its last model is scored on the system's dev sentences (scripts/evaluate.py).

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
from typing import List, Optional

import typer

sys.path.insert(0, str(Path(__file__).parent))
from systems import PROJECT  # noqa: E402
from train import plan  # noqa: E402


def main(
    system: str = typer.Argument(..., help="The settings of every run (systems/NAME.cfg)"),
    output_dir: Path = typer.Argument(..., help="Folder for one trained pipeline per pattern"),
    train_args: Optional[List[str]] = typer.Argument(None, help="More train.py arguments (KEY=VALUE, model=NAME)"),
    groups: int = typer.Option(4, help="Number of layer groups (2**groups patterns)"),
    keep_layers: str = typer.Option("0", help="Decoder depths K, comma-separated (0 = every layer)"),
    score_key: str = typer.Option("ents_f"),
    gpu_id: int = typer.Option(-1, help="GPU for training (-1 = CPU)"),
) -> None:
    output_dir = output_dir.resolve()
    train_args = [*(train_args or []), "--gpu-id", str(gpu_id)]
    settings = plan([system, *train_args])["overrides"]  # where the dev sentences are, how many
    dev = PROJECT / settings["paths.dev"]
    dev_sentences = settings.get("paths.dev_sentences", 0)
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
                sys.executable, str(Path(__file__).resolve().parent / "train.py"), system, "--output", str(out),
                *train_args,
                # JSON-quoted: a bare 0011 on the command line would be read as the number 11
                "--components.llm_tagger.model.unmask", json.dumps(pattern),
                "--components.llm_tagger.model.keep_layers", str(k),
            ]
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            evaluate = [
                sys.executable, str(Path(__file__).resolve().parent / "evaluate.py"),
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
