"""Overhead over the raw model: the llm_tagger's nlp.pipe against the bare transformers forward.

    python benchmarks/bench_speed.py --only overhead

The floor is ``model(**batch)`` under ``torch.inference_mode()`` on pre-tokenized, length-sorted
batches (the best of several groupings), with the same merged weights the tagger predicts
with. Floor and nlp.pipe are timed in alternating rounds, best of each, since the machine's
speed drifts. Also records the llm_tagger's padding share and time per stage (llm_tagger.py).
"""
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from .common import Workload, log, timed


def raw_forward(nlp, texts: List[str], n_words: int) -> Tuple[Dict[str, Any], Callable]:
    """The physical floor: the bare transformers forward on pre-tokenized, length-sorted batches.

    Returns the figures and a function that runs the best grouping again.
    """
    import torch

    loaded = nlp.get_pipe("llm_tagger").model.loaded
    network = loaded.module
    # Merged adapters: the base layers alone, the same weights the tagger predicts with.
    network.set_adapters_merged(True)
    base = network.decoder.get_base_model()
    tokenizer = loaded.tokenizer
    encoded = [tokenizer(t)["input_ids"] for t in texts]
    order = np.argsort([len(e) for e in encoded])
    results, runners = {}, {}
    # fixed rows per batch, or as many rows as fit a padded-token budget (length-sorted both)
    groupings = {f"{n} rows": _fixed_rows(order, n) for n in (16, 32, 64)}
    groupings.update({f"{n} tokens": _token_budget(order, encoded, n) for n in (256, 512, 1024)})
    for grouping, row_groups in groupings.items():
        batches = []
        for group in row_groups:
            rows = [encoded[j] for j in group]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), tokenizer.pad_token_id)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for k, r in enumerate(rows):
                ids[k, :len(r)] = torch.tensor(r)
                mask[k, :len(r)] = 1
            batches.append({"input_ids": ids, "attention_mask": mask})

        def run(batches=batches):
            network.unmasker.state.set(None)  # no padding info: as costly, no masking
            with torch.inference_mode():
                for batch in batches:
                    base(**batch)

        runners[grouping] = run
        results[grouping] = n_words / timed(run, repeat=2)
    best = max(results, key=results.get)
    return {"words_per_second": results[best], "batching": best, "by_batching": results}, runners[best]


def _fixed_rows(order: np.ndarray, n: int) -> List[List[int]]:
    return [list(order[i:i + n]) for i in range(0, len(order), n)]


def _token_budget(order: np.ndarray, encoded: List[List[int]], budget: int) -> List[List[int]]:
    groups: List[List[int]] = [[]]
    for j in order:  # ascending length: the newest row is the widest
        if groups[-1] and (len(groups[-1]) + 1) * len(encoded[j]) > budget:
            groups.append([])
        groups[-1].append(int(j))
    return groups


def measure(result: Dict[str, Any], work: Workload) -> None:
    """Records ``raw_forward``, ``overhead_rounds``, ``overhead_ratio`` and ``llm_tagger``."""
    log("raw forward ...")
    result["raw_forward"], run_raw = raw_forward(work.nlp, work.texts, work.n_words)
    log("overhead: raw forward and nlp.pipe in alternating rounds ...")
    rounds: Dict[str, List[float]] = {"raw_forward": [], "llm_tagger": []}
    for _ in range(3):
        rounds["raw_forward"].append(work.n_words / timed(run_raw))
        rounds["llm_tagger"].append(work.n_words / timed(work.run_pipe))
    raw_best = max(rounds["raw_forward"] + [result["raw_forward"]["words_per_second"]])
    result["raw_forward"]["words_per_second"] = raw_best
    work.tagger["words_per_second"] = max(rounds["llm_tagger"] + [work.tagger_words_per_second])
    result["overhead_rounds"] = rounds
    result["overhead_ratio"] = work.tagger_words_per_second / raw_best
    result["llm_tagger"] = work.tagger  # the peers measured after this compare against it
