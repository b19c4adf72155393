"""The recipes' shell tools: tools/parse_options.sh and tools/recipe_lib.sh, in tiny scripts
that source them and in the recipes' own run.sh with a stand-in `speech` that logs its calls."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from support.recipes import REPO, make_scratch_recipe


def run_script(tmp_path: Path, body: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    script = tmp_path / "script.sh"
    script.write_text(f"set -euo pipefail\n{body}\n")
    return subprocess.run(["bash", str(script), *args], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env=env)


PARSE = f"""stage=0
stop_stage=100
hours=1.0
. {REPO}/tools/parse_options.sh
echo "stage=$stage stop_stage=$stop_stage hours=$hours"
"""


def test_parse_options_rejects_leftover_words_and_non_integers(tmp_path):
    ok = run_script(tmp_path, PARSE, "--stage", "5", "--stop-stage=7", "--hours", "0.5")
    assert ok.returncode == 0 and ok.stdout == "stage=5 stop_stage=7 hours=0.5\n"

    # A stray word used to end option parsing silently: stage 0 ran instead of stage 5.
    junk = run_script(tmp_path, PARSE, "junk", "--stage", "5", "--stop-stage", "5")
    assert junk.returncode == 1 and junk.stdout == ""
    assert "unexpected argument 'junk'" in junk.stderr.splitlines()[0]

    # A non-number for an integer option used to make every stage test fail: nothing ran, exit 0.
    for args, option, value in ((["--stage", "abc"], "--stage", "abc"), (["--stop-stage=1.5"], "--stop-stage", "1.5")):
        bad = run_script(tmp_path, PARSE, *args)
        assert bad.returncode == 1 and bad.stdout == "", args
        assert bad.stderr.splitlines() == [f"{tmp_path / 'script.sh'}: option {option} takes a whole number (got '{value}')"]


def fake_speech(tmp_path: Path, fail_on: str = "") -> dict[str, str]:
    """An environment whose `speech` appends its arguments to tmp_path/calls (and fails for
    arguments containing ``fail_on``), outside any virtualenv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    speech = bin_dir / "speech"
    speech.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "calls"}\n'
                      + (f'case "$*" in *{fail_on}*) exit 3 ;; esac\n' if fail_on else ""))
    speech.chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", VIRTUAL_ENV=str(tmp_path))


def fbank_call(s: str, nj: str = "2", cmd: str = "local") -> str:
    return f"compute-fbank data/{s} --nj {nj} --cmd {cmd} --feat-dir fbank/{s} --log-dir exp/make_fbank/{s}"


def test_recipe_lib_runs_stages_and_fbank_per_set(tmp_path):
    body = f"""stage=2; stop_stage=3; nj=3; cmd="slurm --mem 4G"
. {REPO}/tools/recipe_lib.sh
for n in 1 2 3 4; do if run_stage $n; then echo "run $n"; fi; done
compute_fbank_sets 1 train dev test
echo "not reached"
"""
    proc = run_script(tmp_path, body, env=fake_speech(tmp_path, fail_on="data/dev"))
    assert proc.returncode == 3  # a failing set stops the recipe (set -e) before the next
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["run 2", "run 3"] and "not reached" not in proc.stdout
    assert [line.split(" ", 2)[2] for line in lines[2:]] == ["[stage 1] 80-dim fbank for data/train",
                                                             "[stage 1] 80-dim fbank for data/dev"]
    assert (tmp_path / "calls").read_text().splitlines() == [fbank_call(s, "3", "slurm --mem 4G") for s in ("train", "dev")]


@pytest.mark.parametrize("name, sets", [("digits", ["train", "dev", "test"]), ("voices", ["train", "dev", "test", "real"])])
def test_recipe_stage_1_uses_recipe_lib(tmp_path, name, sets):
    recipe = make_scratch_recipe(tmp_path, name)
    assert ". ../../tools/recipe_lib.sh" in (recipe / "run.sh").read_text().splitlines()
    assert "run_stage()" not in (recipe / "run.sh").read_text()
    proc = subprocess.run(["bash", "run.sh", "--stage", "1", "--stop-stage", "1"], cwd=recipe, capture_output=True,
                          text=True, timeout=60, env=fake_speech(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "calls").read_text().splitlines() == [*map(fbank_call, sets), "compute-cmvn-stats data/train"]
    assert [line.split(" ", 2)[2] for line in proc.stdout.splitlines()] == [
        f"[stage 1] 80-dim fbank for data/{s}" for s in sets]
