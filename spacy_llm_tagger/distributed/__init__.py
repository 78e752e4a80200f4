"""Data-parallel training: spaCy's training loop on N workers (Ray Train, torch.distributed)."""

from .data_parallel import (
    DataParallelOptimizer,
    WorkerBatch,
    configure_data_parallel_batcher,
    configure_data_parallel_optimizer,
    data_parallel_config,
    split_batch,
)

__all__ = [
    "DataParallelOptimizer",
    "configure_data_parallel_batcher",
    "configure_data_parallel_optimizer",
    "data_parallel_config",
    "split_batch",
    "WorkerBatch",
]
