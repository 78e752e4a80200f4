"""Every place where spacy-llm-tagger relies on spaCy's or thinc's internals, in one module.

Data-parallel training runs spaCy's own training loop (``spacy.training.loop.train``) on every
worker. Three things it needs have no public API in spaCy 3.x / thinc 8.x, so they live here
and nowhere else:

- :func:`hooks_in_spacy_training`: spaCy's ``train`` builds its optimizer, batches and dev
  evaluation inside the function and hands them to ``train_while_improving``, which it looks
  up in its module at call time; while the context is active that name is replaced by a
  wrapper that passes the batches and the evaluation through the caller's functions.
- :func:`optimizer_as`: thinc's ``Optimizer`` keeps all of its state in ``__slots__`` and has
  no copy constructor; a subclass instance is made by copying the slots.
- :func:`torch_modules`: thinc's PyTorch shims hold their module in ``shim._model``.

Resumable training (:mod:`spacy_llm_tagger.resumable_training`) runs its own copy of that loop
and reuses the loop's helpers, module functions of ``spacy.training.loop``:
:func:`loop_helpers`.

And for the command line, :func:`parse_overrides` (spaCy's CLI parser of ``--section.key
value`` overrides, private in ``spacy.cli._util``).

:func:`check_spacy_internals` checks all of these against the installed spaCy and thinc and
fails naming their versions; ``tests/test_spacy_adapter.py`` runs it, and the data-parallel
trainer runs it before any worker starts.
"""

import contextlib
import inspect
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Tuple, TypeVar

import spacy
import thinc
import torch
from spacy.training import Example
from thinc.api import Model, Optimizer

from .errors import DistributedError

Steps = Iterator[Tuple[int, List[Example]]]  # (epoch, batch), as spaCy's loop draws them
Evaluate = Callable[[], Tuple[float, Dict[str, Any]]]  # (weighted score, all scores)
AnOptimizer = TypeVar("AnOptimizer", bound=Optimizer)

# train_while_improving(nlp, optimizer, train_data, evaluate, *, ...) throughout spaCy 3.x
LOOP_PARAMETERS = ("nlp", "optimizer", "train_data", "evaluate")
# the helpers of spacy.training.loop.train that resumable training calls too
LOOP_HELPERS = (
    "create_evaluation_callback",
    "create_before_to_disk_callback",
    "update_meta",
    "subdivide_batch",
    "clean_output_dir",
)
MODEL_FOLDERS = ("DIR_MODEL_BEST", "DIR_MODEL_LAST")


class LoopHelpers(NamedTuple):
    """spaCy's training-loop helpers (``spacy.training.loop``), as resumable training uses them."""

    create_evaluation_callback: Callable[..., Evaluate]
    create_before_to_disk_callback: Callable[..., Callable[[Any], Any]]
    update_meta: Callable[..., None]
    subdivide_batch: Callable[..., Iterator[List[Example]]]
    clean_output_dir: Callable[..., None]
    model_best: str
    model_last: str


def versions() -> str:
    return f"spaCy {spacy.__version__} (thinc {thinc.__version__})"


def changed(what: str) -> DistributedError:
    return DistributedError(
        f"{versions()} changed {what}, which spacy_llm_tagger/spacy_adapter.py "
        f"relies on. Install a spaCy / thinc version this release was tested with (spaCy "
        f"3.7 - 3.8, thinc 8.2 - 8.3), or update the adapter."
    )


