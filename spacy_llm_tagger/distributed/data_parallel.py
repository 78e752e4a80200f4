"""Data-parallel training inside spaCy's own training loop.

Every worker runs ``spacy.training.loop.train`` on the same config. Two registered wrappers make
the workers one training run:

- ``spacy-llm-tagger.DataParallelBatcher.v1`` wraps the config's batcher. Every worker reads the
  whole training corpus and, with the same seed, builds the same global batches; each keeps its
  share of every global batch (examples dealt to the worker with the fewest words so far), as a
  :class:`WorkerBatch` that carries the worker's share of the batch's words.
- ``spacy-llm-tagger.DataParallelOptimizer.v1`` wraps the config's optimizer: before each
  parameter's update, the gradient is summed across workers (``torch.distributed``), each
  worker's gradient weighted by its share of the step's words (``step_share``, set from the
  batch by :func:`pass_step_shares`). The llm_tagger's loss is a mean over words, so N
  workers take the same steps as one worker on the same global batches.

:func:`.training.train_worker` connects the two: it runs spaCy's loop with
:func:`pass_step_shares` and :func:`rank_zero_evaluation` hooked in (see
:mod:`spacy_llm_tagger.spacy_adapter`). Outside a ``torch.distributed`` process group both wrappers do nothing,
so a config trained data-parallel stays trainable with ``spacy train``.
"""

import warnings
import zlib
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
from spacy.language import Language
from spacy.training import Example
from spacy.util import registry
from thinc.api import Config, Optimizer
from thinc.util import torch2xp, xp2torch

from ..errors import DistributedError
from ..spacy_adapter import Evaluate, Steps, optimizer_as, torch_modules

BATCHER = "spacy-llm-tagger.DataParallelBatcher.v1"
OPTIMIZER = "spacy-llm-tagger.DataParallelOptimizer.v1"


def world() -> Tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a process group."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class WorkerBatch(List[Example]):
    """This worker's part of a global batch, and its share of the global batch's words.

    A list of the worker's examples (what spaCy's loop updates on), with ``share`` =
    (words in this part) / (words in the global batch): the weight of this worker's gradient.
    """

    def __init__(self, examples: Iterable[Example], share: float) -> None:
        super().__init__(examples)
        self.share = share


def split_batch(batch: Sequence[Example], workers: int) -> List[List[Example]]:
    """Deal the examples of a global batch to ``workers`` parts of near-equal word counts.

    Longest first, each to the part with the fewest words so far (ties: lowest part); every
    part keeps the batch's order. Deterministic, so every worker computes the same split.
    """
    words = [len(eg.reference) for eg in batch]
    loads = [0] * workers
    owner = [0] * len(batch)
    for i in sorted(range(len(batch)), key=lambda i: (-words[i], i)):
        part = min(range(workers), key=lambda p: (loads[p], p))
        owner[i] = part
        loads[part] += words[i]
    return [[eg for eg, o in zip(batch, owner) if o == part] for part in range(workers)]


def worker_batch(batch: Sequence[Example], rank: int, workers: int) -> WorkerBatch:
    """Worker ``rank``'s part of ``batch`` (see :func:`split_batch`) with its share of words."""
    part = split_batch(batch, workers)[rank]
    total = sum(len(eg.reference) for eg in batch)
    return WorkerBatch(part, sum(len(eg.reference) for eg in part) / total)


def _check_same_batch(batch: Sequence[Example]) -> None:
    """Fail loudly if the workers' global batches differ (their shuffles went apart)."""
    fingerprint = zlib.crc32("\n".join(eg.reference.text for eg in batch).encode("utf8"))
    values = torch.tensor([fingerprint, -fingerprint], dtype=torch.int64)
    torch.distributed.all_reduce(values, op=torch.distributed.ReduceOp.MAX)
    if values[0].item() != fingerprint or -values[1].item() != fingerprint:
        raise DistributedError(
            "Data-parallel workers built different global batches. Every worker must read the "
            "same training corpus with the same [training] seed; a corpus reader or batcher "
            "that draws random numbers differently per process cannot be used data-parallel."
        )


@registry.batchers(BATCHER)
def configure_data_parallel_batcher(
    batcher: Callable[[Iterable[Example]], Iterable[List[Example]]],
) -> Callable[[Iterable[Example]], Iterator[List[Example]]]:
    """This worker's share of each global batch made by ``batcher``, as a :class:`WorkerBatch`.

    A global batch with fewer non-empty examples than workers is skipped by every worker (a
    worker with nothing to learn from would have no gradient to share).
    """

    def shard(examples: Iterable[Example]) -> Iterator[List[Example]]:
        rank, size = world()
        skipped = 0
        for batch in batcher(examples):
            if size == 1:
                yield batch
                continue
            batch = list(batch)
            _check_same_batch(batch)
            if sum(1 for eg in batch if len(eg.reference)) < size:
                skipped += 1
                if skipped == 1:
                    warnings.warn(
                        f"A global batch had fewer non-empty examples than the {size} workers "
                        f"and was skipped by all of them; use larger batches.",
                        stacklevel=2,
                    )
                continue
            yield worker_batch(batch, rank, size)

    return shard


