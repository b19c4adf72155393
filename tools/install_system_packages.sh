#!/usr/bin/env bash
# Install the Debian packages the toolkit uses: the speech synthesizers that serve as the
# speakers of the synthetic corpora (flite, espeak-ng, festival and its voices), sox,
# libsndfile, the small real-speech clips of pocketsphinx-testdata (a smoke test), and the
# public-domain English text of the voices recipe.
#
# Runs `apt-get update` then `apt-get install` (noninteractive, no recommended packages), as
# root or through sudo. Safe to re-run: when every package is installed it does nothing.
# Usage: tools/install_system_packages.sh [--list]   (--list: print the packages and exit)
set -euo pipefail

packages=(
  espeak-ng            # espeak-ng voices: 8 English accents x ~100 variants
  flite                # flite voices kal16, awb, rms, slt (kal at 8 kHz)
  festival             # festival, driven with one long-lived process per batch
  festvox-kallpc16k    # festival voice kal (the same speaker as flite kal16)
  festvox-kdlpc16k     # festival voice ked
  festvox-us-slt-hts   # festival voice slt-hts (the same speaker as flite slt)
  sox                  # audio conversion in wav.scp pipes
  libsndfile1          # soundfile's system library where its wheel does not bundle one
  pocketsphinx-testdata  # ~1 min of real read speech with transcripts
  r-cran-stringr       # the 720 Harvard sentences (voices recipe text)
  r-cran-janeaustenr   # Austen's novels (voices recipe text and LM)
  fortunes fortunes-min  # quotations (voices recipe text and LM)
  slurm-wlm            # --cmd slurm, and the one-node test cluster of tools/local_slurm.sh
  munge                # Slurm's authentication daemon (a private one per local cluster)
)

if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "${packages[@]}"
  exit 0
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--list]" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_system_packages: all ${#packages[@]} packages are installed"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=(env)
elif command -v sudo >/dev/null; then
  as_root=(sudo env)
else
  echo "install_system_packages: not root and no sudo; as root run: apt-get install ${missing[*]}" >&2
  exit 1
fi

echo "install_system_packages: installing ${missing[*]}"
"${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
