"""The phonetic decision tree of a triphone system (Kaldi's acc-tree-stats, questions, build-tree).

Phones are integer ids 1..N; 0 is "no phone", the utterance edge, so that the first and last
phones of an utterance have a context too. A context is ``(left, center, right, state)``: the
triphone window and the 0-based HMM state of the center phone. The tree has one root per
(center, state) pair, so every pdf belongs to exactly one (center, state) (Kaldi's roots, not
shared across states); a question asks whether the left or the right phone is in a set.

Text format (``to_text``/``from_text``), one item per line, ``#`` starts a comment::

    root CENTER STATE NODE          the tree of (CENTER phone, HMM STATE) starts at node NODE
    NODE leaf PDF                   a leaf: contexts reaching it use pdf PDF
    NODE left|right P,Q,... YES NO  is the left (right) phone one of P, Q, ...? go to YES, else NO

Nodes are numbered 0, 1, 2, ... in file order, every node lies in exactly one root's tree, and
the leaves' pdf ids are 0..num_pdfs-1, each once. For example, phone 2's state 1 split on
whether the left phone is 3 or 4::

    root 2 1 0
    0 left 3,4 1 2
    1 leaf 4
    2 leaf 5
"""

from __future__ import annotations

import heapq
import math
from typing import NamedTuple

import torch

from speech.errors import SpeechError
from speech.text.phone_classes import AFFRICATES, APPROXIMANTS, FRICATIVES, NASALS, STOPS, VOWELS

# Floor on a node's per-dimension variance (Kaldi's acc-tree-stats --var-floor default): a
# node whose frames are nearly identical in a dimension would otherwise gain without bound.
VAR_FLOOR = 0.01
EDGE = "<edge>"  # the name of phone id 0 in questions
_LOG_2PI = math.log(2 * math.pi)


class TreeStats:
    """Single-Gaussian statistics per seen context: keys [K, 4] int64 (left, center, right, state),
    sorted and unique, and count [K] float64, sum [K, D], sumsq [K, D] float64."""

    def __init__(self, keys: torch.Tensor, count: torch.Tensor, sum: torch.Tensor, sumsq: torch.Tensor):
        self.keys, self.count, self.sum, self.sumsq = keys, count, sum, sumsq

    @property
    def dim(self) -> int:
        return self.sum.shape[1]

    @classmethod
    def _grouped(cls, keys: torch.Tensor, count: torch.Tensor, sum: torch.Tensor,
                 sumsq: torch.Tensor) -> TreeStats:
        """Rows with the same key added up; keys come out sorted."""
        unique, inverse = torch.unique(keys, dim=0, return_inverse=True)
        k, d = unique.shape[0], sum.shape[1]
        return cls(unique,
                   torch.zeros(k, dtype=torch.float64).index_add_(0, inverse, count),
                   torch.zeros(k, d, dtype=torch.float64).index_add_(0, inverse, sum),
                   torch.zeros(k, d, dtype=torch.float64).index_add_(0, inverse, sumsq))

    @classmethod
    def accumulate(cls, contexts: torch.Tensor, feats: torch.Tensor) -> TreeStats:
        """contexts [T, 4] int64 (one per frame, from an alignment), feats [T, D] -> stats."""
        if contexts.ndim != 2 or contexts.shape[1] != 4 or feats.ndim != 2 or feats.shape[0] != contexts.shape[0]:
            raise ValueError(f"expected contexts [T, 4] and feats [T, D], got {tuple(contexts.shape)} "
                             f"and {tuple(feats.shape)}")
        x = feats.to(torch.float64)
        return cls._grouped(contexts.to(torch.int64), torch.ones(x.shape[0], dtype=torch.float64), x, x * x)

    def __add__(self, other: TreeStats) -> TreeStats:
        if other.dim != self.dim:
            raise ValueError(f"cannot add tree stats of dimension {self.dim} and {other.dim}")
        return TreeStats._grouped(torch.cat([self.keys, other.keys]), torch.cat([self.count, other.count]),
                                  torch.cat([self.sum, other.sum]), torch.cat([self.sumsq, other.sumsq]))

    def tensors(self) -> dict[str, torch.Tensor]:
        """The tensors to save (e.g. with safetensors); ``from_tensors`` reads them back."""
        return {"keys": self.keys, "count": self.count, "sum": self.sum, "sumsq": self.sumsq}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor], source: str = "tree stats") -> TreeStats:
        names = ("keys", "count", "sum", "sumsq")
        missing = [n for n in names if n not in t]
        if missing:
            raise SpeechError(f"{source}: no {', '.join(missing)} tensor; the file is not tree stats "
                              "(make it with acc-tree-stats)")
        keys, count, s, ss = (t[n] for n in names)
        k = keys.shape[0]
        if (keys.ndim != 2 or keys.shape[1] != 4 or count.shape != (k,) or s.ndim != 2 or s.shape[0] != k
                or ss.shape != s.shape):
            raise SpeechError(f"{source}: tensor shapes keys {tuple(keys.shape)}, count {tuple(count.shape)}, "
                              f"sum {tuple(s.shape)}, sumsq {tuple(ss.shape)} do not fit together; the file is "
                              "damaged (accumulate it again)")
        return cls(keys.to(torch.int64), count.to(torch.float64), s.to(torch.float64), ss.to(torch.float64))


