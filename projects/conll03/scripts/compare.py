"""One markdown table (and a bar chart PNG) of every evaluated system side by side.

With --recorded results, the records of the study (results/metrics: the seeds, trf-ner, Gemma,
the full corpus) follow as rows of their own, each with the date and commit it was measured at
(the commit its metrics record, the date from the run table in results/README.md), and the
mean and spread of the recorded seeds.
"""
import json
import re
import statistics
import subprocess
from pathlib import Path
from typing import Dict, List, Optional

import typer

TYPES = ["PER", "ORG", "LOC", "MISC"]


def fmt(value: float, digits: int = 1) -> str:
    return "-" if value != value else f"{value:.{digits}f}"


def make_row(name: str, m: dict, training: Path) -> dict:
    """A table row from a metrics JSON and its training folder (summary and seconds)."""
    seconds_file = training / "train_seconds.txt"
    train_s = float(seconds_file.read_text()) if seconds_file.exists() else float("nan")
    summary_file = training / "training_summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    per_type = m.get("ents_per_type") or {}
    return {
        "system": name,
        "f": 100 * m["ents_f"],
        "doc_f": 100 * m.get("document_level", {}).get("ents_f", float("nan")),
        "p": 100 * m["ents_p"],
        "r": 100 * m["ents_r"],
        **{t: 100 * per_type.get(t, {}).get("f", 0.0) for t in TYPES},
        "train_s": train_s,
        "dev": 100 * summary.get("best_score", float("nan")),
        "best_step": summary.get("best_step", "?"),
        "steps": summary.get("steps", "?"),
        "wps": m["words_per_second"],
        "size": m["size_mb"],
        "sentences": m["sentences"],
        "environment": m.get("environment", {}),
    }


def main(
    metrics_dir: Path = typer.Argument(..., help="Folder of metrics/*.json"),
    training_dir: Path = typer.Argument(..., help="Folder with one subfolder per trained system"),
    output_md: Path = typer.Argument(...),
    output_png: Optional[Path] = typer.Argument(None),
    tradeoff: Optional[Path] = typer.Option(
        None, help="Also chart test F1 against words/s (with `fast`'s configurations) to this PNG"
    ),
    recorded: Optional[Path] = typer.Option(
        None, help="The study's records (results/): their rows follow, with date and commit"
    ),
) -> None:
    rows = []
    for file in sorted(metrics_dir.glob("*.json")):
        m = json.loads(file.read_text())
        if "ents_f" not in m:
            continue
        rows.append(make_row(file.stem, m, training_dir / file.stem))
    rows.sort(key=lambda r: -r["f"])
    lines = [
        "| system | F1 | doc F1 | P | R | " + " | ".join(f"{t} F1" for t in TYPES)
        + " | dev F1 | best / last step | train s | words/s | size MB |",
        "|---" * (10 + len(TYPES)) + "|",
    ]
    for r in rows:
        lines.append(
            f"| {r['system']} | {r['f']:.1f} | {fmt(r['doc_f'])} | {r['p']:.1f} | {r['r']:.1f} | "
            + " | ".join(f"{r[t]:.1f}" for t in TYPES)
            + f" | {fmt(r['dev'])} | {r['best_step']} / {r['steps']} | {fmt(r['train_s'], 0)}"
            + f" | {r['wps']:.0f} | {r['size']:.1f} |"
        )
    if rows:
        lines.append("")
        lines.append(
            f"F1, P, R and per-type F1: one Doc per test sentence ({rows[0]['sentences']} "
            f"sentences); doc F1: one Doc per test document, its bare tokens (no sentence "
            f"boundaries), as `nlp(article)` reads it. dev F1: the best dev evaluation (the `model-best` "
            f"that was tested), at the best step; training stopped at the last step (patience or "
            f"epoch cap); train s includes the dev evaluations."
        )
        environments = {json.dumps(r["environment"], sort_keys=True) for r in rows}
        for environment in sorted(environments):
            names = [r["system"] for r in rows if json.dumps(r["environment"], sort_keys=True) == environment]
            lines.append(f"Measured with {describe(json.loads(environment))}: {', '.join(names)}.")
    multitask = multitask_table(metrics_dir, training_dir)
    if multitask:
        lines += ["", multitask]
    if recorded is not None:
        lines += ["", recorded_tables(recorded, [r["system"] for r in rows])]
    table = "\n".join(lines)
    output_md.parent.mkdir(parents=True, exist_ok=True)
    output_md.write_text(table + "\n")
    print(table)
    if output_png is not None and rows:
        write_chart(rows, output_png)
    if tradeoff is not None and rows:
        write_tradeoff_chart(rows, metrics_dir / "fast" / "table.json", tradeoff)


