"""oncorepro: re-implementations and audits of explainable deep learning papers for cancer imaging."""

import warnings

__version__ = "0.1.0"

# timm imports huggingface_hub, which imports tqdm.auto: in a notebook kernel without ipywidgets that warns on
# every chapter. Our progress bars are plain tqdm; the warning says nothing about the study.
warnings.filterwarnings("ignore", message="IProgress not found")
