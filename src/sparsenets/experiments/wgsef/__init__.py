"""WGSEF studies: LeNet-5/MNIST, VGG-16-BN and ResNet-18 on Fashion-MNIST, against the pruning baselines."""
