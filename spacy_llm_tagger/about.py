__title__ = "spacy-llm-tagger"
__version__ = "0.1.0"
