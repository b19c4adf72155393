"""Speech recognition: BLSTM-CTC model, training, decoding, scoring, transcription."""
