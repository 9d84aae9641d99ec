"""Sparsey studies: one mac's mechanics, MNIST classification, digit sequences."""
