"""spaCy side: the llm_tagger component, its targets and decoding."""
