"""Whole documents: mixed-length training docs, and long docs read in windows of whole sentences."""

import json
import random

import numpy as np
import pytest
import spacy
from spacy.tokens import Doc, DocBin
from spacy.training import Example

from spacy_llm_tagger.corpus import create_document_corpus, runs_of_sentences
from spacy_llm_tagger.models.alignment import (
    SENTENCE_FINAL,
    SubwordAligner,
    pack_sentences,
    sentence_starts,
    with_final_space,
)
from spacy_llm_tagger.models.loading import special_token_frame

from .test_component import make_nlp, ner_examples, train
from .util import train_tokenizer

SENTENCES = [
    ["Peter", "Blackburn", "lives", "in", "Brussels", "."],
    ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
    ["Apple", "Inc.", "opened", "a", "store", "."],
    ["Werner", "Zwingmann", "said", "on", "Wednesday", "consumers", "should", "buy", "sheepmeat", "."],
    ["Germany", "imports", "lamb", "."],
]
ENTS = {"Peter Blackburn": "PER", "Brussels": "LOC", "EU": "ORG", "Werner Zwingmann": "PER"}


def document(vocab, sentences):
    words = [w for sentence in sentences for w in sentence]
    starts = [i == 0 for sentence in sentences for i in range(len(sentence))]
    doc = Doc(vocab, words=words, sent_starts=starts)
    ents = []
    for text, label in ENTS.items():
        n = len(text.split())
        for i in range(len(doc) - n + 1):
            if doc[i : i + n].text == text:
                ents.append(doc.char_span(doc[i].idx, doc[i + n - 1].idx + len(doc[i + n - 1]), label))
    doc.ents = ents
    return doc


@pytest.fixture
def corpus_path(tmp_path):
    nlp = spacy.blank("en")
    docs = [document(nlp.vocab, SENTENCES), document(nlp.vocab, SENTENCES[1:3])]
    path = tmp_path / "docs.spacy"
    DocBin(docs=docs).to_disk(path)
    return path


def test_document_corpus_yields_runs_and_single_sentences(corpus_path):
    nlp = spacy.blank("en")
    sentence_texts = [" ".join(s) for s in SENTENCES]
    random.seed(0)
    runs = list(create_document_corpus(corpus_path, max_words=60)(nlp))
    random.seed(0)
    examples = list(create_document_corpus(corpus_path, max_words=60, single_sentences=True)(nlp))
    texts = [eg.reference.text.strip() for eg in runs]
    # the runs cover each document's sentences once, in order, some of them joined
    assert " ".join(texts) == " ".join(sentence_texts + sentence_texts[1:3])
    assert any(text not in sentence_texts for text in texts)
    for eg in runs:
        assert len(eg.reference) <= 60 or len(list(eg.reference.sents)) == 1
        assert [t.text for t in eg.predicted] == [t.text for t in eg.reference]
        assert not eg.predicted.has_annotation("ENT_IOB")
    # and every sentence of a multi-sentence doc also comes alone
    singles = sentence_texts + sentence_texts[1:3]
    assert sorted(eg.reference.text.strip() for eg in examples) == sorted(texts + singles)
    # entities travel with their sentences
    labels = {(e.text, e.label_) for eg in examples for e in eg.reference.ents}
    assert labels == set(ENTS.items())


def test_document_corpus_limit_counts_sentences_like_sentence_corpus(corpus_path):
    nlp = spacy.blank("en")
    examples = list(create_document_corpus(corpus_path, limit=3)(nlp))
    text = " ".join(eg.reference.text.strip() for eg in examples)
    assert text == " ".join(" ".join(s) for s in SENTENCES[:3])


def test_document_corpus_without_runs_is_the_sentence_corpus(corpus_path):
    from spacy_llm_tagger.corpus import create_sentence_corpus

    nlp = spacy.blank("en")
    by_sentence = [eg.reference.text for eg in create_sentence_corpus(corpus_path, limit=4)(nlp)]
    assert [
        eg.reference.text for eg in create_document_corpus(corpus_path, limit=4, max_words=0)(nlp)
    ] == by_sentence


def test_runs_of_sentences_cover_each_sentence_once_in_order():
    rng = random.Random(1)
    sentences = [list(range(n)) for n in (3, 8, 1, 30, 2, 2, 5)]
    for max_words in (1, 5, 12, 100):
        runs = runs_of_sentences(sentences, max_words, rng)
        assert [s for run in runs for s in run] == sentences
        assert all(len(run) == 1 or sum(map(len, run)) <= max_words for run in runs)


