"""Manner classes of CMUdict's phones, the classes both the triphone tree's questions
(:mod:`speech.hmm.tree`) and the aligners' boundary offsets (:mod:`speech.boundary_offsets`)
are built from. Hand-written: CMUdict has 39 phones whose phonetics are well known."""

from __future__ import annotations

VOWELS = "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW"
STOPS = "P B T D K G"
FRICATIVES = "F V TH DH S Z SH ZH HH"
AFFRICATES = "CH JH"
NASALS = "M N NG"
APPROXIMANTS = "L R W Y"

MANNER = {"vowel": VOWELS, "stop": STOPS, "fricative": FRICATIVES, "affricate": AFFRICATES, "nasal": NASALS,
          "approximant": APPROXIMANTS}