def measured_dates(results: Path) -> Dict[str, str]:
    """Commit (7 characters) -> the date of the run that used it, from results/README.md's table."""
    dates: Dict[str, str] = {}
    readme = results / "README.md"
    if readme.exists():
        for line in readme.read_text(encoding="utf8").splitlines():
            found = re.match(r"\| (\d{4}-\d{2}-\d{2}) \| ([^|]*)\|", line)
            if found:
                for commit in re.findall(r"\b[0-9a-f]{7,40}\b", found.group(2)):
                    dates.setdefault(commit[:7], found.group(1))
    return dates


def commit_date(commit: str, dates: Dict[str, str]) -> str:
    if commit[:7] in dates:
        return dates[commit[:7]]
    try:  # a run not in the table: the commit's own date, where this is a git clone
        return subprocess.run(["git", "show", "-s", "--format=%cs", commit], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).resolve().parent).stdout.strip() or "date ?"
    except (OSError, subprocess.CalledProcessError):
        return "date ?"


def recorded_tables(results: Path, this_run: List[str]) -> str:
    """The study's recorded rows (1,000 sentences, then the full corpus) and their seeds' spread."""
    dates = measured_dates(results)
    groups: Dict[str, List[dict]] = {"1000": [], "full": []}
    seeds: Dict[str, List[float]] = {}
    seeded = {path.stem.rpartition("-s")[0] for path in (results / "metrics" / "seeds").glob("*-s*.json")}
    for file in sorted((results / "metrics").glob("**/*.json")):
        m = json.loads(file.read_text())
        if not isinstance(m, dict) or "ents_f" not in m:
            continue
        relative = file.relative_to(results / "metrics").with_suffix("")
        row = make_row(str(relative), m, results / "training" / relative)
        system, _, seed = relative.name.rpartition("-s")
        if len(relative.parts) == 1 and relative.name in seeded and not (
            results / "metrics" / "seeds" / f"{relative.name}-s0.json"
        ).exists():  # a main run is the seeds' seed 0 where they have none of their own
            system, seed, relative = relative.name, "0", Path("seeds") / f"{relative.name}-s0"
        if relative.parts[0] == "seeds" and seed.isdigit():
            row["system"], row["key"] = f"{system} (seed {seed})", (system, int(seed))
            seeds.setdefault(system, []).append(row["f"])
        else:
            row["system"], row["key"] = relative.name, (relative.name, -1)
        commit = str(m.get("environment", {}).get("git_commit", "?"))
        row["measured"] = f"{commit_date(commit.split('+')[0], dates)}, {commit[:7]}"
        groups["full" if relative.parts[0] == "full" else "1000"].append(row)
    order = {name: i for i, name in enumerate(this_run)}

    def table(rows: List[dict]) -> List[str]:
        rows = sorted(rows, key=lambda r: (order.get(r["key"][0], len(order)), r["key"][0], r["key"][1]))
        lines = [
            "| system | measured | F1 | doc F1 | P | R | " + " | ".join(TYPES)
            + " | dev F1 | best / last step | train s | size MB |",
            "|---" * (10 + len(TYPES)) + "|",
        ]
        for r in rows:
            lines.append(
                f"| {r['system']} | {r['measured']} | {r['f']:.1f} | {fmt(r['doc_f'])} | {r['p']:.1f} | "
                f"{r['r']:.1f} | " + " | ".join(f"{r[t]:.1f}" for t in TYPES)
                + f" | {fmt(r['dev'])} | {r['best_step']} / {r['steps']} | {fmt(r['train_s'], 0)} | {r['size']:.1f} |"
            )
        return lines

    lines = [f"Recorded runs of the study ({results}), each measured at the date and commit given "
             "(2-core CPU): the same 1,000 training sentences and test split.", ""]
    lines += table(groups["1000"])
    lines += ["", "Train seconds of some recorded runs include sharing the CPU with other jobs "
              "(results/README.md says which); the `dev F1` and steps are unaffected."]
    if seeds:
        lines += ["", "Recorded mean and spread over seeds (test F1):", "",
                  "| system | seeds | mean ± sd | min - max |", "|---|---|---|---|"]
        for system, scores in sorted(seeds.items(), key=lambda item: -statistics.fmean(item[1])):
            sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
            lines.append(f"| {system} | {len(scores)} | {statistics.fmean(scores):.1f} ± {sd:.1f} | "
                         f"{min(scores):.1f} - {max(scores):.1f} |")
    if groups["full"]:
        lines += ["", "Recorded on the full corpus (all 14,041 training sentences, one seed each):", ""]
        lines += table(groups["full"])
    return "\n".join(lines)


