"""Training checkpoints: what a killed run needs to go on as if it had never stopped.

A checkpoint folder holds

- ``model/``: the pipeline as training left it (``nlp.to_disk``);
- ``config.cfg``: the training config, overrides applied, that the run started with;
- ``progress.json``: where the run is (:class:`TrainingProgress`), readable by people;
- ``state.msgpack``: the optimizer's moments and update counts, the states of the random
  generators (Python, NumPy, torch) and the components' own training state (an llm_tagger's
  warm-up count).

thinc's optimizer keys its state by ``(node id, parameter name)``, and node ids are counters of
the process that built the model. A checkpoint names each parameter's owner by position instead
(component, node number in ``model.walk()``, shim number), and a new process maps the names back
onto its own ids.
"""

import json
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, cast

import numpy
import srsly
import torch
from spacy.language import Language
from thinc.api import Model, Optimizer, get_current_ops
from thinc.backends import get_array_ops

from .errors import CheckpointError

PROGRESS_FILE = "progress.json"
STATE_FILE = "state.msgpack"
CONFIG_FILE = "config.cfg"
MODEL_FOLDER = "model"


@dataclass
class TrainingProgress:
    """Where a training run is, after its last completed step."""

    step: int = -1  # the last completed step (-1: none yet)
    epoch: int = 0  # the epoch of that step's batch
    batches_in_epoch: int = 0  # batches of that epoch used so far
    results: List[Tuple[float, int]] = field(default_factory=list)  # (dev score, step) per evaluation
    evaluations: List[Dict[str, Any]] = field(default_factory=list)  # what the logger got, per evaluation
    losses: Dict[str, float] = field(default_factory=dict)  # summed since the last evaluation
    words: int = 0  # words trained on
    seconds: float = 0.0  # time spent training, over every process that worked on the run
    finished: bool = False

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TrainingProgress":
        data = dict(data)
        data["results"] = [(float(score), int(step)) for score, step in data.get("results", [])]
        return cls(**data)


@dataclass
class Checkpoint:
    """A checkpoint read from disk: the progress, the saved pipeline and the state to restore."""

    folder: Path
    progress: TrainingProgress
    state: Dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.folder / MODEL_FOLDER

    @property
    def shuffle_states(self) -> List[Any]:
        """Python's random state just before each epoch's shuffle, up to the current epoch
        (spaCy shuffles one list in place, so an epoch's order depends on every shuffle before)."""
        return [as_python_random_state(state) for state in self.state["shuffle_states"]]


def parameter_owners(nlp: Language) -> Dict[int, str]:
    """Node and shim ids of every component's model -> a name that holds across processes."""
    owners: Dict[int, str] = {}
    for name, pipe in nlp.components:
        model = getattr(pipe, "model", None)
        if not isinstance(model, Model):
            continue
        for i, node in enumerate(model.walk()):
            owners.setdefault(node.id, f"{name}/node{i}")
            for j, shim in enumerate(node.shims):
                owners.setdefault(shim.id, f"{name}/node{i}/shim{j}")
    return owners


def optimizer_state(optimizer: Optimizer, nlp: Language) -> List[Dict[str, Any]]:
    """The optimizer's per-parameter state, keyed by owner name and parameter name."""
    owners = parameter_owners(nlp)
    averages = optimizer.averages or {}
    keys = set(optimizer.mom1) | set(optimizer.mom2) | set(averages) | set(optimizer.nr_update)
    records = []
    for key in sorted(keys, key=lambda k: (k[0], k[1])):
        owner_id, param = key
        if owner_id not in owners:
            raise CheckpointError(
                f"The optimizer holds state for parameter {param!r} of a model that is not in the "
                f"pipeline's components ({nlp.pipe_names}): the run cannot be checkpointed."
            )
        records.append(
            {
                "owner": owners[owner_id],
                "param": param,
                "mom1": to_numpy(optimizer.mom1.get(key)),
                "mom2": to_numpy(optimizer.mom2.get(key)),
                "average": to_numpy(averages.get(key)),
                "nr_update": int(optimizer.nr_update.get(key, 0)),
                "last_seen": int(optimizer.last_seen.get(key, 0)),
            }
        )
    return records


def restore_optimizer_state(optimizer: Optimizer, nlp: Language, records: List[Dict[str, Any]]) -> None:
    """Put :func:`optimizer_state`'s records back, onto this process's node ids."""
    ids = {owner: owner_id for owner_id, owner in parameter_owners(nlp).items()}
    ops = get_current_ops()
    for record in records:
        if record["owner"] not in ids:
            raise CheckpointError(
                f"The checkpoint has optimizer state for {record['owner']} ({record['param']}), "
                f"which the pipeline built from the config does not have: the checkpoint is of "
                f"another pipeline. Start again with --restart."
            )
        key = (ids[record["owner"]], record["param"])
        for name, store in (
            ("mom1", optimizer.mom1),
            ("mom2", optimizer.mom2),
            ("average", optimizer.averages),
        ):
            if record[name] is not None and store is not None:
                store[key] = cast(Any, ops.asarray(record[name]))
        optimizer.nr_update[key] = record["nr_update"]
        optimizer.last_seen[key] = record["last_seen"]


