"""The decoder core both registered architectures share.

:class:`DecoderModel` is the Thinc model of an unmasked, LoRA-tuned decoder: it holds the
validated :class:`~.settings.DecoderSettings`, loads the base model in ``initialize`` (or
from a saved folder, never at construction), and saves and loads itself. Each architecture
hands it a :class:`NetworkBuilder`: the torch network it puts on the decoder (a tagging
head, or none for the shared encoder) and how a forward pass feeds that network.
After loading, :attr:`DecoderModel.loaded` is the typed :class:`LoadedDecoder`.
"""

import copy
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import srsly
import torch
from thinc.api import ArgsKwargs, Model, PyTorchWrapper_v2

from ..errors import ConfigError, NotInitializedError
from .alignment import DocWindows, SubwordAligner, ends_in_whitespace, window_sentence_counts
from .batching import PassPlan, WindowPass, plan_passes
from .loading import ModelLocation, special_token_frame
from .network import DecoderNetwork, build_unmasked_decoder, padded_output_converter, wrapper_device
from .persistence import (
    adapters_do_not_fit,
    bytes_to_folder,
    folder_to_bytes,
    head_does_not_fit,
    load_configured_base,
    read_folder,
    read_head,
    write_folder,
)
from .quantization import check_can_quantize, int8_copy
from .settings import DecoderSettings

ConvertInputs = Callable[[Model, WindowPass, bool], Tuple[ArgsKwargs, Callable]]
# A model that learned from windows of these lengths (subwords) reads documents in windows
# of whole sentences up to this percentile of them (see DecoderModel.segment_length).
SEGMENT_PERCENTILE = 95
MIN_SEGMENT_LENGTH = 32
# What training records about the texts it read (histograms, saved with the model).
TRAINED_COUNTS = ("trained_lengths", "trained_sentences", "trained_final_space")


