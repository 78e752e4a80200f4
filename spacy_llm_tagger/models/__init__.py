"""Thinc/PyTorch side: loading decoders, unmasking layers, aligning subwords."""
