"""Span confidences of a trained tagger: calibration on dev, then what they are worth on test.

    python scripts/confidence.py training/llm-unmasked/model-best training/llm-unmasked-calibrated \
        [corpus/dev.spacy corpus/test.spacy metrics/confidence]

Copies the pipeline to CALIBRATED, fits its temperature on the first --dev-sentences dev
sentences (as `spacy-llm-tagger calibrate` does) and saves it there. On the test sentences it
reports span-level expected calibration error (10 bins) before and after, precision and
recall at thresholds 0.5 / 0.7 / 0.9, the highest-recall threshold with precision >= 0.95,
how often the least confident 10% of predicted spans are wrong against the rest, and writes
reliability.png (before / after) and precision_recall.png.
"""
import json
import shutil
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import spacy
import typer

from spacy_llm_tagger.calibration import (
    collect,
    expected_calibration_error,
    find_tagger,
    outcomes,
    reliability_bins,
    save_component,
)
from spacy_llm_tagger.corpus import create_sentence_corpus

PROJECT = Path(__file__).resolve().parent.parent


def threshold_row(probs: np.ndarray, right: np.ndarray, n_gold: int, threshold: float) -> Dict[str, float]:
    kept = probs >= threshold
    correct = float(right[kept].sum())
    return {
        "threshold": threshold,
        "precision": correct / max(int(kept.sum()), 1),
        "recall": correct / max(n_gold, 1),
        "kept_correct_share": correct / max(float(right.sum()), 1.0),
    }


def reliability_plot(curves: Dict[str, tuple], path: Path, bins: int = 10) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    for name, (probs, right) in curves.items():
        _, xs, ys = zip(*reliability_bins(probs, right, bins))
        ax.plot(xs, ys, marker="o", label=f"{name} (ECE {expected_calibration_error(probs, right):.3f})")
    ax.set_xlabel("span probability (bin mean)")
    ax.set_ylabel("share of spans that are right")
    ax.set_title("Reliability of span probabilities (test)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def threshold_curve(probs: np.ndarray, right: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every distinct probability as a threshold, highest first: (threshold, spans kept, right
    spans kept), keeping the spans whose probability is >= the threshold."""
    order = np.argsort(-probs, kind="stable")
    ranked = probs[order]
    last = np.r_[np.nonzero(np.diff(ranked))[0], len(ranked) - 1]  # the end of each tie group
    return ranked[last], last + 1, np.cumsum(right[order])[last]


def lowest_threshold_with_precision(probs: np.ndarray, right: np.ndarray, precision: float) -> Optional[float]:
    """The lowest threshold (the most recall) at which precision reaches ``precision``."""
    thresholds, kept, correct = threshold_curve(probs, right)
    reached = np.nonzero(correct / kept >= precision)[0]
    return float(thresholds[reached[-1]]) if len(reached) else None


def pr_plot(probs: np.ndarray, right: np.ndarray, n_gold: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, kept, correct = threshold_curve(probs, right)
    precision = correct / kept
    recall = correct / max(n_gold, 1)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(recall, precision)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall as the threshold moves (test)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(
    pipeline: Path = typer.Argument(..., help="Trained pipeline folder (left unchanged)"),
    calibrated: Path = typer.Argument(..., help="Where the calibrated copy goes"),
    dev: Path = typer.Argument(PROJECT / "corpus" / "dev.spacy", help="Dev data (the project's by default)"),
    test: Path = typer.Argument(PROJECT / "corpus" / "test.spacy", help="Test data (the project's by default)"),
    output: Path = typer.Argument(PROJECT / "metrics" / "confidence", help="Folder for confidence.json and the plots"),
    dev_sentences: int = typer.Option(1000, help="Dev sentences to fit the temperature on"),
    test_sentences: int = typer.Option(0, help="Test sentences (0 = all)"),
) -> None:
    shutil.copytree(pipeline, calibrated, dirs_exist_ok=True)
    nlp = spacy.load(calibrated)
    name, pipe = find_tagger(nlp)
    start = time.perf_counter()
    dev_report = pipe.calibrate(create_sentence_corpus(dev, limit=dev_sentences)(nlp))
    temperature = dev_report.temperature
    save_component(pipe, calibrated)
    fit_seconds = time.perf_counter() - start

    test_data = collect(pipe, list(create_sentence_corpus(test, limit=test_sentences)(nlp)))
    n_gold = sum(len(gold) for gold in test_data.gold)
    before, after = outcomes(pipe, test_data, 1.0), outcomes(pipe, test_data, temperature)
    probs, right = after
    thresholds = [threshold_row(probs, right, n_gold, t) for t in (0.0, 0.5, 0.7, 0.9)]
    lowest = lowest_threshold_with_precision(probs, right, 0.95)
    high_precision = threshold_row(probs, right, n_gold, lowest) if lowest is not None else None
    order = np.argsort(probs, kind="stable")
    tail = order[: max(len(order) // 10, 1)]
    rest = order[len(tail):]
    report = {
        "pipeline": str(pipeline),
        "temperature": temperature,
        "fit_seconds": round(fit_seconds, 1),
        "dev_sentences": dev_sentences,
        "dev_spans": dev_report.predictions,
        "dev_ece_before": dev_report.ece_before,
        "dev_ece_after": dev_report.ece_after,
        "test_sentences": len(test_data.scores),
        "test_predicted_spans": int(len(probs)),
        "test_gold_spans": n_gold,
        "test_ece_before": expected_calibration_error(*before),
        "test_ece_after": expected_calibration_error(*after),
        "thresholds": thresholds,
        "precision_095": high_precision,
        "least_confident_10pct_wrong": float(1 - right[tail].mean()),
        "other_90pct_wrong": float(1 - right[rest].mean()) if len(rest) else None,
    }
    output.mkdir(parents=True, exist_ok=True)
    (output / "confidence.json").write_text(json.dumps(report, indent=2) + "\n")
    reliability_plot({"T = 1": before, f"T = {temperature:.2f} (dev)": after}, output / "reliability.png")
    pr_plot(probs, right, n_gold, output / "precision_recall.png")
    lines: List[str] = [
        f"temperature {temperature:.3f} (fitted on {report['dev_spans']} dev spans in {fit_seconds:.0f} s)",
        f"test span ECE: {report['test_ece_before']:.4f} before, {report['test_ece_after']:.4f} after",
    ]
    for row in thresholds:
        lines.append(f"threshold {row['threshold']:.1f}: precision {row['precision']:.3f}, recall {row['recall']:.3f}, "
                     f"{row['kept_correct_share']:.1%} of the correct spans kept")
    if high_precision:
        lines.append(f"precision >= 0.95 from threshold {high_precision['threshold']:.3f}: recall "
                     f"{high_precision['recall']:.3f}, {high_precision['kept_correct_share']:.1%} of the correct spans kept")
    lines.append(f"least confident 10% of spans: {report['least_confident_10pct_wrong']:.1%} wrong; "
                 f"the other 90%: {report['other_90pct_wrong']:.1%} wrong")
    print("\n".join(lines))


if __name__ == "__main__":
    typer.run(main)