def gauss_loglik(count: torch.Tensor, sum: torch.Tensor, sumsq: torch.Tensor) -> torch.Tensor:
    """ML log-likelihood of frames under one diagonal Gaussian fitted to them:
    count [...], sum/sumsq [..., D] -> [...]; 0 where count is 0."""
    n = count.clamp(min=1e-300).unsqueeze(-1)
    var = (sumsq / n - (sum / n) ** 2).clamp(min=VAR_FLOOR)
    ll = -0.5 * count * (sum.shape[-1] * (1 + _LOG_2PI) + var.log().sum(-1))
    return torch.where(count > 0, ll, torch.zeros_like(ll))


# Hand-written rather than derived from data (Kaldi's cluster-phones, an option for later):
# CMUdict has just 39 phones whose phonetics are well known, so the classes a linguist would ask
# about are a short list, and they stay meaningful for phones seldom seen in a small corpus.
# The manner classes (vowels, stops, ...) are speech.text.phone_classes'.
_CLASSES = [
    VOWELS,
    "AA AE AH AO EH ER IH IY UH UW",  # monophthongs
    "AW AY EY OW OY",  # diphthongs
    "IY IH EH AE EY",  # front vowels
    "AH ER",  # central vowels
    "AA AO UH UW OW",  # back vowels
    "IY IH UH UW",  # high vowels
    "EH AH ER EY OW",  # mid vowels
    "AE AA AO",  # low vowels
    "AO UH UW OW OY",  # rounded vowels
    "ER R",  # r-coloured
    "B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH",  # consonants
    STOPS,
    "B D G",  # voiced stops
    "P T K",  # unvoiced stops
    FRICATIVES,
    "V DH Z ZH",  # voiced fricatives
    "F TH S SH HH",  # unvoiced fricatives
    "S Z SH ZH CH JH",  # sibilants
    AFFRICATES,
    "P B T D K G F V TH DH S Z SH ZH HH CH JH",  # obstruents
    "M N NG L R W Y",  # sonorant consonants
    NASALS,
    "L R",  # liquids
    "W Y",  # glides
    APPROXIMANTS,
    "B D G V DH Z ZH JH M N NG L R W Y",  # voiced consonants
    "P T K F TH S SH HH CH",  # unvoiced consonants
    "P B M F V W",  # labials
    "P B M",  # bilabials
    "F V",  # labiodentals
    "TH DH",  # dentals
    "T D N S Z L",  # alveolars
    "SH ZH CH JH",  # postalveolars
    "T D N S Z L TH DH SH ZH CH JH R",  # coronals
    "K G NG",  # velars
    f"SIL SPN {EDGE}",  # silence-like contexts: silence, spoken noise, the utterance edge
]