def plain(value: Any) -> Any:
    """``value`` with NumPy scalars (scores, losses) made Python numbers, ready for JSON."""
    return json.loads(json.dumps(value, default=lambda x: x.item() if hasattr(x, "item") else str(x)))


def to_numpy(array: Any) -> Optional[numpy.ndarray]:
    return None if array is None else get_array_ops(array).to_numpy(array)


def random_states() -> Dict[str, Any]:
    """The states of Python's, NumPy's and torch's random generators."""
    states: Dict[str, Any] = {
        "python": random.getstate(),
        "numpy": numpy.random.get_state(),
        "torch": torch.get_rng_state().numpy(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = [state.numpy() for state in torch.cuda.get_rng_state_all()]
    return states


def restore_random_states(states: Dict[str, Any]) -> None:
    random.setstate(as_python_random_state(states["python"]))
    numpy.random.set_state(tuple(states["numpy"]))
    torch.set_rng_state(torch.from_numpy(numpy.array(states["torch"], dtype=numpy.uint8)))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(
            [torch.from_numpy(numpy.array(s, dtype=numpy.uint8)) for s in states["cuda"]]
        )


def as_python_random_state(state: Any) -> Any:
    """``random.getstate()`` from its msgpack form (lists instead of tuples)."""
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def partial_folder(folder: Path) -> Path:
    """Where a checkpoint is written before it replaces the one in ``folder``."""
    return folder.with_name(folder.name + ".partial")


def replaced_folder(folder: Path) -> Path:
    """Where the old checkpoint waits while the new one takes its place (read if a kill left it)."""
    return folder.with_name(folder.name + ".old")


def remove_checkpoint(folder: Path) -> None:
    """Delete the checkpoint in ``folder`` and any half-written or replaced one beside it."""
    for path in (folder, replaced_folder(folder), partial_folder(folder)):
        if path.exists():
            shutil.rmtree(path)


def save_checkpoint(
    folder: Path,
    nlp: Language,
    optimizer: Optimizer,
    progress: TrainingProgress,
    config_text: str,
    shuffle_states: List[Any],
) -> None:
    """Write the checkpoint to ``folder``, replacing the old one only once the new one is whole."""
    partial = partial_folder(folder)
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    nlp.to_disk(partial / MODEL_FOLDER)
    (partial / CONFIG_FILE).write_text(config_text, encoding="utf-8")
    state = {
        "optimizer": optimizer_state(optimizer, nlp),
        "random": random_states(),
        "shuffle_states": shuffle_states,
        "components": {
            name: pipe.training_state() for name, pipe in nlp.components if hasattr(pipe, "training_state")
        },
    }
    (partial / STATE_FILE).write_bytes(srsly.msgpack_dumps(state))
    srsly.write_json(partial / PROGRESS_FILE, plain(asdict(progress)))  # written last: marks it whole
    replaced = replaced_folder(folder)
    if folder.exists():
        folder.rename(replaced)
    partial.rename(folder)
    if replaced.exists():
        shutil.rmtree(replaced)


def read_checkpoint(folder: Path, config_text: str) -> Optional[Checkpoint]:
    """The checkpoint in ``folder`` (or the one a kill left beside it), None if there is none."""
    for candidate in (folder, replaced_folder(folder)):
        if (candidate / PROGRESS_FILE).exists():
            break
    else:
        return None
    saved_config = (candidate / CONFIG_FILE).read_text(encoding="utf-8")
    if saved_config != config_text:
        raise CheckpointError(
            f"{candidate} is a checkpoint of a run with another config ({first_difference(saved_config, config_text)}). "
            f"Train again from the start with --restart, or write to another --output."
        )
    try:
        progress = TrainingProgress.from_dict(srsly.read_json(candidate / PROGRESS_FILE))
        state = srsly.msgpack_loads((candidate / STATE_FILE).read_bytes()) if not progress.finished else {}
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{candidate} cannot be read ({err}); start again with --restart.") from err
    return Checkpoint(candidate, progress, state)


def restore_checkpoint(checkpoint: Checkpoint, nlp: Language, optimizer: Optimizer) -> None:
    """Put the optimizer's state and the components' training state back (the weights come
    with the pipeline loaded from ``checkpoint.model_path``; the random states are put back
    once the batches have caught up, by the caller)."""
    restore_optimizer_state(optimizer, nlp, checkpoint.state["optimizer"])
    for name, state in checkpoint.state["components"].items():
        cast(Any, nlp.get_pipe(name)).restore_training_state(state)


def finish_checkpoint(folder: Path, progress: TrainingProgress, config_text: str) -> None:
    """Mark the run finished and drop the weights and state it no longer needs."""
    progress.finished = True
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(config_text, encoding="utf-8")
    for item in (MODEL_FOLDER, STATE_FILE):
        path = folder / item
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    srsly.write_json(folder / PROGRESS_FILE, plain(asdict(progress)))


def first_difference(old: str, new: str) -> str:
    for old_line, new_line in zip(old.splitlines(), new.splitlines()):
        if old_line != new_line:
            return f"it had `{old_line.strip()}`, this run has `{new_line.strip()}`"
    return "one of the two is longer"
