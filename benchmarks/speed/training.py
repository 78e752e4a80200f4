"""Training words/s: the llm_tagger's nlp.update against a plain peft + transformers loop.

    python benchmarks/bench_speed.py --only training

4 steps of 16 sentences each, after one warm-up step; the two are timed in three alternating
rounds and the best of each kept, since the machine's speed drifts. The plain loop is the
reference's recipe: LoRA r=16 on all linear layers, a linear head, AdamW, gradient clipping.
"""
from typing import Any, Dict, List

from .common import Workload, log, timed


def training_speed(nlp, examples, steps: int = 4) -> Dict[str, Any]:
    """nlp.update words/s against a plain peft + transformers loop (the reference's recipe)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    batches = [examples[i * 16:(i + 1) * 16] for i in range(steps)]
    batches = [batch for batch in batches if batch]
    n_words = sum(len(eg.predicted) for b in batches for eg in b)
    optimizer = nlp.resume_training()
    nlp.update(batches[0], sgd=optimizer)  # warm-up

    loaded = nlp.get_pipe("llm_tagger").model.loaded
    tokenizer = loaded.tokenizer
    base = AutoModel.from_pretrained(loaded.location.path)
    peft_model = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
    head = torch.nn.Linear(base.config.hidden_size, 9)
    params = [p for p in peft_model.parameters() if p.requires_grad] + list(head.parameters())
    adam = torch.optim.AdamW(params, lr=1e-3)

    def step(batch):
        words = [[t.text for t in eg.predicted] for eg in batch]
        enc = tokenizer([" ".join(w) for w in words], return_tensors="pt", padding=True)
        hidden = peft_model(**enc).last_hidden_state
        logits = head(hidden)
        labels = torch.randint(0, 9, logits.shape[:2])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 9), labels.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        adam.step()
        adam.zero_grad()

    step(batches[0])
    rounds: Dict[str, List[float]] = {"llm_tagger": [], "plain_peft_loop": []}
    for _ in range(3):  # alternating, best of three: the machine's speed drifts
        rounds["llm_tagger"].append(n_words / timed(lambda: [nlp.update(b, sgd=optimizer) for b in batches]))
        rounds["plain_peft_loop"].append(n_words / timed(lambda: [step(b) for b in batches]))
    ours, plain = max(rounds["llm_tagger"]), max(rounds["plain_peft_loop"])
    return {
        "llm_tagger_words_per_second": ours,
        "plain_peft_loop_words_per_second": plain,
        "ratio": ours / plain,
        "rounds": rounds,
    }


def measure(result: Dict[str, Any], work: Workload) -> None:
    """Records ``training``. Trains the shared tagger: run it after the inference sections."""
    log("training speed ...")
    result["training"] = training_speed(work.nlp, work.examples)
