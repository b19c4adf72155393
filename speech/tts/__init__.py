"""Speech synthesis: mel features, the neural vocoder and (later) the acoustic model."""
