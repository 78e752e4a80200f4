"""The summary ``convert`` prints: counts in and out, every record left out, warnings."""

from wasabi import msg

from . import ConvertReport

SHOWN_PROBLEMS = 20


def print_report(report: ConvertReport, target: str) -> None:
    """Print what went in and out, in spaCy's CLI style."""
    problems = report.rejected + report.skipped
    for problem in problems[:SHOWN_PROBLEMS]:
        print(f"  {problem.kind}: {problem.source}: {problem.reason}")
    if len(problems) > SHOWN_PROBLEMS:
        print(f"  ... and {len(problems) - SHOWN_PROBLEMS} more (all in {report.outputs[-1]})")
    labels = ", ".join(f"{label} {count}" for label, count in sorted(report.labels.items()))
    unit = "tokens" if target in ("tag", "pos") else "spans"
    kept = sum(report.labels.values())
    msg.info(
        f"{report.records} records read: {len(report.rejected)} rejected, {len(report.skipped)} "
        f"skipped; {report.spans_in} {unit} in, {kept} {unit} out"
        + (f" ({report.split_tokens} tokens split at span edges)" if report.split_tokens else "")
    )
    msg.info(f"Labels ({target}): {labels or 'none'}")
    for warning in report.warnings:
        msg.warn(warning)
    written = f"{report.docs} docs -> {report.outputs[0]}"
    if report.dev_docs:
        written += f"; {report.dev_docs} docs -> {report.outputs[1]}"
    msg.good(f"Wrote {written}")
