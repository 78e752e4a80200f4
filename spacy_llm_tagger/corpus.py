"""A corpus reader that yields one training Example per sentence."""
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Corpus, Example
from spacy.util import registry


@registry.readers("spacy-llm-tagger.SentenceCorpus.v1")
def create_sentence_corpus(
    path: Optional[Union[str, Path]],
    limit: int = 0,
    shuffle: bool = False,
    gold_tokens: bool = True,
) -> Callable[[Language], Iterator[Example]]:
    """Read a .spacy DocBin and split every doc into its sentences.

    limit: keep the first N sentences (0 = all), e.g. for CPU-sized runs.
    gold_tokens: predict on the corpus' own tokens (as CoNLL evaluations do);
        False re-tokenizes the text with the pipeline's tokenizer.
    Docs without sentence boundaries are yielded whole.
    """
    if path is None:
        raise ValueError("SentenceCorpus needs a path to a .spacy file or folder.")
    corpus = Corpus(path, shuffle=shuffle)

    def read(nlp: Language) -> Iterator[Example]:
        count = 0
        for example in corpus(nlp):
            reference = example.reference
            parts = list(reference.sents) if reference.has_annotation("SENT_START") else [reference[:]]
            for part in parts:
                if limit and count >= limit:
                    return
                sentence = part.as_doc()
                if len(sentence) == 0:
                    continue
                count += 1
                if gold_tokens:
                    predicted = tokens_only(sentence, nlp.vocab)
                else:
                    predicted = nlp.make_doc(sentence.text)
                yield Example(predicted, sentence)

    return read


def tokens_only(doc: Doc, vocab=None) -> Doc:
    """A copy of ``doc`` with the same tokens and spaces and no annotation."""
    words = [token.text for token in doc]
    spaces = [bool(token.whitespace_) for token in doc]
    return Doc(vocab if vocab is not None else doc.vocab, words=words, spaces=spaces)
