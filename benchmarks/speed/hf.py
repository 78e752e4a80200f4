"""Peer: transformers' ``pipeline("token-classification")`` on the same base model.

    python benchmarks/bench_speed.py --only hf

Words/s of the pipeline (batch size 32, under ``torch.inference_mode()``), and the llm_tagger's
nlp.pipe words/s measured in the same run, which its ratio is taken against.
"""
from typing import Any, Dict, List

from .common import Workload, log, timed


def hf_token_classification(nlp, texts: List[str], n_words: int) -> Dict[str, Any]:
    """transformers' pipeline("token-classification") on the same base model."""
    import torch
    from transformers import AutoModelForTokenClassification, pipeline

    loaded = nlp.get_pipe("llm_tagger").model.loaded
    folder = loaded.location.path if loaded.location else None
    model = AutoModelForTokenClassification.from_pretrained(folder, num_labels=9)
    model.config.pad_token_id = loaded.tokenizer.pad_token_id
    classify = pipeline("token-classification", model=model, tokenizer=loaded.tokenizer, device=-1)
    with torch.inference_mode():
        seconds = timed(lambda: classify(texts, batch_size=32))
    return {"words_per_second": n_words / seconds, "batch_size": 32}


def measure(result: Dict[str, Any], work: Workload) -> None:
    """Records ``hf_token_classification``."""
    log("transformers token-classification pipeline ...")
    peer = hf_token_classification(work.nlp, work.texts, work.n_words)
    peer["llm_tagger_words_per_second_same_run"] = work.tagger_words_per_second
    result["hf_token_classification"] = peer