class DataParallelOptimizer(Optimizer):
    """A thinc optimizer whose gradients are summed across workers before each update, each
    worker's weighted by ``step_share``: its share of the current step's words.

    ``step_share`` is set before each step (by :func:`pass_step_shares`, from the step's
    :class:`WorkerBatch`) and cleared by ``step_schedules`` after it, so a step whose share
    nobody gave fails instead of being averaged wrongly.
    """

    __slots__ = ("step_share",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step_share: Optional[float] = None

    @classmethod
    def wrap(cls, optimizer: Optimizer) -> "DataParallelOptimizer":
        if isinstance(optimizer, cls):
            return optimizer
        wrapped = optimizer_as(cls, optimizer)
        wrapped.step_share = None
        return wrapped

    def __call__(self, key: Tuple[int, str], weights: Any, gradient: Any, *, lr_scale: float = 1.0):
        _rank, size = world()
        if size > 1:
            if self.step_share is None:
                raise DistributedError(
                    "The data-parallel optimizer does not know this worker's share of the "
                    "step's words. Train with `spacy-llm-tagger train --workers N`, which "
                    "passes each batch's share to the optimizer (pass_step_shares)."
                )
            gradient = all_reduce_weighted(gradient, self.step_share)
        return super().__call__(key, weights, gradient, lr_scale=lr_scale)

    def step_schedules(self) -> None:
        super().step_schedules()
        self.step_share = None


def pass_step_shares(optimizer: Optimizer, steps: Steps) -> Steps:
    """spaCy's training batches, each one's share of words handed to the optimizer first."""
    for epoch, batch in steps:
        if isinstance(optimizer, DataParallelOptimizer):
            optimizer.step_share = batch.share if isinstance(batch, WorkerBatch) else None
        yield epoch, batch


def all_reduce_weighted(gradient: Any, share: float) -> Any:
    """Sum over workers of ``share * gradient`` (a numpy or cupy array)."""
    original = xp2torch(gradient)
    tensor = original.detach().clone()
    if torch.distributed.get_backend() == "nccl" and tensor.device.type != "cuda":
        tensor = tensor.cuda()
    tensor.mul_(share)
    torch.distributed.all_reduce(tensor)
    return torch2xp(tensor.to(original.device))


@registry.optimizers(OPTIMIZER)
def configure_data_parallel_optimizer(optimizer: Optimizer) -> Optimizer:
    """``optimizer`` with its gradients averaged across data-parallel workers."""
    return DataParallelOptimizer.wrap(optimizer)


def data_parallel_config(config: Config) -> Config:
    """The config with its batcher and optimizer wrapped (idempotent)."""
    training = config["training"]
    if training["batcher"].get("@batchers") != BATCHER:
        training["batcher"] = {"@batchers": BATCHER, "batcher": training["batcher"]}
    if training["optimizer"].get("@optimizers") != OPTIMIZER:
        training["optimizer"] = {"@optimizers": OPTIMIZER, "optimizer": training["optimizer"]}
    return config


def broadcast_parameters(nlp: Language, source: int = 0) -> None:
    """Give every worker the initial trainable parameters of worker ``source``."""
    if world()[1] == 1:
        return
    for _name, pipe in nlp.pipeline:
        model = getattr(pipe, "model", None)
        if model is None or model in (True, False):
            continue
        for module in torch_modules(model):
            for parameter in module.parameters():
                if parameter.requires_grad:
                    _broadcast_tensor(parameter.data, source)
        for node in model.walk():
            for name in node.param_names:
                if node.has_param(name):
                    param = node.get_param(name)
                    tensor = xp2torch(param).detach().clone()
                    _broadcast_tensor(tensor, source)
                    node.set_param(name, torch2xp(tensor.to(xp2torch(param).device)))


def _broadcast_tensor(tensor: torch.Tensor, source: int) -> None:
    if torch.distributed.get_backend() == "nccl" and tensor.device.type != "cuda":
        on_gpu = tensor.cuda()
        torch.distributed.broadcast(on_gpu, source)
        tensor.copy_(on_gpu.cpu())
    else:
        torch.distributed.broadcast(tensor, source)


def rank_zero_evaluation(source: int = 0) -> Callable[[Evaluate], Evaluate]:
    """Worker ``source`` scores the dev set and the others receive its scores.

    spaCy's loop decides on the best model and on stopping from these scores, so every worker
    must see the same ones (and the others need not spend the time).
    """

    def shared_by_all(evaluate: Evaluate) -> Evaluate:
        rank, size = world()
        if size == 1:
            return evaluate

        def shared() -> Tuple[float, dict]:
            result: List[Optional[Tuple[float, dict]]] = [evaluate() if rank == source else None]
            torch.distributed.broadcast_object_list(result, src=source)
            scored = result[0]
            if scored is None:
                raise DistributedError(f"Worker {source} sent no dev scores.")
            return scored

        return shared

    return shared_by_all
