"""Word-to-subword alignment and windowing for any spaCy tokenization."""

import numpy as np
import pytest
import spacy
from spacy.tokens import Doc

from spacy_llm_tagger.models.alignment import SubwordAligner
from spacy_llm_tagger.models.loading import special_token_frame

from .util import train_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer()


def aligner(tokenizer, max_length=512, overlap=8):
    prefix, suffix = special_token_frame(tokenizer)
    return SubwordAligner(tokenizer, prefix, suffix, max_length, overlap)


def test_special_tokens_detected(tokenizer):
    prefix, suffix = special_token_frame(tokenizer)
    assert prefix == [tokenizer.bos_token_id] and suffix == []


def test_words_keep_their_leading_space_subword(tokenizer):
    nlp = spacy.blank("en")
    doc = nlp("EU rejects German call")
    (enc,) = aligner(tokenizer)([doc])
    window = enc.windows[0]
    # the first subword of "rejects" is read from running text: it starts with Ġ
    piece = tokenizer.convert_ids_to_tokens([int(window[enc.token_start[1]])])[0]
    assert piece.startswith("Ġ")
    assert (enc.token_end > enc.token_start).all()


@pytest.mark.parametrize(
    "words,spaces",
    [
        (["Hello", " ", "world", "\n\n", "!"], [False, False, False, False, False]),
        (["a", "b", "c"], [False, False, False]),
        (["🙂", "👍🏽", "東京", "مرحبا"], [True, True, True, False]),
        (["x" * 3000], [False]),
        (["\u200b", "\x00", "e\u0301"], [True, True, False]),
        ([" "], [False]),
    ],
)
def test_every_token_gets_a_subword(tokenizer, words, spaces):
    doc = Doc(spacy.blank("en").vocab, words=words, spaces=spaces)
    (enc,) = aligner(tokenizer, max_length=64, overlap=8)([doc])
    assert len(enc.token_window) == len(doc)
    for w, s, e in zip(enc.token_window, enc.token_start, enc.token_end):
        assert 0 <= w < len(enc.windows)
        assert 1 <= s < e <= len(enc.windows[w])


def test_long_doc_is_windowed_without_loss(tokenizer):
    nlp = spacy.blank("en")
    text = " ".join(f"word{i % 50} is here ." for i in range(400))
    doc = nlp(text)
    al = aligner(tokenizer, max_length=64, overlap=16)
    (enc,) = al([doc])
    assert len(enc.windows) > 10
    assert all(len(w) <= 64 for w in enc.windows)
    # each token is read from a window that contains its own first subword
    full = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = np.asarray(full["input_ids"])
    alone = al([doc[:0].as_doc()])  # empty doc: no windows
    assert alone[0].windows == []
    prefix = len(al.prefix)
    starts = [0]
    for w in enc.windows[1:]:
        body = w[prefix:]
        for s in range(starts[-1] + 1, len(ids)):
            if np.array_equal(ids[s : s + len(body)], body):
                starts.append(s)
                break
    assert len(starts) == len(enc.windows)
    global_first = np.asarray(starts)[enc.token_window] + enc.token_start - prefix
    assert (np.diff(global_first) >= 0).all()
    # tokens sit away from window edges (except at the doc's ends)
    inner = (enc.token_start - prefix >= 4) | (enc.token_window == 0)
    assert inner.all()


def test_empty_and_whitespace_docs(tokenizer):
    nlp = spacy.blank("en")
    encs = aligner(tokenizer)([nlp(""), nlp("   "), nlp("\n")])
    assert [len(e.token_window) for e in encs] == [0, 1, 1]
    assert encs[0].windows == []


def test_a_fresh_tokenizer_that_adds_no_bos_gets_one_and_a_saved_one_keeps_its_frame(tmp_path):
    """transformers 5.x converts SmolLM2's GGUF tokenizer without the BOS 4.53 adds; the tagger
    reads every window after the BOS either way (73.6 vs 82.3 F1 at one seed, issue #34)."""
    from tokenizers import processors

    from spacy_llm_tagger.models.loading import with_start_token

    tokenizer = train_tokenizer()
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(single="$A", special_tokens=[])
    assert special_token_frame(tokenizer) == ([], [])
    tokenizer.save_pretrained(tmp_path / "as-trained")  # a pipeline trained without one
    with_start_token(tokenizer)
    assert special_token_frame(tokenizer) == ([tokenizer.bos_token_id], [])
    assert tokenizer("a b")["input_ids"][0] == tokenizer.bos_token_id
    # idempotent, and a tokenizer that already frames its text is left alone
    assert special_token_frame(with_start_token(tokenizer)) == ([tokenizer.bos_token_id], [])
    from spacy_llm_tagger.models.persistence import _load_saved_tokenizer

    assert special_token_frame(_load_saved_tokenizer(tmp_path / "as-trained", "tiny")) == ([], [])
