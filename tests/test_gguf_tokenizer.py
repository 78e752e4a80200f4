"""Gemma GGUF tokenizers: BPE pieces in every transformers version (4.x converted them as a
Unigram model: "rejects" came out as "▁r ej ec ts")."""

import pytest

from spacy_llm_tagger.models.gguf_tokenizer import merges_by_position, rebuilt_tokenizer, respelled
from spacy_llm_tagger.models.loading import load_tokenizer, resolve_name

gguf = pytest.importorskip("gguf")

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>"]
BYTES = [f"<0x{i:02X}>" for i in range(256)]
# In merge order, as Gemma files list them.
PIECES = [
    "▁r",
    "▁re",
    "ej",
    "ec",
    "ts",
    "ects",
    "▁rej",
    "▁rejects",
    "▁a",
    "an",
    "▁an",
    "▁",
    "r",
    "e",
    "j",
    "c",
    "t",
    "s",
    "a",
    "n",
]


def write_gemma_gguf(path, architecture="gemma3"):
    """A GGUF file with a tiny Gemma-style vocabulary: scores are minus the merge rank (as in
    real Gemma files), control tokens -1000, byte tokens 0; "  " is stored with real spaces."""
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_block_count(1)
    writer.add_context_length(64)
    writer.add_embedding_length(8)
    writer.add_feed_forward_length(16)
    writer.add_head_count(2)
    writer.add_tokenizer_model("llama")
    tokens = SPECIALS + ["  "] + BYTES + PIECES
    types = [3] * len(SPECIALS) + [4] + [6] * len(BYTES) + [1] * len(PIECES)
    scores = [-1000.0] * (len(SPECIALS) + 1) + [0.0] * len(BYTES)
    scores += [-float(len(SPECIALS) + 1 + len(BYTES) + i) for i in range(len(PIECES))]
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_scores(scores)
    writer.add_bos_token_id(2)
    writer.add_eos_token_id(1)
    writer.add_unk_token_id(3)
    writer.add_pad_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_tensor("token_embd.weight", __import__("numpy").zeros((len(tokens), 8), "float32"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def pieces(tokenizer, text):
    return tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])


def test_gemma_gguf_tokenizer_gives_bpe_pieces(tmp_path):
    # Through the loader the tagger uses, in whichever transformers version is installed
    # (5.x converts Gemma files right itself; 4.x gets the rebuilt tokenizer).
    path = write_gemma_gguf(tmp_path / "tiny-gemma3.gguf")
    tokenizer = load_tokenizer(resolve_name(str(path)), "tiny-gemma3")
    assert pieces(tokenizer, "rejects an") == ["<bos>", "r", "ej", "ects", "▁an"]
    assert pieces(tokenizer, "a rejects") == ["<bos>", "a", "▁rejects"]
    encoded = tokenizer("a rejects", return_offsets_mapping=True, add_special_tokens=False)
    assert encoded["offset_mapping"] == [(0, 1), (1, 9)]
    # Two spaces are one token (stored as "  " in the file); an unknown character falls back
    # to its UTF-8 bytes; control tokens in the text stay whole.
    assert pieces(tokenizer, "a  an")[1:] == ["a", "▁▁", "an"]
    assert pieces(tokenizer, "ä")[1:] == ["<0xC3>", "<0xA4>"]
    assert pieces(tokenizer, "<start_of_turn>a")[1:] == ["<start_of_turn>", "a"]
    assert tokenizer.padding_side == "left"
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<bos>", "<eos>", "<pad>")
    assert tokenizer.decode(tokenizer("a rejects")["input_ids"], skip_special_tokens=True) == "a rejects"
    # A saved pipeline keeps the tokenizer (save_pretrained) and reloads it without the GGUF file.
    from transformers import AutoTokenizer

    tokenizer.save_pretrained(str(tmp_path / "saved"))
    reloaded = AutoTokenizer.from_pretrained(str(tmp_path / "saved"))
    assert pieces(reloaded, "<start_of_turn>rejects an  a") == pieces(
        tokenizer, "<start_of_turn>rejects an  a"
    )
    assert reloaded.padding_side == "left"


def test_rebuilt_only_where_transformers_converts_wrongly(tmp_path):
    import transformers

    gemma = rebuilt_tokenizer(write_gemma_gguf(tmp_path / "gemma3.gguf"))
    llama = rebuilt_tokenizer(write_gemma_gguf(tmp_path / "llama.gguf", architecture="llama"))
    assert llama is None
    assert (gemma is not None) == (int(transformers.__version__.split(".")[0]) < 5)
    assert rebuilt_tokenizer(tmp_path / "missing.gguf") is None


def test_merges_ranked_by_token_position_then_longer_left_part():
    tokens = ["a", "b", "c", "ab", "bc", "abc"]
    assert merges_by_position(tokens) == [("a", "b"), ("b", "c"), ("ab", "c"), ("a", "bc")]
    assert respelled(["  ", " ", "a b", "\t"]) == ["▁▁", "▁", "a b", "\t"]