def phone_questions(phones: list[str]) -> list[frozenset[str]]:
    """Phonetic classes over ``phones`` (the system's phone names, index i+1 = id) and the edge:
    the classes above restricted to the phones present, then every phone alone; empty and
    duplicate sets dropped. A class member matches a phone with a stress digit too (AA: AA0 AA1 AA2)."""
    present = [*phones, EDGE]
    out: list[frozenset[str]] = []
    for members in [*_CLASSES, *present]:
        names = set(members.split())
        q = frozenset(p for p in present if p in names or p.rstrip("012") in names)
        if q and q not in out:
            out.append(q)
    return out


def question_ids(questions: list[frozenset[str]], phones: list[str]) -> list[frozenset[int]]:
    """Questions by phone name -> by id (``phones[i]`` is id i+1, ``<edge>`` is 0)."""
    ids = {EDGE: 0, **{p: i + 1 for i, p in enumerate(phones)}}
    return [frozenset(ids[p] for p in q) for q in questions]


class Leaf(NamedTuple):
    pdf: int


class Question(NamedTuple):
    """Is the phone at ``position`` (0: left, 2: right) in ``phones``? Then node ``yes``, else ``no``."""

    position: int
    phones: frozenset[int]
    yes: int
    no: int


_POSITION_NAME = {0: "left", 2: "right"}


def _no_root(center: int, state: int) -> SpeechError:
    return SpeechError(f"tree: no root for center phone {center} state {state}; the tree and the alignment "
                       "or topology come from different systems")


