"""GMM-HMM baseline: topology, GMMs, decision tree, training, alignment, decoding."""
