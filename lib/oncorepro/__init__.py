"""oncorepro: re-implementations and audits of explainable deep learning papers for cancer imaging."""

__version__ = "0.1.0"