def test_sentence_starts_from_sents_or_punctuation_and_line_breaks():
    nlp = spacy.blank("en")
    doc = nlp("Hello there. How are you? Fine\n\nthanks and you")
    assert not doc.has_annotation("SENT_START")
    starts = sentence_starts(doc).tolist()
    assert starts[:3] == [0, 3, 7] and [t.text for t in doc][starts[-1]] == "thanks"
    with_sents = Doc(nlp.vocab, words=["a", "b", "c", "d"], sent_starts=[True, False, True, False])
    assert sentence_starts(with_sents).tolist() == [0, 2]
    # whitespace goes with the sentence before it (or, at the start, the one after it)
    spaced = nlp("\n\nHello there .  \n\nHow are you")
    assert [t.text for t in spaced][:5] == ["\n\n", "Hello", "there", ".", " \n\n"]
    assert sentence_starts(spaced).tolist() == [0, 5]
    assert sentence_starts(nlp("\n")).tolist() == [0]


def test_pack_sentences_fills_windows_with_whole_sentences():
    # 10 tokens of one subword each; sentences start at 0, 3, 5, 9
    first = np.arange(10)
    end = first + 1
    starts = np.asarray([0, 3, 5, 9])
    assert pack_sentences(first, end, starts, 10, size=5) == [(0, 5), (5, 10)]
    assert pack_sentences(first, end, starts, 10, size=4) == [(0, 3), (3, 5), (5, 9), (9, 10)]
    # a sentence longer than the size is a range of its own
    assert pack_sentences(first, end, starts, 10, size=2) == [(0, 3), (3, 5), (5, 9), (9, 10)]
    # no cut inside a shared subword (tokens 4 and 5 share one)
    first_shared = np.asarray([0, 1, 2, 3, 4, 4, 5, 6, 7, 8])
    end_shared = np.asarray([1, 2, 3, 4, 5, 5, 6, 7, 8, 9])
    assert pack_sentences(first_shared, end_shared, starts, 9, size=6) == [(0, 3), (3, 10)]


def test_segmented_windows_read_every_token_from_its_own_sentences():
    tokenizer = train_tokenizer()
    prefix, suffix = special_token_frame(tokenizer)
    aligner = SubwordAligner(tokenizer, prefix, suffix, max_length=2048, window_overlap=8)
    nlp = spacy.blank("en")
    doc = document(nlp.vocab, SENTENCES * 6)
    plain = aligner([doc])[0]
    assert len(plain.windows) == 1
    segmented = aligner([doc], segment_length=40)[0]
    assert len(segmented.windows) > 3
    assert all(len(w) <= 40 for w in segmented.windows)
    assert doc[-1].whitespace_  # a doc of words ends with a space, and so does each segment
    for window, (begin, end) in zip(segmented.windows, segmented.window_tokens):
        assert doc[int(begin)].is_sent_start
        # each window holds its sentences tokenized as a doc of their own
        text = doc[int(begin) : int(end)].text_with_ws
        alone = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert window[len(prefix) : len(window) - len(suffix)].tolist() == alone
    assert sorted(set(segmented.token_window.tolist())) == list(range(len(segmented.windows)))
    assert (segmented.token_end > segmented.token_start).all()
    # a doc that fits is not cut
    short = aligner([document(nlp.vocab, SENTENCES[:1])], segment_length=40)[0]
    assert len(short.windows) == 1


@pytest.mark.parametrize("final_space", [True, False])
def test_a_line_break_ends_a_segment_but_is_not_read(final_space):
    """Issue #31: wire text breaks lines after datelines and table rows. A segment ends at its
    line break, and the model reads the text before it as the sentence alone (with a final
    space where the doc has one), not a line break it never saw in training."""
    tokenizer = train_tokenizer()
    prefix, suffix = special_token_frame(tokenizer)
    aligner = SubwordAligner(tokenizer, prefix, suffix, max_length=2048, window_overlap=8)
    lines = [
        ["LONDON", "1996-08-30"],
        SENTENCES[0] + SENTENCES[1],
        ["Leicestershire", "22"],
        ["Somerset", "11"],
    ]
    words, spaces = [], []
    for k, line in enumerate(lines):
        words += line + ["\n"] * (k < len(lines) - 1)
        spaces += [True] * (len(line) - 1) + [False] + [False] * (k < len(lines) - 1)
    spaces[-1] = final_space
    doc = Doc(spacy.blank("en").vocab, words=words, spaces=spaces)
    assert sentence_starts(doc).tolist() == [0, 3, 9, 19, 22]  # the line break after "." ends that sentence
    read = aligner([doc], segment_length=12)[0]
    tail = " " if final_space else ""
    expected = [
        "LONDON 1996-08-30",
        "Peter Blackburn lives in Brussels .",
        "EU rejects German call to boycott British lamb .",
        "Leicestershire 22",
        "Somerset 11",
    ]
    for window, text in zip(read.windows, expected):
        alone = tokenizer(text + tail, add_special_tokens=False)["input_ids"]
        assert window[len(prefix) : len(window) - len(suffix)].tolist() == alone
    assert len(read.windows) == len(expected)
    # every token, line breaks included, is read from the window of its own line
    line_breaks = [i for i, word in enumerate(words) if word == "\n"]
    assert read.token_window[line_breaks].tolist() == [0, 2, 3]
    assert (read.token_end > read.token_start).all()


