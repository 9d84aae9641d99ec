"""Turbo-VBI studies: LeNet-300-100 and LeNet-5 on MNIST, the demo CNN on Fashion-MNIST (docs/methods/turbovbi.md)."""