def check_spacy_internals() -> None:
    """Fail loudly, naming the installed spaCy and thinc versions, if an internal this module
    relies on has changed."""
    from spacy.training import loop

    original = getattr(loop, "train_while_improving", None)
    if original is None:
        raise changed("spacy.training.loop.train_while_improving (it is gone)")
    parameters = tuple(inspect.signature(original).parameters)
    if parameters[: len(LOOP_PARAMETERS)] != LOOP_PARAMETERS:
        raise changed(
            f"the signature of spacy.training.loop.train_while_improving {parameters} "
            f"(expected it to start with {LOOP_PARAMETERS})"
        )
    missing = [name for name in LOOP_HELPERS if not callable(getattr(loop, name, None))]
    if missing or not all(isinstance(getattr(loop, name, None), str) for name in MODEL_FOLDERS):
        raise changed(f"spacy.training.loop (it no longer has {missing or list(MODEL_FOLDERS)})")
    if "train_while_improving" not in loop.train.__code__.co_names:
        raise changed("spacy.training.loop.train (it no longer calls train_while_improving by name)")
    slots = getattr(Optimizer, "__slots__", None)
    if not isinstance(slots, (list, tuple)) or hasattr(Optimizer(0.001), "__dict__"):
        raise changed("thinc.api.Optimizer (its state is no longer all in __slots__)")
    from thinc.api import PyTorchShim

    if not isinstance(getattr(PyTorchShim(torch.nn.Linear(1, 1)), "_model", None), torch.nn.Module):
        raise changed("thinc.api.PyTorchShim (it no longer keeps its module in _model)")
    try:
        from spacy.cli._util import parse_config_overrides

        args = ["--training.max_steps", "3", "--paths.train=x.spacy"]
        overrides = parse_config_overrides(args, env_var=None)
    except Exception as err:  # whatever a changed parser raises
        raise changed(f"spacy.cli._util.parse_config_overrides ({err})") from err
    if overrides != {"training.max_steps": 3, "paths.train": "x.spacy"}:
        raise changed(f"spacy.cli._util.parse_config_overrides (it returned {overrides})")


@contextlib.contextmanager
def hooks_in_spacy_training(
    steps: Callable[[Optimizer, Steps], Steps],
    evaluate: Callable[[Evaluate], Evaluate],
) -> Iterator[None]:
    """While active, ``spacy.training.loop.train`` draws its batches through
    ``steps(optimizer, batches)`` and scores the dev set with ``evaluate(its_evaluation)``.

    ``steps`` sees each ``(epoch, batch)`` before spaCy updates on it, with the optimizer that
    will take the step. Not thread-safe (it swaps a module attribute of spaCy's).
    """
    from spacy.training import loop

    check_spacy_internals()
    original = loop.train_while_improving

    def train_while_improving(
        nlp: Any, optimizer: Optimizer, train_data: Steps, evaluation: Evaluate, **settings: Any
    ) -> Any:
        return original(nlp, optimizer, steps(optimizer, train_data), evaluate(evaluation), **settings)

    loop.train_while_improving = train_while_improving  # type: ignore[assignment]  # same call, looser annotations
    try:
        yield
    finally:
        loop.train_while_improving = original


def loop_helpers() -> LoopHelpers:
    """The helpers of spaCy's training loop (checked against the installed spaCy first)."""
    from spacy.training import loop

    check_spacy_internals()
    functions = {name: getattr(loop, name) for name in LOOP_HELPERS}
    return LoopHelpers(**functions, model_best=loop.DIR_MODEL_BEST, model_last=loop.DIR_MODEL_LAST)


def optimizer_as(cls: "type[AnOptimizer]", optimizer: Optimizer) -> AnOptimizer:
    """An instance of ``cls`` (a subclass of thinc's ``Optimizer``) with ``optimizer``'s
    settings and state; ``cls``'s own slots are left unset."""
    made = cls.__new__(cls)
    for slot in Optimizer.__slots__:
        if hasattr(optimizer, slot):
            setattr(made, slot, getattr(optimizer, slot))
    return made


def torch_modules(model: Model) -> Iterator[torch.nn.Module]:
    """The torch modules inside ``model``'s PyTorch shims (every node of it)."""
    for node in model.walk():
        for shim in node.shims:
            module = getattr(shim, "_model", None)
            if isinstance(module, torch.nn.Module):
                yield module


def parse_overrides(args: List[str]) -> Dict[str, Any]:
    """Config overrides from command-line arguments, as ``spacy train`` reads them:
    ``["--paths.train", "train.spacy", "--training.max_steps=100"]`` ->
    ``{"paths.train": "train.spacy", "training.max_steps": 100}`` (values parsed as config
    values; ``SPACY_CONFIG_OVERRIDES`` in the environment is read too)."""
    from spacy.cli._util import parse_config_overrides

    return parse_config_overrides(list(args))