@pytest.mark.parametrize("final_space", [True, False])
def test_one_sentence_longer_than_the_segment_is_read_exactly_as_whole(final_space):
    """Issue #34: a test sentence longer than the learned window was cut into windows (and
    lost its final space), which cost up to 2 F1 against reading it whole."""
    tokenizer = train_tokenizer()
    prefix, suffix = special_token_frame(tokenizer)
    aligner = SubwordAligner(tokenizer, prefix, suffix, max_length=2048, window_overlap=8)
    words = [w for sentence in SENTENCES for w in sentence if w not in SENTENCE_FINAL]
    doc = Doc(spacy.blank("en").vocab, words=words, spaces=[True] * (len(words) - 1) + [final_space])
    whole = aligner([doc])[0]
    assert len(whole.windows[0]) > 60
    cut = aligner([doc], segment_length=20)[0]
    assert [w.tolist() for w in cut.windows] == [w.tolist() for w in whole.windows]
    np.testing.assert_array_equal(cut.token_start, whole.token_start)
    np.testing.assert_array_equal(cut.token_end, whole.token_end)


def test_model_records_training_lengths_and_reads_long_docs_by_sentences(tiny_model_dir, tmp_path):
    nlp = make_nlp(tiny_model_dir, head_dropout=0.0)
    model = nlp.get_pipe("llm_tagger").model
    examples = ner_examples(nlp)
    nlp.initialize(lambda: examples)
    assert model.trained_lengths.total == 0 and model.segment_length is None
    train(nlp, examples, steps=3)
    assert model.trained_lengths.total == 3 * len(examples)
    longest = max(model.trained_lengths.counts)
    assert model.segment_length == max(32, model.trained_lengths.percentile(95))
    assert model.trained_lengths.percentile(100) == longest
    # a long doc of sentences is read sentence-packed: when every window holds exactly one
    # sentence, each sentence scores exactly as it does alone
    sentences = [[t.text for t in eg.reference] for eg in examples] * 5
    alone = [Doc(nlp.vocab, words=s, spaces=[True] * (len(s) - 1) + [False]) for s in sentences]
    lengths = [len(w) for d in model.loaded.aligner(alone) for w in d.windows]
    longest_sentence = max(lengths)
    frame = sum(map(len, special_token_frame(model.loaded.tokenizer)))
    assert min(a + b for a, b in zip(lengths, lengths[1:])) - frame > longest_sentence  # one per window
    words = [w for s in sentences for w in s]
    spaces = [True] * (len(words) - 1) + [False]  # ends as each sentence alone does
    doc = Doc(
        nlp.vocab, words=words, spaces=spaces, sent_starts=[i == 0 for s in sentences for i in range(len(s))]
    )
    config = {"components.llm_tagger.model.inference_window": longest_sentence}
    tagger = spacy.load(save(nlp, tmp_path), config=config).get_pipe("llm_tagger")
    assert tagger.model.segment_length == longest_sentence
    (long_scores,) = tagger.model.predict([doc])
    np.testing.assert_allclose(long_scores, np.concatenate(tagger.model.predict(alone)), atol=1e-5)
    # without the sentence annotation, the full stops mark the sentences
    (unsegmented,) = tagger.model.predict([Doc(nlp.vocab, words=words, spaces=spaces)])
    np.testing.assert_allclose(unsegmented, long_scores, atol=1e-5)


def save(nlp, tmp_path):
    path = tmp_path / "pipe"
    nlp.to_disk(path)
    return path


