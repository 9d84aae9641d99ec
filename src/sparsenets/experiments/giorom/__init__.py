"""GIOROM studies: the reduced-order particle stepper + decoder against a full-order GNS on generated MPM data."""
