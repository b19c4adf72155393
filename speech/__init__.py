"""speech: speech recognition and synthesis run as Kaldi-style recipe stages."""

__version__ = "0.1.0"