def test_trained_lengths_are_saved_and_loaded(tiny_model_dir, tmp_path):
    nlp = make_nlp(tiny_model_dir)
    train(nlp, ner_examples(nlp), steps=2)
    loaded = spacy.load(save(nlp, tmp_path))
    model, again = nlp.get_pipe("llm_tagger").model, loaded.get_pipe("llm_tagger").model
    assert again.trained_lengths.counts == model.trained_lengths.counts
    assert again.segment_length == model.segment_length
    copied = spacy.blank("en").from_config(nlp.config)
    copied.from_bytes(nlp.to_bytes())
    assert copied.get_pipe("llm_tagger").model.trained_lengths.counts == model.trained_lengths.counts


def test_an_overlong_sentence_inside_a_document_is_read_in_trained_length_windows():
    """Issue #31: inside a doc of several sentences, a "sentence" longer than the longest trained
    window is mostly a table or headline run without punctuation; read whole it cost 2.7 F1 on
    60 dev documents (77.3 vs 79.9), so it gets windows of ``sentence_length``."""
    tokenizer = train_tokenizer()
    prefix, suffix = special_token_frame(tokenizer)
    aligner = SubwordAligner(tokenizer, prefix, suffix, max_length=2048, window_overlap=8)
    run_on = [w for sentence in SENTENCES for w in sentence if w not in SENTENCE_FINAL]
    words = ["Short", "one", "."] + run_on + ["."]
    doc = Doc(spacy.blank("en").vocab, words=words)
    windows = aligner([doc], segment_length=20, sentence_length=30)[0]
    assert len(windows.windows) > 2 and all(len(w) <= 30 for w in windows.windows)
    alone = Doc(spacy.blank("en").vocab, words=run_on)  # one sentence: whole
    assert len(aligner([alone], segment_length=20, sentence_length=30)[0].windows) == 1


def test_pack_sentences_stops_at_the_sentence_limit():
    first = np.arange(10)
    end = first + 1
    starts = np.asarray([0, 3, 5, 9])
    assert pack_sentences(first, end, starts, 10, size=10, max_sentences=1) == [
        (0, 3),
        (3, 5),
        (5, 9),
        (9, 10),
    ]
    assert pack_sentences(first, end, starts, 10, size=10, max_sentences=2) == [(0, 5), (5, 10)]
    assert pack_sentences(first, end, starts, 10, size=10, max_sentences=3) == [(0, 9), (9, 10)]
    assert pack_sentences(first, end, starts, 10, size=4, max_sentences=2) == [
        (0, 3),
        (3, 5),
        (5, 9),
        (9, 10),
    ]


def test_a_long_doc_is_packed_up_to_the_sentence_limit():
    tokenizer = train_tokenizer()
    prefix, suffix = special_token_frame(tokenizer)
    aligner = SubwordAligner(tokenizer, prefix, suffix, max_length=2048, window_overlap=8)
    doc = document(spacy.blank("en").vocab, SENTENCES[:3])
    whole = len(aligner([doc])[0].windows[0])
    assert len(aligner([doc], segment_length=whole - 1)[0].windows) < 3  # packed by length
    windows = aligner([doc], segment_length=whole - 1, segment_sentences=1)[0]
    assert [tuple(r) for r in windows.window_tokens.tolist()] == [(s.start, s.end) for s in doc.sents]
    # a doc that fits the length is read whole, however many sentences it has (a sentence
    # with a "?" inside stays one window)
    assert len(aligner([doc], segment_length=whole, segment_sentences=1)[0].windows) == 1


def trained_on_sentences(tiny_model_dir):
    """A tagger on the tiny decoder trained 2 steps on one Doc per short sentence (built from
    word lists: each ends in a space); the pipeline, the sentences and their examples."""
    nlp = make_nlp(tiny_model_dir, head_dropout=0.0)
    sentences = [["Ann", "left", "."], ["Bob", "stayed", "."], ["Carl", "went", "home", "."]] * 4
    examples = [
        Example(Doc(nlp.vocab, words=s), Doc(nlp.vocab, words=s, ents=["B-PER"] + ["O"] * (len(s) - 1)))
        for s in sentences
    ]
    train(nlp, examples, steps=2)
    return nlp, sentences, examples