@dataclass
class TrainedLengths:
    """How many training windows of each length (subwords, special tokens included) the
    model has seen: what it knows how to read. The same histogram counts the windows by
    the sentences they held (``DecoderModel.trained_sentences``)."""

    counts: Dict[int, int] = field(default_factory=dict)

    def add(self, lengths: Iterable[int]) -> None:
        for length in lengths:
            self.counts[int(length)] = self.counts.get(int(length), 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def percentile(self, q: float) -> int:
        """The smallest length that at least ``q`` percent of the windows do not exceed."""
        seen = 0
        for length in sorted(self.counts):
            seen += self.counts[length]
            if seen * 100 >= q * self.total:
                return length
        return 0

    def to_dict(self) -> Dict[str, int]:
        return {str(length): count for length, count in sorted(self.counts.items())}

    @classmethod
    def from_dict(cls, data: Optional[Dict[str, int]]) -> "TrainedLengths":
        return cls({int(length): int(count) for length, count in (data or {}).items()})


@dataclass(frozen=True)
class NetworkBuilder:
    """What an architecture puts on the unmasked decoder.

    build: ``(model, decoder, unmasker, base_config) -> DecoderNetwork``; ``decoder`` is the
        (peft-wrapped) base, frozen, its chosen layers unmasked.
    convert_inputs: Thinc's ``convert_inputs`` from a :class:`WindowPass` to the network's
        keyword arguments.
    needs_n_out: the model's ``nO`` (the number of labels) must be set before initialize.
    """

    build: Callable[["DecoderModel", Any, Any, Any], DecoderNetwork]
    convert_inputs: ConvertInputs
    needs_n_out: bool = False


@dataclass
class LoadedDecoder:
    """What ``initialize`` or loading builds: tokenizer, aligner, network and its Thinc wrapper."""

    tokenizer: Any
    aligner: SubwordAligner
    module: DecoderNetwork
    wrapper: Model
    convert_inputs: ConvertInputs
    base_config: Any
    location: Optional[ModelLocation] = None
    pid: int = field(default_factory=os.getpid)  # the process that last ran it
    # What prediction runs when it is not ``module`` itself: the int8 copy (quantize="int8"),
    # built at the first prediction and dropped when training resumes.
    inference_module: Optional[DecoderNetwork] = None

    @property
    def predicting_module(self) -> DecoderNetwork:
        return self.module if self.inference_module is None else self.inference_module

    @property
    def unmasked_layers(self) -> List[int]:
        return self.module.unmasked_layers


class DecoderModel(Model):
    """A decoder LLM with chosen layers unmasked and LoRA adapters, as a Thinc model."""

    def __init__(
        self,
        name: str,
        forward: Callable,
        settings: DecoderSettings,
        network: NetworkBuilder,
        dims: Optional[Dict[str, Optional[int]]] = None,
        attrs: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(
            name,
            forward,
            init=initialize_decoder,
            dims=dims or {},
            attrs={
                "settings": settings,
                "network": network,
                "loaded": None,
                "trained_lengths": TrainedLengths(),
                "trained_sentences": TrainedLengths(),
                "trained_final_space": TrainedLengths(),
                **(attrs or {}),
            },
        )

    @property
    def settings(self) -> DecoderSettings:
        return self.attrs["settings"]

    @property
    def network_builder(self) -> NetworkBuilder:
        return self.attrs["network"]

    @property
    def is_loaded(self) -> bool:
        """Whether the network is built and its weights loaded."""
        return self.attrs["loaded"] is not None

    @property
    def loaded(self) -> LoadedDecoder:
        """The loaded decoder; a clear error before ``nlp.initialize()`` or loading."""
        loaded = self.attrs["loaded"]
        if loaded is None:
            raise NotInitializedError(
                "The llm_tagger model has no weights yet: call nlp.initialize() before "
                "using or training it, or load a trained pipeline with spacy.load()."
            )
        return loaded

    @property
    def trained_lengths(self) -> TrainedLengths:
        """The window lengths the model was trained on (saved with it)."""
        return self.attrs["trained_lengths"]

    @property
    def trained_sentences(self) -> TrainedLengths:
        """How many sentences the training windows held (saved with it)."""
        return self.attrs["trained_sentences"]

    @property
    def trained_final_space(self) -> TrainedLengths:
        """How many training texts ended in whitespace (1) and how many did not (0)."""
        return self.attrs["trained_final_space"]

    @property
    def final_space(self) -> Optional[bool]:
        """Whether a text the model reads should end in whitespace, as most of its training
        texts did: docs built from word lists (``Doc(vocab, words)``, ``spacy convert``) end
        in a space, ``nlp(text)`` most often does not, and the model reads the two endings as
        different texts. None (each doc read as it is) when nothing was recorded."""
        counts = self.trained_final_space.counts
        if not self.trained_final_space.total:
            return None
        return counts.get(1, 0) >= counts.get(0, 0)

    @property
    def segment_length(self) -> Optional[int]:
        """Subwords per window at inference: longer docs are cut at sentence boundaries into
        windows of whole sentences up to this length.

        ``inference_window`` when set; else the 95th percentile of the window lengths the
        model was trained on (at least 32, at most ``max_length``); None when nothing was
        recorded (an untrained model, or a pipeline saved by release 0.1.0), which keeps
        the plain overlapping windows of ``max_length``.
        """
        settings = self.settings
        if settings.inference_window:
            return min(settings.inference_window, settings.max_length)
        if not self.trained_lengths.total:
            return None
        return self._trained_window(SEGMENT_PERCENTILE)

    @property
    def sentence_length(self) -> Optional[int]:
        """Subwords per window for an overlong "sentence" inside a doc of several: the
        longest window the model was trained on, whatever ``inference_window`` says; None
        (``max_length``) when nothing was recorded. A doc that is a single sentence is read
        whole, up to ``max_length``."""
        if not self.trained_lengths.total:
            return None
        return self._trained_window(100)

    @property
    def segment_sentences(self) -> Optional[int]:
        """Sentences per window at inference, at most: the 95th percentile of the sentences
        the training windows held (1 for a model trained on one Doc per sentence). None, no
        limit, when ``inference_window`` is set or nothing was recorded (a pipeline saved
        before the counts were)."""
        if self.settings.inference_window or not self.trained_sentences.total:
            return None
        return max(1, self.trained_sentences.percentile(SEGMENT_PERCENTILE))

    def _trained_window(self, percentile: int) -> int:
        """That percentile of the trained window lengths, at least 32, at most ``max_length``."""
        learned = self.trained_lengths.percentile(percentile)
        return min(max(learned, MIN_SEGMENT_LENGTH), self.settings.max_length)

    @property
    def device(self) -> torch.device:
        return wrapper_device(self.loaded.wrapper)

    @property
    def batch_tokens(self) -> int:
        """Padded subwords per forward pass on the network's device."""
        return self.settings.batch_tokens(self.device.type)

    def prepare(self, is_train: bool) -> LoadedDecoder:
        """What every forward pass does first: one torch thread in a forked worker, the
        adapters merged for prediction (unmerged for training), and with ``quantize``
        the int8 copy that predicts (built again after training changed the weights)."""
        loaded = self.loaded
        limit_threads_after_fork(loaded)
        if is_train:
            loaded.inference_module = None
        loaded.module.set_adapters_merged(not is_train)
        if not is_train and self.settings.quantize == "int8" and loaded.inference_module is None:
            check_can_quantize(self.device)
            loaded.inference_module = int8_copy(loaded.module)
        return loaded

    def plan(self, docs: Sequence[Any], is_train: bool) -> Tuple[List[DocWindows], PassPlan]:
        """Align ``docs`` to subword windows and group them into forward passes.

        Training reads docs whole (windows of ``max_length``) and records their lengths and
        how many sentences they held; prediction cuts docs at sentence boundaries as
        ``segment_length``, ``segment_sentences`` and ``sentence_length`` say.
        """
        loaded = self.loaded
        if is_train:
            encoded = loaded.aligner(docs)
        else:
            encoded = loaded.aligner(
                docs, self.segment_length, self.sentence_length, self.segment_sentences, self.final_space
            )
        plan = plan_passes(encoded, self.batch_tokens, loaded.aligner.filler_id, self.settings.pooling)
        if is_train:
            self.trained_lengths.add(len(window) for window in plan.windows)
            self.trained_sentences.add(
                count for doc, windows in zip(docs, encoded) for count in window_sentence_counts(doc, windows)
            )
            self.trained_final_space.add(int(ends_in_whitespace(doc)) for doc in docs if len(doc))
        return encoded, plan

    # -- building the network ------------------------------------------

    def attach(
        self,
        tokenizer: Any,
        base: Any,
        location: Optional[ModelLocation] = None,
        adapter_state: Optional[dict] = None,
    ) -> LoadedDecoder:
        """Unmask the chosen layers of ``base``, add adapters and the architecture's network."""
        settings = self.settings
        builder = self.network_builder
        decoder, unmasker = build_unmasked_decoder(base, settings, adapter_state)
        network = builder.build(self, decoder, unmasker, base.config)
        wrapper = PyTorchWrapper_v2(
            network,
            convert_inputs=builder.convert_inputs,
            convert_outputs=padded_output_converter(network),
        )
        prefix, suffix = special_token_frame(tokenizer)
        loaded = LoadedDecoder(
            tokenizer=tokenizer,
            aligner=SubwordAligner(tokenizer, prefix, suffix, settings.max_length, settings.window_overlap),
            module=network,
            wrapper=wrapper,
            convert_inputs=builder.convert_inputs,
            base_config=base.config,
            location=location,
        )
        self.attrs["loaded"] = loaded
        self.layers[:] = [wrapper]  # so the optimizer and device moves reach the shim
        return loaded

    # -- saving and loading ---------------------------------------------

    def to_disk(self, path: Union[str, Path]) -> None:
        """Write the model folder (see persistence.py for its layout)."""
        self.save_folder(path)

    def from_disk(self, path: Union[str, Path]) -> "DecoderModel":
        """Rebuild the network from a model folder, or from a file of :meth:`to_bytes`."""
        path = Path(path)
        if path.is_file():
            return self.from_bytes(path.read_bytes())
        return self.load_folder(path)

    def to_bytes(self) -> bytes:
        if not self.is_loaded:
            return srsly.msgpack_dumps({})
        with tempfile.TemporaryDirectory() as tmp:
            self.save_folder(tmp)
            return folder_to_bytes(tmp)

    def from_bytes(self, bytes_data: bytes) -> "DecoderModel":
        with tempfile.TemporaryDirectory() as tmp:
            bytes_to_folder(bytes_data, tmp)
            if any(Path(tmp).iterdir()):
                self.load_folder(tmp)
        return self

    def save_folder(self, path: Union[str, Path]) -> None:
        """Write the trained parts (and with ``store_base_weights`` the base) to a folder."""
        loaded = self.loaded
        write_folder(
            path,
            self.settings,
            self.get_dim("nO") if self.has_dim("nO") else None,
            loaded.tokenizer,
            loaded.base_config,
            loaded.module,
            self.trained_lengths.to_dict(),
            self.trained_sentences.to_dict(),
            self.trained_final_space.to_dict(),
        )

    def load_folder(self, path: Union[str, Path]) -> "DecoderModel":
        """Rebuild the network from a folder of :meth:`save_folder`, offline."""
        saved = read_folder(path, self.settings)
        self.attrs["trained_lengths"] = TrainedLengths.from_dict(saved.trained_lengths)
        self.attrs["trained_sentences"] = TrainedLengths.from_dict(saved.trained_sentences)
        self.attrs["trained_final_space"] = TrainedLengths.from_dict(saved.trained_final_space)
        if saved.n_out is not None:
            self.set_dim("nO", saved.n_out, force=True)
        try:
            loaded = self.attach(saved.tokenizer, saved.base, adapter_state=saved.adapter_state)
        except (RuntimeError, ValueError) as err:
            raise adapters_do_not_fit(path, self.settings.name, err) from err
        if loaded.module.head is not None:
            try:
                loaded.module.head.load_state_dict(read_head(path))
            except RuntimeError as err:
                raise head_does_not_fit(path, err) from err
        return self

    def copy(self) -> "DecoderModel":
        """A model with the same settings and, once loaded, the same weights."""
        copied = DecoderModel(
            self.name,
            self._func,
            copy.deepcopy(self.settings),
            self.network_builder,
            dims={name: self.maybe_get_dim(name) for name in self.dim_names},
            attrs={
                key: value
                for key, value in self.attrs.items()
                if key not in ("settings", "network", "loaded", *TRAINED_COUNTS)
            },
        )
        for key in TRAINED_COUNTS:
            copied.attrs[key] = copy.deepcopy(self.attrs[key])
        if self.is_loaded:
            copied.from_bytes(self.to_bytes())
        return copied


def initialize_decoder(model: DecoderModel, X: Any = None, Y: Any = None) -> None:
    """Thinc's ``init``: load the pretrained base model and attach fresh adapters and network."""
    from .loading import dequantized_gguf, load_tokenizer, resolve_name

    if model.network_builder.needs_n_out and not model.has_dim("nO"):
        raise ConfigError("The llm_tagger model needs its number of labels (nO) before initialize.")
    settings = model.settings
    location = dequantized_gguf(resolve_name(settings.name), settings.name)
    tokenizer = load_tokenizer(location, settings.name)
    base = load_configured_base(location, settings)
    model.attach(tokenizer, base, location)


def limit_threads_after_fork(loaded: LoadedDecoder) -> None:
    """In a forked worker (``nlp.pipe(n_process=N)``) use one torch thread.

    Torch's OpenMP thread pool does not survive ``fork``: a child that starts
    a parallel region can hang for ever. One thread per worker avoids that
    and is what N worker processes on N cores want anyway.
    """
    pid = os.getpid()
    if loaded.pid != pid:
        torch.set_num_threads(1)
        loaded.pid = pid
