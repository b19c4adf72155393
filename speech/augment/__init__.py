"""Waveform augmentation for training data: pseudo-speakers re-synthesised by WORLD
(voice.py), simulated rooms (room.py), additive noise at a drawn SNR (noise.py) and
telephone band and codecs (channel.py); ``speech augment-data-dir`` (speech/data/
augment_data_dir.py) renders a data dir through them. The feature-level augmentation of
training (VTLP warp, SpecAugment) is speech/features/augment.py.

Every function takes and returns float32 samples [N] of one rate and keeps N: an
augmented utterance keeps its transcript's timing and its utt2dur.
"""