def test_a_sentence_trained_model_reads_a_document_as_its_sentences_alone(tiny_model_dir, tmp_path):
    """Issue #31: packing several sentences into one window cost a sentence-trained tagger 1.0
    F1 on dev documents with known boundaries; it now learns how many sentences a training
    window held (one) and reads no more at a time."""
    nlp, sentences, examples = trained_on_sentences(tiny_model_dir)
    model = nlp.get_pipe("llm_tagger").model
    assert model.trained_sentences.counts == {1: 2 * len(examples)}
    assert model.segment_sentences == 1
    alone = [Doc(nlp.vocab, words=s) for s in sentences]
    starts = [i == 0 for s in sentences for i in range(len(s))]
    doc = Doc(nlp.vocab, words=[w for s in sentences for w in s], sent_starts=starts)
    aligner = model.loaded.aligner
    packed = aligner([doc], model.segment_length, model.sentence_length)[0]
    assert len(aligner([doc])[0].windows[0]) > model.segment_length  # long: read in segments
    assert len(packed.windows) < len(sentences)  # without the limit, windows of several
    loaded = spacy.load(save(nlp, tmp_path)).get_pipe("llm_tagger").model
    assert loaded.trained_sentences.counts == model.trained_sentences.counts
    (whole,) = loaded.predict([doc])
    np.testing.assert_allclose(whole, np.concatenate(loaded.predict(alone)), atol=1e-5)
    # a window of several sentences in training lifts the limit
    document_example = Example(doc, Doc(nlp.vocab, words=[t.text for t in doc], sent_starts=starts))
    train(nlp, [document_example] * 30, steps=1)
    assert model.segment_sentences == len(sentences)
    # inference_window set: the user chose the windows, no limit
    config = {"components.llm_tagger.model.inference_window": 64}
    assert (
        spacy.load(save(nlp, tmp_path), config=config).get_pipe("llm_tagger").model.segment_sentences is None
    )


def test_pipelines_saved_before_sentence_counts_have_no_limit(tiny_model_dir, tmp_path):
    nlp = make_nlp(tiny_model_dir)
    train(nlp, ner_examples(nlp), steps=1)
    path = save(nlp, tmp_path)
    (settings,) = (path / "llm_tagger").rglob("decoder.json")
    meta = json.loads(settings.read_text())
    del meta["trained_window_sentences"]
    settings.write_text(json.dumps(meta))
    model = spacy.load(path).get_pipe("llm_tagger").model
    assert model.trained_sentences.total == 0 and model.segment_sentences is None
    assert model.segment_length is not None


def test_a_model_reads_every_text_ending_as_its_training_texts_did(tiny_model_dir, tmp_path):
    """Issue #31: docs built from word lists (``Doc(vocab, words)``, ``spacy convert``) end in a
    space, ``nlp(text)`` most often does not, and a model trained on the one read the other as
    a different text (the project's sentence-trained tagger read the 231 test articles as wire
    text 1.68 F1 below their sentences, and level with them ending as its training texts did).
    The model records how its training texts ended and reads every doc and window that way."""
    nlp, sentences, examples = trained_on_sentences(tiny_model_dir)
    model = nlp.get_pipe("llm_tagger").model
    assert model.trained_final_space.counts == {1: 2 * len(examples)} and model.final_space is True
    words = [w for s in sentences for w in s]
    for doc_words in (sentences[0], words):  # one window, and a doc read in segments
        spaced = Doc(nlp.vocab, words=doc_words)
        bare = Doc(nlp.vocab, words=doc_words, spaces=[True] * (len(doc_words) - 1) + [False])
        assert spaced.text != bare.text
        assert (
            model.loaded.aligner([bare])[0].windows[-1].tolist()
            != model.loaded.aligner([spaced])[0].windows[-1].tolist()
        )
        np.testing.assert_allclose(model.predict([bare])[0], model.predict([spaced])[0], atol=1e-5)
    path = save(nlp, tmp_path)
    assert spacy.load(path).get_pipe("llm_tagger").model.trained_final_space.counts == {1: 2 * len(examples)}
    assert model.copy().final_space is True
    # a pipeline saved before the endings were recorded reads each doc as it is
    (settings,) = (path / "llm_tagger").rglob("decoder.json")
    meta = json.loads(settings.read_text())
    del meta["trained_final_space"]
    settings.write_text(json.dumps(meta))
    assert spacy.load(path).get_pipe("llm_tagger").model.final_space is None


@pytest.mark.parametrize("final_space", [True, False])
def test_texts_end_with_or_without_one_space(final_space):
    vocab = spacy.blank("en").vocab
    tail = " " if final_space else ""
    for spaces in ([True, True], [True, False]):
        assert (
            with_final_space(Doc(vocab, words=["Ann", "left"], spaces=spaces), final_space)
            == "Ann left" + tail
        )
    line_break = Doc(vocab, words=["Ann", "\n"], spaces=[False, False])
    assert with_final_space(line_break, final_space) == "Ann\n"
    assert with_final_space(Doc(vocab, words=[]), final_space) == ""
