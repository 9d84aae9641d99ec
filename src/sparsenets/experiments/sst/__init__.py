"""Sparse Spectral Training studies: character LM, translation and hyperbolic graphs, against LoRA and ReLoRA*."""
