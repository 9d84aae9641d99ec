"""Sparsey: sparse distributed codes in macs of competitive modules, chosen by the Code Selection Algorithm.

from sparsenets.sdr import SparseyNet
net = SparseyNet.single_mac(n_inputs=144, q=10, k=10)
net.learn(x)                      # (N, 144) binary, one presentation each
codes = net.recognise(x)[0]       # .winners (N, 1, Q), .g familiarity (N, 1)
"""

from sparsenets.sdr.csa import (
    CSAResult,
    code_cells,
    code_selection,
    evidence,
    familiarity,
    input_sums,
    normalise,
    select,
    selection_probs,
)
from sparsenets.sdr.level import Bundle, LevelSpec, MacLevel
from sparsenets.sdr.network import SparseyNet, UpperLevel
from sparsenets.sdr.params import VARIANTS, CSAParams, eta, mu
from sparsenets.sdr.readout import LabelNodes, LinearProbe, NearestCode, code_overlap

__all__ = [
    "VARIANTS",
    "Bundle",
    "CSAParams",
    "CSAResult",
    "LabelNodes",
    "LevelSpec",
    "LinearProbe",
    "MacLevel",
    "NearestCode",
    "SparseyNet",
    "UpperLevel",
    "code_cells",
    "code_overlap",
    "code_selection",
    "eta",
    "evidence",
    "familiarity",
    "input_sums",
    "mu",
    "normalise",
    "select",
    "selection_probs",
]
