"""The EM loop shared by ``speech train-mono`` and ``speech train-tri`` (Kaldi's
train_mono.sh and train_deltas.sh after their set-up).

Each iteration x: every job aligns its split when x is a realignment iteration (the flat
start aligns equally at x = 0), accumulates Viterbi statistics, and the stage sums the jobs'
statistics, re-estimates the GMMs (:meth:`DiagGmms.update`) and the self-loop
probabilities, then mixes up: the number of Gaussians grows linearly from one per pdf to
``total_gaussians`` over the first ``max_iter_inc`` iterations, shared out by occupancy **
``power`` (:meth:`DiagGmms.split`).

EXP_DIR always holds the model of the last finished iteration (a whole model dir, written
atomically) and ``progress.json`` naming that iteration, so a killed stage resumes at the
next one; the training graphs (``graphs.J.ark``) are compiled once. ``train.done`` is
written last; its ``seconds`` are the wall time of every run up to its last finished
iteration (progress.json carries the sum), so a resumed run reports the whole training
rather than its own part, and what a killed run lost in an unfinished iteration is not in.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from speech.config import load_config
from speech.data.datadir import DataDir
from speech.data.split import split_data_dir
from speech.device import resolve_device
from speech.errors import SpeechError
from speech.fileio import atomic_write
from speech.hmm.align import read_transcripts
from speech.hmm.features import feature_config
from speech.hmm.model import HmmConfig, HmmSystem, TrainConfig, load_system, save_system
from speech.hmm.topology import HmmTopology
from speech.jobs import parse_cmd, python_module_argv, run_jobs
from speech.jobs.runner import check_nj
from speech.logs import setup_logging
from speech.model_dir import WEIGHTS
from speech.stage import write_done
from speech.train.experiment import DONE, finished

log = logging.getLogger("speech.hmm.train")

PROGRESS = "progress.json"
_MIN_LOOP, _MAX_LOOP = 0.01, 0.99  # self-loop probabilities stay inside (0, 1): a floor as Kaldi's


@dataclass
class Jobs:
    """The data's splits (one per job, by speaker) and how jobs run."""

    splits: list[Path]
    cmd: str = "local"
    device: str = "cpu"  # where each job computes likelihoods and statistics

    @property
    def nj(self) -> int:
        return len(self.splits)

    def run(self, exp: Path, name: str, op: str, per_job, model: Path | None = None) -> None:
        """``python -m speech.hmm.job OP --model MODEL ...`` (default EXP) for every split,
        logs in EXP/log; per_job(j) gives the job's further arguments."""
        def argv(j: int) -> list[str]:
            return python_module_argv("speech.hmm.job", op, "--model", str(model or exp), "--data",
                                      str(self.splits[j - 1]), "--device", self.device, *per_job(j))
        run_jobs(argv, self.nj, exp / "log", name, parse_cmd(self.cmd))


def graphs(exp: Path, j: int) -> Path:
    return exp / f"graphs.{j}.ark"


def alignments(exp: Path, j: int) -> Path:
    return exp / f"ali.{j}.txt"


def compile_training_graphs(exp: Path, jobs: Jobs, model: Path | None = None) -> None:
    """EXP/graphs.J.ark of MODEL's (default EXP's) tree, unless all are there."""
    if all(graphs(exp, j).is_file() for j in range(1, jobs.nj + 1)):
        return
    start = time.time()
    jobs.run(exp, "compile", "compile", lambda j: ["--graphs", str(graphs(exp, j))], model)
    log.info("training graphs of %d splits in %.1f s", jobs.nj, time.time() - start)


def sum_accs(exp: Path, nj: int):
    """(GmmStats, transition counts [P, 2], log-likelihood, frames, failed, utterances)."""
    from safetensors.torch import load_file

    from speech.hmm.gmm import GmmStats

    total = None
    for j in range(1, nj + 1):
        t = load_file(str(exp / f"acc.{j}.safetensors"))
        part = (GmmStats.from_tensors(t), t["transitions"], t["summary"])
        total = part if total is None else (total[0] + part[0], total[1] + part[1], total[2] + part[2])
    stats, trans, summary = total
    loglik, frames, failed, utts = summary.tolist()
    return stats, trans, loglik, int(frames), int(failed), int(utts)


