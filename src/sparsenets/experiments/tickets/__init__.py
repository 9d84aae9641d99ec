"""Grokking-ticket studies: the grokked ticket against dense, random and pruning-at-init controls."""