class DecisionTree:
    """``roots`` (center, state) -> node index; ``nodes`` Leaf or Question, indexed by node id,
    whose leaves' pdfs are 0..num_pdfs-1, each once."""

    def __init__(self, roots: dict[tuple[int, int], int], nodes: list[Leaf | Question]):
        self.roots = dict(sorted(roots.items()))
        self.nodes = list(nodes)
        pdf_ids = sorted(n.pdf for n in nodes if isinstance(n, Leaf))
        if pdf_ids != list(range(len(pdf_ids))):
            raise ValueError("the leaves' pdf ids are not 0..num_pdfs-1, each once")
        self._num_pdfs = len(pdf_ids)
        # Per-node arrays so that ``pdfs`` moves all contexts one level down at a time; a
        # leaf points to itself, so contexts already at a leaf stay put.
        m = len(nodes)
        width = 1 + max((p for n in nodes if isinstance(n, Question) for p in n.phones), default=0)
        self._leaf_pdf = torch.full((m,), -1, dtype=torch.int64)
        self._position = torch.zeros(m, dtype=torch.int64)
        self._yes = torch.arange(m)
        self._no = torch.arange(m)
        self._member = torch.zeros(m, width, dtype=torch.bool)
        for i, n in enumerate(nodes):
            if isinstance(n, Leaf):
                self._leaf_pdf[i] = n.pdf
            else:
                self._position[i], self._yes[i], self._no[i] = n.position, n.yes, n.no
                self._member[i, list(n.phones)] = True
        centers = 1 + max((c for c, _ in self.roots), default=0)
        states = 1 + max((s for _, s in self.roots), default=0)
        self._root_table = torch.full((centers, states), -1, dtype=torch.int64)
        for (c, s), node in self.roots.items():
            self._root_table[c, s] = node

    @classmethod
    def monophone(cls, num_states: dict[int, int]) -> DecisionTree:
        """One leaf per (phone, state), pdfs numbered in (phone, state) order: the monophone system."""
        keys = sorted((p, s) for p, n in num_states.items() for s in range(n))
        return cls({k: i for i, k in enumerate(keys)}, [Leaf(i) for i in range(len(keys))])

    @classmethod
    def build(cls, stats: TreeStats, num_states: dict[int, int], questions: list[frozenset[int]],
              num_leaves: int, min_count: float = 100.0, min_gain: float = 0.0,
              unsplit: frozenset[int] = frozenset()) -> DecisionTree:
        """Grow the tree greedily: the split with the largest likelihood gain anywhere next (a
        priority queue over all roots), until ``num_leaves`` leaves or no split gains more than
        ``min_gain`` with both sides holding at least ``min_count`` frames. Every (phone, state)
        of ``num_states`` gets a root, a single leaf when it has no stats; with ``num_leaves`` at
        most the number of roots this is ``monophone(num_states)``. The roots of the ``unsplit``
        center phones stay single leaves (Kaldi's ``not-split`` roots, for silence)."""
        root_keys = sorted((p, s) for p, n in num_states.items() for s in range(n))
        root_index = {k: i for i, k in enumerate(root_keys)}
        centers_states = {tuple(k) for k in stats.keys[:, 1:4:2].tolist()}
        unknown = sorted(centers_states - set(root_index))
        if unknown:
            raise SpeechError(f"tree stats: contexts of (center phone, state) {unknown[0]} (and {len(unknown) - 1} "
                              "more) that the topology does not have; accumulate the stats with this lang's topology")
        if any(p < 0 for q in questions for p in q):
            raise ValueError("question phone ids must be >= 0")
        width = 1 + max([0, *(p for q in questions for p in q), *stats.keys[:, 0:3:2].flatten().tolist()])
        member = torch.zeros(len(questions), width, dtype=torch.float64)
        for i, q in enumerate(questions):
            member[i, list(q)] = 1.0
        keys, count, sums, sumsqs = stats.keys, stats.count, stats.sum, stats.sumsq

        def best_split(rows: torch.Tensor) -> tuple[float, int, int] | None:
            """(gain, position, question index) of the best allowed split of the contexts ``rows``."""
            n, s, ss = count[rows].sum(), sums[rows].sum(0), sumsqs[rows].sum(0)
            if n < 2 * min_count or rows.numel() < 2:
                return None
            parent = gauss_loglik(n, s, ss)
            best = None
            for position in (0, 2):
                # Stats per phone at this position first, so each question is one matrix product.
                phone = keys[rows, position]
                pn = torch.zeros(width, dtype=torch.float64).index_add_(0, phone, count[rows])
                pk = torch.zeros(width, dtype=torch.float64).index_add_(0, phone, torch.ones_like(count[rows]))
                ps = torch.zeros(width, stats.dim, dtype=torch.float64).index_add_(0, phone, sums[rows])
                pss = torch.zeros(width, stats.dim, dtype=torch.float64).index_add_(0, phone, sumsqs[rows])
                yn, ys, yss = member @ pn, member @ ps, member @ pss
                gain = gauss_loglik(yn, ys, yss) + gauss_loglik(n - yn, s - ys, ss - yss) - parent
                # Row counts (exact integers) decide emptiness: n - yn may be a rounding residue.
                yk = member @ pk
                ok = (yn >= min_count) & (n - yn >= min_count) & (yk > 0) & (yk < rows.numel())
                gain = torch.where(ok, gain, torch.full_like(gain, -math.inf))
                if gain.numel():
                    i = int(gain.argmax())
                    if gain[i] > min_gain and (best is None or gain[i] > best[0]):
                        best = (float(gain[i]), position, i)
            return best

        # Grown nodes: rows of stats per node, and the split made at it (None: a leaf).
        node_rows: list[torch.Tensor] = []
        splits: list[tuple[int, int, int, int] | None] = []
        queue: list[tuple[float, int, int, int]] = []  # (-gain, node, position, question)

        def add_node(rows: torch.Tensor, splittable: bool = True) -> int:
            node = len(node_rows)
            node_rows.append(rows)
            splits.append(None)
            found = best_split(rows) if splittable else None
            if found is not None:
                heapq.heappush(queue, (-found[0], node, found[1], found[2]))
            return node

        root_of = torch.tensor([root_index[(c, s)] for c, s in keys[:, 1:4:2].tolist()], dtype=torch.int64)
        order = torch.argsort(root_of, stable=True)
        bounds = torch.bincount(root_of, minlength=len(root_keys)).cumsum(0).tolist()
        for r, (center, _) in enumerate(root_keys):
            add_node(order[(bounds[r - 1] if r else 0):bounds[r]], center not in unsplit)
        leaves = len(root_keys)
        while leaves < num_leaves and queue:
            _, node, position, qi = heapq.heappop(queue)
            rows = node_rows[node]
            answer = member[qi, keys[rows, position]].bool()
            yes, no = add_node(rows[answer]), add_node(rows[~answer])
            splits[node] = (position, qi, yes, no)
            leaves += 1

        # Renumber: roots in (phone, state) order, each tree's nodes and leaves in preorder (yes first).
        nodes: list[Leaf | Question] = []
        roots: dict[tuple[int, int], int] = {}
        num_pdfs = 0

        def emit(node: int) -> int:
            nonlocal num_pdfs
            index = len(nodes)
            split = splits[node]
            if split is None:
                nodes.append(Leaf(num_pdfs))
                num_pdfs += 1
                return index
            position, qi, yes, no = split
            nodes.append(Leaf(-1))  # placeholder until the children have their indices
            nodes[index] = Question(position, frozenset(questions[qi]), emit(yes), emit(no))
            return index

        for r, key in enumerate(root_keys):
            roots[key] = emit(r)
        return cls(roots, nodes)

    @property
    def num_pdfs(self) -> int:
        return self._num_pdfs

    def pdf(self, left: int, center: int, right: int, state: int) -> int:
        """The pdf id of one context."""
        node = self.roots.get((center, state))
        if node is None:
            raise _no_root(center, state)
        while isinstance(n := self.nodes[node], Question):
            node = n.yes if (left, center, right)[n.position] in n.phones else n.no
        return n.pdf

    def pdfs(self, contexts: torch.Tensor) -> torch.Tensor:
        """contexts [N, 4] int64 (left, center, right, state) -> pdf ids [N] int64."""
        contexts = contexts.to(torch.int64).cpu()
        if contexts.numel() and int(contexts.min()) < 0:
            raise ValueError("phone ids and states must be >= 0")
        center, state = contexts[:, 1], contexts[:, 3]
        inside = (center < self._root_table.shape[0]) & (state < self._root_table.shape[1])
        cur = torch.full((contexts.shape[0],), -1, dtype=torch.int64)
        cur[inside] = self._root_table[center[inside], state[inside]]
        if (cur < 0).any():
            bad = int((cur < 0).nonzero()[0])
            raise _no_root(int(center[bad]), int(state[bad]))
        width = self._member.shape[1]
        while True:
            active = (self._leaf_pdf[cur] < 0).nonzero().squeeze(1)
            if active.numel() == 0:
                return self._leaf_pdf[cur]
            node = cur[active]
            phone = contexts[active, self._position[node]]
            known = phone < width  # a phone above every question's is in no set
            answer = torch.zeros(active.numel(), dtype=torch.bool)
            answer[known] = self._member[node[known], phone[known]]
            cur[active] = torch.where(answer, self._yes[node], self._no[node])

    def owner(self) -> list[tuple[int, int]]:
        """pdf id -> its (center phone, state)."""
        out = [(0, 0)] * self.num_pdfs
        for key, root in self.roots.items():
            stack = [root]
            while stack:
                n = self.nodes[stack.pop()]
                if isinstance(n, Leaf):
                    out[n.pdf] = key
                else:
                    stack += [n.yes, n.no]
        return out

    def describe(self, stats: TreeStats | None = None) -> str:
        """One log line: "N leaves over R roots", and with ``stats`` the likelihood gain per frame
        of the leaves' Gaussians over the roots'."""
        text = f"{self.num_pdfs} leaves over {len(self.roots)} roots"
        if stats is None or stats.count.numel() == 0:
            return text

        def loglik(groups: torch.Tensor, size: int) -> float:
            n = torch.zeros(size, dtype=torch.float64).index_add_(0, groups, stats.count)
            s = torch.zeros(size, stats.dim, dtype=torch.float64).index_add_(0, groups, stats.sum)
            ss = torch.zeros(size, stats.dim, dtype=torch.float64).index_add_(0, groups, stats.sumsq)
            return float(gauss_loglik(n, s, ss).sum())

        roots = self._root_table[stats.keys[:, 1], stats.keys[:, 3]]
        gain = loglik(self.pdfs(stats.keys), self.num_pdfs) - loglik(roots, len(self.nodes))
        frames = float(stats.count.sum())
        return f"{text}, likelihood gain {gain / frames:.3f} per frame over {frames:.0f} frames"

    def to_text(self) -> str:
        lines = [f"# decision tree: {self.num_pdfs} pdfs over {len(self.roots)} roots"]
        lines += [f"root {c} {s} {node}" for (c, s), node in self.roots.items()]
        for i, n in enumerate(self.nodes):
            if isinstance(n, Leaf):
                lines.append(f"{i} leaf {n.pdf}")
            else:
                phones = ",".join(str(p) for p in sorted(n.phones))
                lines.append(f"{i} {_POSITION_NAME[n.position]} {phones} {n.yes} {n.no}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str, source: str = "tree") -> DecisionTree:
        roots: dict[tuple[int, int], int] = {}
        nodes: list[Leaf | Question] = []
        node_line: list[int] = []
        refs: list[tuple[int, int]] = []  # (referenced node, line referring to it)
        pdf_line: dict[int, int] = {}
        last = 0
        for lineno, raw in enumerate(text.splitlines(), 1):
            words = raw.split("#", 1)[0].split()
            if not words:
                continue
            last = lineno

            def fail(what: str) -> SpeechError:
                return SpeechError(f"{source}:{lineno}: {what} in {raw.strip()!r}; a line is 'root CENTER STATE NODE', "
                                   "'NODE leaf PDF' or 'NODE left|right P,Q,... YES NO' (see speech/hmm/tree.py)")

            def number(word: str, what: str) -> int:
                if not word.isdigit():
                    raise fail(f"{what} {word!r} is not a non-negative integer")
                return int(word)

            if words[0] == "root":
                if len(words) != 4:
                    raise fail(f"{len(words) - 1} fields after 'root', expected 3")
                center, state = number(words[1], "center phone"), number(words[2], "state")
                if center == 0:
                    raise fail("center phone 0 (the edge)")
                if (center, state) in roots:
                    raise fail(f"a second root for center phone {center} state {state}")
                roots[(center, state)] = number(words[3], "node")
                refs.append((roots[(center, state)], lineno))
                continue
            node = number(words[0], "node")
            if node != len(nodes):
                raise fail(f"node {node} where node {len(nodes)} comes next (nodes are numbered 0, 1, ... in order)")
            if len(words) == 3 and words[1] == "leaf":
                pdf = number(words[2], "pdf")
                if pdf in pdf_line:
                    raise fail(f"pdf {pdf} is also the leaf of line {pdf_line[pdf]}")
                pdf_line[pdf] = lineno
                nodes.append(Leaf(pdf))
            elif len(words) == 5 and words[1] in ("left", "right"):
                phones = frozenset(number(p, "phone") for p in words[2].split(","))
                yes, no = number(words[3], "yes node"), number(words[4], "no node")
                nodes.append(Question(0 if words[1] == "left" else 2, phones, yes, no))
                refs += [(yes, lineno), (no, lineno)]
            else:
                raise fail("not a leaf or a question")
            node_line.append(lineno)
        if not roots:
            raise SpeechError(f"{source}: no 'root' line; the file is empty or not a decision tree")
        referenced: set[int] = set()
        for node, lineno in refs:
            if node >= len(nodes):
                raise SpeechError(f"{source}:{lineno}: node {node} does not exist (there are {len(nodes)}); "
                                  "fix the node number")
            if node in referenced:
                raise SpeechError(f"{source}:{lineno}: node {node} is already in a tree; each node has one parent "
                                  "or is one root")
            referenced.add(node)
        reached: set[int] = set()
        stack = list(roots.values())
        while stack:
            reached.add(node := stack.pop())
            if isinstance(n := nodes[node], Question):
                stack += [n.yes, n.no]
        for node, lineno in enumerate(node_line):
            if node not in reached:
                raise SpeechError(f"{source}:{lineno}: node {node} is not reachable from any root; "
                                  "remove it or link it into a tree")
        missing = next((p for p in range(len(pdf_line)) if p not in pdf_line), None)
        if missing is not None:
            raise SpeechError(f"{source}:{last}: no leaf has pdf {missing}; pdf ids must be 0..{len(pdf_line) - 1}, "
                              "each once")
        return cls(roots, nodes)
