"""Distributions the drift tests work on: exact samples, quantile sketches, counts.

A numerical side is either an :class:`ExactDist` (sorted raw values, or
distinct values with counts) or a :class:`SketchDist` (knots with exact
counts kept in a reference profile, read as a CDF that is exact at the knots
and linear between them). Both offer the same
operations - CDF, histogram counts, quantiles - so every test runs on either.
A categorical side is a :class:`CatCounts`.

All operations are vectorised numpy; nothing loops over rows.
"""

from __future__ import annotations

import numpy as np

#: Note the engine adds to a column compared against a :class:`SketchDist` reference
#: (a profile's quantile sketch); the HTML view shows it once in the header instead.
SKETCH_NOTE = "reference from a quantile sketch: approximate"

# Ranks of profile sketch knots, as probabilities: 0.5 % steps plus finer tails.
_TAILS = np.array([1e-4, 5e-4, 1e-3, 2e-3])
PROBS = np.unique(np.concatenate([np.linspace(0.0, 1.0, 201), _TAILS, 1.0 - _TAILS]).round(6))


class ExactDist:
    """Exact empirical distribution.

    ``values`` sorted float64; ``counts`` None (each value once, repeats
    allowed) or int64 counts of distinct ``values``.
    """

    exact = True

    def __init__(self, values: np.ndarray, counts: np.ndarray | None = None) -> None:
        self.values = values
        self.counts = counts
        self.n = int(values.size if counts is None else counts.sum())
        self._cum: np.ndarray | None = None
        self._uniq: tuple[np.ndarray, np.ndarray] | None = None

    def _cumcounts(self) -> np.ndarray:
        if self._cum is None:
            self._cum = np.concatenate([[0], np.cumsum(self.counts)])
        return self._cum

    @property
    def min(self) -> float:
        return float(self.values[0])

    @property
    def max(self) -> float:
        return float(self.values[-1])

    def cdf(self, x: np.ndarray, left: bool = False) -> np.ndarray:
        """P(X <= x), or P(X < x) when ``left``."""
        idx = np.searchsorted(self.values, x, side="left" if left else "right")
        if self.counts is None:
            return idx / self.n
        return self._cumcounts()[idx] / self.n

    def unique(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct values and their counts."""
        if self.counts is not None:
            return self.values, self.counts
        if self._uniq is None:
            v = self.values
            flag = np.empty(v.size, dtype=bool)
            flag[:1] = True
            np.not_equal(v[1:], v[:-1], out=flag[1:])
            idx = np.flatnonzero(flag)
            self._uniq = (v[idx], np.diff(np.append(idx, v.size)))
        return self._uniq

    def nunique(self) -> int:
        if self.counts is not None or self._uniq is not None:
            return int(self.unique()[0].size)
        v = self.values
        return int(np.count_nonzero(v[1:] != v[:-1]) + 1) if v.size else 0

    def points(self) -> np.ndarray:
        return self.unique()[0]

    def mean(self) -> float:
        if self.counts is None:
            return float(np.mean(self.values))
        return _dot(self.values, self.counts) / self.n

    def std(self) -> float:
        """Population standard deviation (ddof=0), as ``np.std``."""
        if self.counts is None:
            return float(np.std(self.values))
        m = self.mean()
        return float(np.sqrt(_dot((self.values - m) ** 2, self.counts) / self.n))

    def quantile(self, p: np.ndarray) -> np.ndarray:
        """Quantiles with numpy's default 'linear' rule."""
        p = np.asarray(p, dtype=np.float64)
        pos = p * (self.n - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, self.n - 1)
        frac = pos - lo
        if self.counts is None:
            vlo, vhi = self.values[lo], self.values[hi]
        else:
            cum = self._cumcounts()[1:]
            vlo = self.values[np.searchsorted(cum, lo, side="right")]
            vhi = self.values[np.searchsorted(cum, hi, side="right")]
        return vlo + (vhi - vlo) * frac

    def hist(self, edges: np.ndarray) -> np.ndarray:
        """Counts per bin with ``np.histogram`` semantics (last bin closed)."""
        pos = np.searchsorted(self.values, edges, side="left")
        pos[-1] = np.searchsorted(self.values, edges[-1], side="right")
        if self.counts is None:
            return np.diff(pos).astype(np.float64)
        return np.diff(self._cumcounts()[pos]).astype(np.float64)


class SketchDist:
    """Distribution known through a sketch of knots (reference profiles).

    The knots are data values (the order statistics at the ranks of
    :data:`PROBS`, so always the minimum and the maximum) with their exact
    counts: ``below[i]`` values are smaller than ``knots[i]`` and ``equal[i]``
    are equal to it. The CDF is exact at the knots (point masses included)
    and linear between them.
    """

    exact = False

    def __init__(
        self,
        knots: np.ndarray,
        below: np.ndarray,
        equal: np.ndarray,
        n: int,
        mean: float,
        std: float,
        nunique: int,
    ) -> None:
        knots = np.asarray(knots, dtype=np.float64)
        below = np.asarray(below, dtype=np.float64)
        equal = np.asarray(equal, dtype=np.float64)
        self.n = int(n)
        self.knots = knots
        self.f_left = np.clip(below / self.n, 0.0, 1.0)
        self.f_right = np.clip((below + equal) / self.n, 0.0, 1.0)
        self.f_left[0] = 0.0
        self.f_right[-1] = 1.0
        self.f_right = np.maximum.accumulate(np.maximum(self.f_right, self.f_left))
        self._xp = np.repeat(knots, 2)
        self._fp = np.empty(2 * knots.size)
        self._fp[0::2] = self.f_left
        self._fp[1::2] = self.f_right
        self._fp = np.maximum.accumulate(self._fp)
        self._xp_left = -self._xp[::-1]
        self._fp_left = self._fp[::-1].copy()
        self._mean = float(mean)
        self._std = float(std)
        self._nunique = int(nunique)

    @property
    def min(self) -> float:
        return float(self.knots[0])

    @property
    def max(self) -> float:
        return float(self.knots[-1])

    def cdf(self, x: np.ndarray, left: bool = False) -> np.ndarray:
        """P(X <= x), or P(X < x) when ``left``.

        ``np.interp`` over the knots doubled as (F_left, F_right) pairs: at a
        repeated abscissa it takes the last pair member, which gives the
        right-continuous CDF; mirrored, the left limit.
        """
        x = np.asarray(x, dtype=np.float64)
        if left:
            return np.interp(-x, self._xp_left, self._fp_left)
        return np.interp(x, self._xp, self._fp)

    def points(self) -> np.ndarray:
        return self.knots

    def nunique(self) -> int:
        return self._nunique

    def unique(self):
        return None

    def mean(self) -> float:
        return self._mean

    def std(self) -> float:
        return self._std

    def quantile(self, p: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(p, dtype=np.float64), self._fp, self._xp)

    def hist(self, edges: np.ndarray) -> np.ndarray:
        f = self.cdf(edges, left=True)
        f[-1] = self.cdf(edges[-1:])[0]
        return np.diff(f) * self.n


def build_sketch(values: np.ndarray, digits: int = 10) -> dict:
    """Sketch of sorted finite ``values``: knots at the ranks of :data:`PROBS`
    (written with ``digits`` significant digits), ``equal`` = rows equal to
    each knot, ``between`` = rows strictly between consecutive knots."""
    n = values.size
    ranks = np.unique(np.round(PROBS * (n - 1)).astype(np.int64))
    exact = values[ranks]
    rounded = np.array([float(f"{v:.{digits}g}") for v in exact])
    rounded[0], rounded[-1] = exact[0], exact[-1]
    rounded = np.maximum.accumulate(rounded)
    keep = np.ones(rounded.size, dtype=bool)
    keep[1:] = rounded[1:] != rounded[:-1]
    # counts refer to the exact values: [first exact of a rounded group, last exact of it]
    first = np.flatnonzero(keep)
    last = np.append(first[1:] - 1, rounded.size - 1)
    below = np.searchsorted(values, exact[first], side="left")
    upto = np.searchsorted(values, exact[last], side="right")
    equal = upto - below
    return {
        "knots": rounded[keep].tolist(),
        "equal": equal.tolist(),
        "between": (below[1:] - upto[:-1]).tolist(),
    }


def sketch_below(equal: np.ndarray, between: np.ndarray) -> np.ndarray:
    """Counts below each knot from a stored sketch's ``equal`` and ``between``."""
    steps = equal[:-1] + between
    return np.concatenate([[0], np.cumsum(steps)]).astype(np.float64)


class CatCounts:
    """Counts of a categorical side; ``other`` counts values pooled away
    (categories beyond a profile's top-K)."""

    def __init__(self, labels: list[str], counts: np.ndarray, other: int = 0) -> None:
        self.labels = list(labels)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.other = int(other)
        self.n = int(self.counts.sum()) + self.other

    def as_dict(self) -> dict[str, int]:
        return dict(zip(self.labels, self.counts.tolist()))


def bin_counts(dist, inner_edges: np.ndarray) -> np.ndarray:
    """Counts in ``len(inner_edges) + 1`` bins: (-inf, e0), [e0, e1), ..., [e_last, inf)."""
    f = dist.cdf(inner_edges, left=True)
    return np.diff(np.concatenate([[0.0], f, [1.0]])) * dist.n


def sturges_edges(lo: float, hi: float, n: int) -> np.ndarray:
    """Same edges as ``np.histogram_bin_edges(data, bins="sturges")`` for data
    of size ``n`` spanning ``[lo, hi]``."""
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
        return np.linspace(lo, hi, 2)
    width = (hi - lo) / (np.log2(n) + 1.0)
    n_bins = max(int(np.ceil((hi - lo) / width)), 1)
    return np.linspace(lo, hi, n_bins + 1, endpoint=True)


def cdf_distances(a, b) -> tuple[float, float]:
    """(Kolmogorov-Smirnov D, Wasserstein-1 distance) between two numerical sides.

    Exact for two exact sides (same D as ``scipy.stats.ks_2samp`` and same
    distance as ``scipy.stats.wasserstein_distance``); with a sketch the
    sketch's piecewise-linear CDF is integrated exactly.
    """
    if isinstance(a, ExactDist) and isinstance(b, ExactDist) and a.counts is None and b.counts is None:
        return _raw_distances(a.values, b.values)
    if isinstance(a, SketchDist) and isinstance(b, ExactDist) and b.counts is None:
        grid, fb_right, fb_left = _grid_with_raw_cdf(a.knots, b)
    else:
        grid = merge_unique(a.points(), b.points())
        fb_right, fb_left = b.cdf(grid), b.cdf(grid, left=True)
    if grid.size < 2:
        return 0.0, 0.0
    # on each segment (g_i, g_i+1) both CDFs are linear (an exact side: constant)
    d0 = a.cdf(grid[:-1]) - fb_right[:-1]
    d1 = a.cdf(grid[1:], left=True) - fb_left[1:]
    width = np.diff(grid)
    ks = float(max(np.max(np.abs(d0)), np.max(np.abs(d1))))
    same = d0 * d1 >= 0
    a0, a1 = np.abs(d0), np.abs(d1)
    denom = np.where(same, 1.0, a0 + a1)
    seg = np.where(same, (a0 + a1) / 2.0, (d0 * d0 + d1 * d1) / (2.0 * denom))
    return ks, _dot(seg, width)


def _grid_with_raw_cdf(knots: np.ndarray, b: ExactDist) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct values of raw ``b`` with ``knots`` inserted, and b's CDF (right
    value and left limit) on that grid, without searching the large array."""
    u, cnt = b.unique()
    cum = np.cumsum(cnt)
    pos = np.searchsorted(u, knots, side="left")  # u[pos - 1] < knot <= u[pos]
    before = np.where(pos > 0, cum[np.maximum(pos - 1, 0)], 0)
    at = np.minimum(pos, u.size - 1)
    equal = (pos < u.size) & (u[at] == knots)
    k_right = np.where(equal, cum[at], before) / b.n
    grid = np.insert(u, pos, knots)  # a knot equal to a value sits just before it
    right = np.insert(cum / b.n, pos, k_right)
    left = np.insert((cum - cnt) / b.n, pos, before / b.n)
    return grid, right, left


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """The sum of ``a * b``, without BLAS: ``np.dot`` wakes OpenBLAS's threads, which then spin on
    the other core for a while, the core the drift's other worker needs (200k x 25 on 2 cores:
    0.37 s -> 0.25 s)."""
    return float(np.einsum("i,i->", a, b))


def merge_unique(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sorted distinct values of two sorted arrays of distinct values, in O(n + m log n)."""
    if a.size < b.size:
        a, b = b, a
    merged = np.insert(a, np.searchsorted(a, b), b)
    if merged.size < 2:
        return merged
    keep = np.empty(merged.size, dtype=bool)
    keep[0] = True
    np.not_equal(merged[1:], merged[:-1], out=keep[1:])
    return merged[keep]


def _raw_distances(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """KS D and W1 of two sorted raw samples by one merge (no second sort)."""
    na, nb = a.size, b.size
    n = na + nb
    both = np.concatenate([a, b])
    order = np.argsort(both, kind="stable")  # two sorted runs: timsort merges them in one pass
    merged = both[order]
    # n_a(i) * nb - n_b(i) * na with n_a(i) = i + 1 - n_b(i): exact integers. The running
    # count is summed in int32 where it fits (several times faster than int64 from bool).
    cb = np.cumsum(order[:-1] >= na, dtype=np.int32 if n < 2**31 else np.int64).astype(np.int64)
    cb *= -n
    cb += np.arange(nb, nb * n, nb, dtype=np.int64)
    np.abs(cb, out=cb)
    diff = cb.astype(np.float64)
    gaps = np.diff(merged)
    scale = 1.0 / (float(na) * float(nb))
    w1 = _dot(diff, gaps) * scale
    ks = float(np.max(diff, where=gaps > 0, initial=0.0)) * scale
    return ks, w1
