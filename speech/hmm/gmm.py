"""Diagonal-covariance Gaussian mixtures of a GMM-HMM system, for all pdfs (tied states) at once:
initialisation (Kaldi's gmm-init-mono), Viterbi accumulation (gmm-acc-stats-ali), ML re-estimation
(gmm-est) and mixing up (gmm-mixup).

P pdfs, each a mixture of diagonal Gaussians over D-dim features, are held padded to M components:
a pdf with fewer components has log-weight -inf, mean 0 and variance 1 in its remaining slots, so
every computation is one batched tensor operation over frames, pdfs and components, and padding
gets zero posterior. Parameters are float32 (Kaldi's BaseFloat); statistics are float64, since
they sum over millions of frames. Everything runs on the device of the tensors it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# Elements of the largest per-chunk intermediate ([frames, M, D] or [frames, P*M]): bounds memory
# however long the input (4M elements: a few tens of MB), while chunks stay large enough to be fast.
_CHUNK_ELEMENTS = 1 << 22
# Absolute lower bound on the variance floor, so that a feature dimension that is constant over the
# data (global variance 0) still gets a finite precision.
_MIN_VARIANCE_FLOOR = 1.0e-10


def _pmd_tensors(t: dict[str, torch.Tensor], names: tuple[str, str, str], dtype: torch.dtype,
                 what: str) -> tuple[torch.Tensor, ...]:
    """The tensors ``names`` of ``t``, shaped [P, M], [P, M, D], [P, M, D], in ``dtype``;
    ValueError when one is missing or the shapes disagree."""
    missing = sorted(set(names) - set(t))
    if missing:
        raise ValueError(f"{what} lack tensor(s) {', '.join(missing)}")
    pm, first, second = (t[k].to(dtype) for k in names)
    if first.ndim != 3 or second.shape != first.shape or pm.shape != first.shape[:2]:
        shapes = ", ".join(f"{k} {tuple(t[k].shape)}" for k in names)
        raise ValueError(f"{what} of shapes {shapes} are not [P, M], [P, M, D], [P, M, D]")
    return pm, first, second


@dataclass
class GmmStats:
    """Sufficient statistics of P mixtures padded to M components, float64: occupancy [P, M],
    first [P, M, D] (sum of posterior * x), second [P, M, D] (sum of posterior * x^2).

    Statistics of disjoint data add up element-wise (job accumulators, as Kaldi's gmm-sum-accs).
    """

    occupancy: torch.Tensor
    first: torch.Tensor
    second: torch.Tensor

    @classmethod
    def zeros(cls, num_pdfs: int, num_components: int, dim: int, device: torch.device | str | None = None) -> GmmStats:
        """Empty statistics of shape [P, M] / [P, M, D] (give the model's device)."""
        kw = dict(dtype=torch.float64, device=device)
        return cls(torch.zeros(num_pdfs, num_components, **kw), torch.zeros(num_pdfs, num_components, dim, **kw),
                   torch.zeros(num_pdfs, num_components, dim, **kw))

    def __add__(self, other: GmmStats) -> GmmStats:
        if other.first.shape != self.first.shape:
            raise ValueError(f"cannot add GMM stats of shape {tuple(other.first.shape)} to {tuple(self.first.shape)}")
        return GmmStats(self.occupancy + other.occupancy, self.first + other.first, self.second + other.second)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The statistics by name, contiguous, for safetensors.torch.save_file."""
        return {"occupancy": self.occupancy.contiguous(), "first": self.first.contiguous(),
                "second": self.second.contiguous()}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor]) -> GmmStats:
        """Inverse of :meth:`tensors`; raises ValueError when a tensor is missing or the shapes disagree."""
        return cls(*_pmd_tensors(t, ("occupancy", "first", "second"), torch.float64, "GMM stats"))


@dataclass
class DiagGmms:
    """P mixtures of diagonal Gaussians padded to M components, float32: log_weights [P, M]
    (-inf in padding), means [P, M, D], variances [P, M, D] (1 in padding).

    Methods return new objects and never modify the tensors in place.
    """

    log_weights: torch.Tensor
    means: torch.Tensor
    variances: torch.Tensor

    @classmethod
    def single(cls, num_pdfs: int, mean: torch.Tensor, variance: torch.Tensor) -> DiagGmms:
        """Every pdf one Gaussian at mean [D] / variance [D] (the global ones: Kaldi's gmm-init-mono)."""
        mean = mean.to(torch.float32)
        shape = (num_pdfs, 1, mean.shape[-1])
        return cls(torch.zeros(num_pdfs, 1, device=mean.device), mean.expand(shape).clone(),
                   variance.to(mean).expand(shape).clone())

    @property
    def num_pdfs(self) -> int:
        return self.means.shape[0]

    @property
    def num_components(self) -> int:
        """M, the padded number of components per pdf."""
        return self.means.shape[1]

    @property
    def dim(self) -> int:
        return self.means.shape[2]

    def component_counts(self) -> torch.Tensor:
        """Non-padding components of each pdf, int64 [P]."""
        return (self.log_weights > -math.inf).sum(-1)

    def num_gaussians(self) -> int:
        """Non-padding components over all pdfs."""
        return int(self.component_counts().sum())

    def to(self, device: torch.device | str) -> DiagGmms:
        return DiagGmms(self.log_weights.to(device), self.means.to(device), self.variances.to(device))

    def _terms(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(const [P, M], linear [P, M, D], quadratic [P, M, D]) with
        log(w_m N(x; mu_m, var_m)) = const + x . linear + x^2 . quadratic
        (Kaldi's gconsts, means_invvars and -inv_vars / 2): the Gaussians become matrix products."""
        inv_var = 1.0 / self.variances
        const = self.log_weights - 0.5 * (self.dim * math.log(2 * math.pi) + self.variances.log().sum(-1)
                                          + (self.means.square() * inv_var).sum(-1))
        return const, self.means * inv_var, -0.5 * inv_var

    def _features(self, feats: torch.Tensor) -> torch.Tensor:
        if feats.ndim != 2 or feats.shape[1] != self.dim:
            raise ValueError(f"expected features [T, {self.dim}], got {tuple(feats.shape)}")
        return feats.to(self.means.device, torch.float32)

    def _check_stats(self, stats: GmmStats) -> None:
        if stats.first.shape != self.means.shape:
            raise ValueError(f"GMM stats of shape {tuple(stats.first.shape)} do not fit the GMMs' "
                             f"{tuple(self.means.shape)}")

    def log_likelihoods(self, feats: torch.Tensor) -> torch.Tensor:
        """feats [T, D] -> log p(x_t | pdf) [T, P], float32."""
        feats = self._features(feats)
        const, linear, quadratic = (a.flatten(0, 1) for a in self._terms())
        chunk = max(1, _CHUNK_ELEMENTS // const.shape[0])
        out = [
            (torch.addmm(const, x, linear.T) + (x * x) @ quadratic.T).unflatten(1, self.log_weights.shape).logsumexp(-1)
            for x in feats.split(chunk)
        ]
        return torch.cat(out) if out else feats.new_zeros(0, self.num_pdfs)

    def accumulate(self, feats: torch.Tensor, pdfs: torch.Tensor, stats: GmmStats) -> float:
        """Viterbi accumulation (gmm-acc-stats-ali): frame t of feats [T, D] belongs to pdf pdfs[t]
        (int64 [T]) and is shared among that pdf's components by their posteriors; adds to ``stats``
        (on the model's device) in place. Returns sum_t log p(x_t | pdfs[t])."""
        feats = self._features(feats)
        pdfs = pdfs.to(self.means.device, torch.int64)
        if pdfs.shape != feats.shape[:1]:
            raise ValueError(f"{feats.shape[0]} frames but {tuple(pdfs.shape)} pdf ids")
        if pdfs.numel() and not 0 <= int(pdfs.min()) <= int(pdfs.max()) < self.num_pdfs:
            raise ValueError(f"pdf ids range over [{int(pdfs.min())}, {int(pdfs.max())}]; "
                             f"the GMMs have {self.num_pdfs} pdfs")
        self._check_stats(stats)
        const, linear, quadratic = self._terms()
        chunk = max(1, _CHUNK_ELEMENTS // (self.num_components * self.dim))
        total = torch.zeros((), dtype=torch.float64, device=feats.device)
        for x, pdf in zip(feats.split(chunk), pdfs.split(chunk)):
            # Gathering each frame's own pdf ([C, M, D]) costs M*D per frame, not P*M*D.
            comp = (const[pdf] + torch.einsum("cd,cmd->cm", x, linear[pdf])
                    + torch.einsum("cd,cmd->cm", x * x, quadratic[pdf]))
            frame = comp.logsumexp(-1)
            post = (comp - frame[:, None]).exp().double()
            x = x.double()
            stats.occupancy.index_add_(0, pdf, post)
            stats.first.index_add_(0, pdf, post[:, :, None] * x[:, None, :])
            stats.second.index_add_(0, pdf, post[:, :, None] * (x * x)[:, None, :])
            total += frame.double().sum()
        return float(total)

    def update(self, stats: GmmStats, min_variance: float = 1e-3, min_count: float = 10.0) -> DiagGmms:
        """ML re-estimation (gmm-est) of weights, means and variances from ``stats``.

        Variances are floored at ``min_variance`` times the global variance of the data in ``stats``
        (per dimension; HTK's HCompV -f). Relative to the global rather than the pdf's variance, the
        floor does not shrink with a pdf's data (a silence pdf on near-constant frames, a pdf with few
        frames); relative rather than absolute, it suits every dimension whatever its scale (c0 vs.
        deltas without variance normalisation).

        A component with occupancy below ``min_count`` (Kaldi's --min-gaussian-occupancy) keeps its
        old weight, mean and variance, and the pdf's other components share the remaining weight by
        their occupancies. Keeping rather than removing it leaves the Gaussian count where mixing up
        put it, and the update stays a constrained maximisation, so the likelihood still does not
        decrease; a pdf with no data thus keeps all its parameters.
        """
        self._check_stats(stats)
        stats = GmmStats(*(a.to(self.means.device) for a in (stats.occupancy, stats.first, stats.second)))
        occ = stats.occupancy
        total = occ.sum()
        if total <= 0:
            return self
        global_mean = stats.first.sum((0, 1)) / total
        global_var = stats.second.sum((0, 1)) / total - global_mean.square()
        floor = (min_variance * global_var).clamp_min(_MIN_VARIANCE_FLOOR)

        keep = (occ < min_count) | (occ <= 0)  # padding has occupancy 0 and is kept as padding
        count = torch.where(keep, 1.0, occ)[:, :, None]
        means = stats.first / count
        variances = torch.maximum(stats.second / count - means.square(), floor)
        kept_weight = torch.where(keep, self.log_weights.double().exp(), 0.0).sum(-1, keepdim=True)
        updated_occ = torch.where(keep, 0.0, occ).sum(-1, keepdim=True)
        # updated_occ is 0 only in pdfs whose components are all kept, where these weights go unused.
        weights = (1.0 - kept_weight).clamp_min(0.0) * occ / updated_occ.clamp_min(torch.finfo(torch.float64).tiny)
        keep3 = keep[:, :, None]
        return DiagGmms(torch.where(keep, self.log_weights, weights.log().float()),
                        torch.where(keep3, self.means, means.float()),
                        torch.where(keep3, self.variances, variances.float()))

    def map_means(self, stats: GmmStats, tau: float) -> DiagGmms:
        """MAP re-estimation of the means only (Gauvain and Lee; Kaldi's gmm-adapt-map with
        --mean-tau): mean' = (tau * mean + sum of gamma x) / (tau + gamma). A Gaussian with
        little data moves little, so a minute of one speaker's speech adapts the system
        without the ML update's overfitting; weights and variances stay."""
        self._check_stats(stats)
        occ = stats.occupancy.to(self.means.device)[:, :, None]
        first = stats.first.to(self.means.device)
        means = (tau * self.means.double() + first) / (tau + occ)
        return DiagGmms(self.log_weights, means.to(self.means.dtype), self.variances)

    def split(self, target_total: int, occupancy: torch.Tensor, power: float = 0.2, perturb: float = 0.01,
              generator: torch.Generator | None = None) -> DiagGmms:
        """Mix up to ``target_total`` Gaussians (Kaldi's gmm-mixup) given each pdf's occupancy [P].

        The Gaussians are allocated greedily, one at a time, to the pdf with the highest
        occupancy**power per Gaussian it already has, so no pdf loses any (a target below the current
        total changes nothing). A pdf grows by repeatedly splitting its heaviest component in two:
        weight halved, means moved by +/- perturb * sqrt(var) * a standard normal direction (drawn
        from ``generator``, on its device), variances copied. The result is padded to the new
        largest count.
        """
        if occupancy.shape != (self.num_pdfs,):
            raise ValueError(f"expected an occupancy per pdf [{self.num_pdfs}], got {tuple(occupancy.shape)}")
        device = self.means.device
        counts = self.component_counts()
        targets = _split_targets(counts, occupancy.to(device, torch.float64).clamp_min(0.0) ** power, target_total)
        # Components first, padding last, so that the slot a split fills is the pdf's count.
        order = (self.log_weights == -math.inf).to(torch.int8).argsort(dim=-1, stable=True)
        size = int(targets.max())
        pad = size - self.num_components
        order = order[:, :size]
        log_weights = torch.nn.functional.pad(self.log_weights.gather(1, order), (0, pad), value=-math.inf)
        index = order[:, :, None].expand(-1, -1, self.dim)
        means = torch.nn.functional.pad(self.means.gather(1, index), (0, 0, 0, pad))
        variances = torch.nn.functional.pad(self.variances.gather(1, index), (0, 0, 0, pad), value=1.0)

        rows = torch.arange(self.num_pdfs, device=device)
        for _ in range(int((targets - counts).max())):
            # Drawn for every pdf, growing or not, so a pdf's directions depend only on the seed.
            direction = torch.randn(self.num_pdfs, self.dim, generator=generator,
                                    device=generator.device if generator is not None else "cpu").to(device)
            grow = counts < targets
            p, s = rows[grow], counts[grow]
            h = log_weights[p].argmax(-1)
            shift = perturb * variances[p, h].sqrt() * direction[grow]
            log_weights[p, h] -= math.log(2.0)
            log_weights[p, s] = log_weights[p, h]
            means[p, s] = means[p, h] - shift
            means[p, h] += shift
            variances[p, s] = variances[p, h]
            counts = counts + grow
        return DiagGmms(log_weights, means, variances)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The parameters by name, contiguous, for safetensors.torch.save_file."""
        return {"log_weights": self.log_weights.contiguous(), "means": self.means.contiguous(),
                "variances": self.variances.contiguous()}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor]) -> DiagGmms:
        """Inverse of :meth:`tensors`; raises ValueError when a tensor is missing or the shapes disagree."""
        return cls(*_pmd_tensors(t, ("log_weights", "means", "variances"), torch.float32, "GMMs"))


def _split_targets(counts: torch.Tensor, priority: torch.Tensor, target_total: int) -> torch.Tensor:
    """Gaussians per pdf [P] after mixing up from counts [P] to target_total, each added Gaussian
    going to the pdf with the highest priority / current count (Kaldi's GetSplitTargets).

    The j-th Gaussian added to pdf p (j = 0, 1, ...) ranks priority[p] / (counts[p] + j); the greedy
    choice is the extra = target_total - sum(counts) highest ranks overall, found with one topk.
    """
    extra = target_total - int(counts.sum())
    total_priority = float(priority.sum())
    if extra <= 0 or total_priority <= 0:
        return counts
    # A pdf receives fewer than priority[p] / total_priority * target_total - counts[p] + 1 Gaussians,
    # which bounds the ranks worth listing.
    share = priority / total_priority * target_total - counts
    columns = min(extra, max(1, math.ceil(float(share.max())) + 1))
    ranks = priority[:, None] / (counts[:, None] + torch.arange(columns, device=counts.device))
    chosen = ranks.flatten().topk(extra).indices // columns
    return counts + torch.bincount(chosen, minlength=counts.shape[0])