def update_transitions(old: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """ln self-loop probability [P] from counts [P, 2] (enters, loops): loops / frames of the
    state, floored; a pdf never seen keeps ``old``."""
    frames = counts.sum(dim=1)
    p = (counts[:, 1] / frames.clamp(min=1)).clamp(_MIN_LOOP, _MAX_LOOP).log().to(old.dtype)
    return torch.where(frames > 0, p, old)


def gaussians_at(iteration: int, start: int, total: int, max_iter_inc: int) -> int:
    """Kaldi's schedule: start + iteration * (total - start) / max_iter_inc, capped."""
    inc = max(0, (total - start)) / max_iter_inc
    return min(total, start + int(round((iteration + 1) * inc)))


def run_em(exp: Path, jobs: Jobs, cfg: TrainConfig, flat_start: bool, started: float) -> HmmSystem:
    """Iterate from the iteration after progress.json's (0 for a new run) to ``cfg.num_iters``
    (a resumed run takes the settings it is given, so it can also be extended). ``started``:
    when this run began (time.time()), for the training time progress.json accumulates."""
    system = load_system(exp)
    system.cfg.train = cfg
    done = json.loads((exp / PROGRESS).read_text()) if (exp / PROGRESS).is_file() else {"iteration": -1}
    first_count = done.get("start_gaussians", system.gmms.num_gaussians())
    compile_training_graphs(exp, jobs)
    for x in range(done["iteration"] + 1, cfg.num_iters):
        t0 = time.time()
        mode = "equal" if (x == 0 and flat_start) else "viterbi" if x in cfg.realign_iters else "keep"
        jobs.run(exp, f"acc.{x}", "acc", lambda j: ["--graphs", str(graphs(exp, j)), "--ali", str(alignments(exp, j)),
                                                  "--align", mode, "--out", str(exp / f"acc.{j}.safetensors"),
                                                  "--seed", str(cfg.seed + 1000 * j)])
        stats, trans, loglik, frames, failed, utts = sum_accs(exp, jobs.nj)
        if frames == 0:
            raise SpeechError(f"no utterance of the training data could be aligned (iteration {x}); see "
                              f"{exp}/log/acc.{x}.*.log")
        gmms = system.gmms.update(stats, min_variance=cfg.min_variance)
        target = gaussians_at(x, first_count, cfg.total_gaussians, cfg.max_iter_inc)
        if target > gmms.num_gaussians():
            gen = torch.Generator().manual_seed(cfg.seed + x)
            gmms = gmms.split(target, stats.occupancy.sum(dim=1), power=cfg.power, generator=gen)
        system.gmms = gmms
        system.loop_logprob = update_transitions(system.loop_logprob, trans)
        save_system(exp, system)
        with atomic_write(exp / PROGRESS) as f:
            history = done.setdefault("history", []) + [round(loglik / frames, 6)]
            now = time.time()
            done = {"iteration": x, "start_gaussians": first_count, "loglik_per_frame": loglik / frames,
                    "frames": frames, "history": history, "seconds": done.get("seconds", 0.0) + now - started}
            started = now
            json.dump(done, f)
        log.info("iteration %d (%s): log-likelihood per frame %.4f over %d frames, %d of %d utterances not "
                 "aligned; %d Gaussians; %.1f s", x, mode if mode != "keep" else "same alignments",
                 loglik / frames, frames, failed, utts, gmms.num_gaussians(), time.time() - t0)
    for j in range(1, jobs.nj + 1):
        (exp / f"acc.{j}.safetensors").unlink(missing_ok=True)
    return system


def finish(exp: Path, system: HmmSystem) -> None:
    info = json.loads((exp / PROGRESS).read_text())
    done = {"pdfs": system.gmms.num_pdfs, "gaussians": system.gmms.num_gaussians(),
            "loglik_per_frame": info["loglik_per_frame"]}
    if "seconds" in info:  # not in the progress.json of a run begun before the time was summed: n/a
        done["seconds"] = round(info["seconds"], 1)
    write_done(exp / DONE, done)


def stage_parser(prog: str, description: str, positionals: list[tuple[str, str]]) -> argparse.ArgumentParser:
    """The options train-mono and train-tri share, after their ``positionals`` (name, help)."""
    p = argparse.ArgumentParser(prog=prog, description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, text in positionals:
        p.add_argument(name, type=Path, help=text)
    p.add_argument("--config", type=Path, help="YAML config (conf/hmm/mono.yaml, conf/hmm/tri.yaml)")
    p.add_argument("--nj", type=int, default=4, help="parallel jobs (the data is split by speaker)")
    p.add_argument("--cmd", default="local", help="how the jobs run: 'local' or 'slurm [--mem 4G ...]'")
    p.add_argument("--device", default="cpu",
                   help="where the jobs compute GMM likelihoods and statistics: cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument("--force", action="store_true", help="retrain from scratch even if EXP_DIR is trained")
    p.add_argument("overrides", nargs="*", help="config overrides such as train.total_gaussians=2000")
    return p


def prepare(data_dir: Path, lang_dir: Path, exp: Path, args, prog: str,
            validate: Callable[[HmmConfig], None] | None = None) -> tuple[HmmConfig, dict, Jobs] | None:
    """Checks everything (``validate`` too), then (config, lexicon, jobs); None when EXP_DIR is
    trained already."""
    from speech.text.tokenizer import LEXICON, TOKENS, read_lexicon
    from speech.text.tokens import TokenTable

    cfg = load_config(HmmConfig, args.config, args.overrides)
    cfg.train.validate()
    cfg.pipeline.validate()
    if validate is not None:
        validate(cfg)
    check_nj(args.nj)
    parse_cmd(args.cmd)
    device = str(resolve_device(args.device))  # checked here, once, not in every job
    cfg.features = feature_config(data_dir)
    if not (lang_dir / TOKENS).is_file() or not (lang_dir / LEXICON).is_file():
        raise SpeechError(f"{lang_dir}: no {TOKENS} and {LEXICON}; make a phone lang dir with "
                          f"speech prepare-lang DATA/text {lang_dir} --unit phone")
    phones = [s for s in TokenTable.from_file(lang_dir / TOKENS).symbols if not s.startswith("<")]
    lexicon = read_lexicon(lang_dir / LEXICON, phones)
    for utt, words in read_transcripts(data_dir).items():  # the jobs would fail on these, less clearly
        missing = [w for w in words if w not in lexicon]
        if missing:
            raise SpeechError(f"{data_dir}/text: '{utt}': the word '{missing[0]}' has no pronunciation in "
                              f"{lang_dir / LEXICON}; add it, or make the lang dir from this text "
                              "(speech prepare-lang TEXT LANG_DIR --unit phone)")
    topology = HmmTopology.standard(phones)
    cfg.phones, cfg.states = list(topology.phones), list(topology.states)
    if finished(exp, args.force, WEIGHTS, prog):  # train-asr's rule: --force removes EXP_DIR
        return None
    speakers = len(set(DataDir.read(data_dir).utt2spk.values()))
    nj = min(args.nj, speakers)
    if nj < args.nj:
        print(f"{prog}: {data_dir} has {speakers} speakers; using --nj {nj} (jobs split by speaker)")
    return cfg, lexicon, Jobs(split_data_dir(data_dir, nj, by_speaker=True), args.cmd, device)


def stage_main(prog: str, description: str, positionals: list[tuple[str, str]], argv: list[str],
               initialize: Callable[[argparse.Namespace, HmmConfig, dict, Jobs], None], flat_start: bool,
               validate: Callable[[HmmConfig], None] | None = None) -> int:
    """train-mono's and train-tri's main: options, checks, ``initialize`` (which writes EXP_DIR's
    first model) unless a run is being resumed, the EM loop, the done marker."""
    args = stage_parser(prog, description, positionals).parse_intermixed_args(argv)
    ready = prepare(args.data_dir, args.lang_dir, args.exp_dir, args, prog, validate)
    if ready is None:
        return 0
    cfg, lexicon, jobs = ready
    exp = args.exp_dir
    setup_logging(exp / "log" / "train.log")
    start = time.time()
    if not (exp / PROGRESS).is_file():
        initialize(args, cfg, lexicon, jobs)
    system = run_em(exp, jobs, cfg.train, flat_start, start)
    finish(exp, system)
    print(f"{prog}: {exp}: {system.gmms.num_pdfs} pdfs, {system.gmms.num_gaussians()} Gaussians in "
          f"{time.time() - start:.0f} s")
    return 0
