"""Dense end-to-end check: an MLP on real MNIST."""