def describe(environment: dict) -> str:
    if not environment:
        return "an unrecorded environment (metrics written before versions were recorded)"
    return ", ".join(f"{k} {v}" for k, v in environment.items())


def multitask_table(metrics_dir: Path, training_dir: Path) -> str:
    """NER + POS: two single-task llm_taggers vs one shared decoder pass, if all were run."""
    names = ("llm-unmasked", "llm-tag", "llm-trf-ner-tag")
    files = [metrics_dir / f"{name}.json" for name in names]
    if not all(f.exists() for f in files):
        return ""
    ner, tag, joint = (json.loads(f.read_text()) for f in files)

    def train_seconds(name: str) -> float:
        file = training_dir / name / "train_seconds.txt"
        return float(file.read_text()) if file.exists() else float("nan")

    # Both single-task pipelines run over the same words: their times add up.
    both_wps = 1.0 / (1.0 / ner["words_per_second"] + 1.0 / tag["words_per_second"])
    rows = [
        ("two llm_taggers (llm-unmasked + llm-tag)", ner["ents_f"], tag["tag_acc"],
         train_seconds("llm-unmasked") + train_seconds("llm-tag"), both_wps,
         ner["size_mb"] + tag["size_mb"]),
        ("one shared decoder: transformer + ner + tagger (llm-trf-ner-tag)", joint["ents_f"],
         joint["tag_acc"], train_seconds("llm-trf-ner-tag"), joint["words_per_second"],
         joint["size_mb"]),
    ]
    lines = [
        "NER + POS (PTB tags), both tasks on the same test words:",
        "",
        "| setup | NER F1 | tag acc | train s | words/s (both tasks) | size MB |",
        "|---|---|---|---|---|---|",
    ]
    for name, f1, acc, seconds, wps, size in rows:
        lines.append(
            f"| {name} | {100 * f1:.1f} | {100 * acc:.1f} | {seconds:.0f} | {wps:.0f} | {size:.1f} |"
        )
    return "\n".join(lines)


def write_chart(rows: List[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.6 * len(rows) + 1.5))
    names = [r["system"] for r in rows][::-1]
    values = [r["f"] for r in rows][::-1]
    bars = ax.barh(names, values, color="#4c72b0")
    for bar, value in zip(bars, values):
        ax.text(bar.get_width() + 0.5, bar.get_y() + bar.get_height() / 2, f"{value:.1f}", va="center")
    ax.set_xlabel("CoNLL-2003 test entity F1")
    ax.set_xlim(0, 100)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"Chart written to {path}")


def write_tradeoff_chart(rows: List[dict], fast_table: Path, path: Path) -> None:
    """Test F1 against words/s: every system, and the keep_layers / int8 configurations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(r["system"], r["wps"], r["f"], "#4c72b0") for r in rows]
    if fast_table.exists():
        for r in json.loads(fast_table.read_text()):
            if r["name"] != "all":
                points.append((f"llm-unmasked {r['name']}", r["wps"], r["test_f"], "#dd8452"))
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, wps, f1, color in points:
        ax.scatter([wps], [f1], color=color)
        ax.annotate(name, (wps, f1), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("words/s (nlp.pipe, this machine; log scale)")
    ax.set_ylabel("CoNLL-2003 test entity F1")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"Chart written to {path}")


if __name__ == "__main__":
    typer.run(main)
