"""Drift tests and the default choice of test, following Evidently's conventions.

Every test takes a reference side and a current side (numerical:
:class:`~mlops_nb.profiling.dists.ExactDist` / :class:`~mlops_nb.profiling.dists.SketchDist`;
categorical and boolean: :class:`~mlops_nb.profiling.dists.CatCounts`) and
returns a :class:`TestOutcome`.

=============  ========  =========  ======================================  ===========================
name           result    threshold  drift when                              types
=============  ========  =========  ======================================  ===========================
ks             p-value   0.05       p <= threshold                          numerical, datetime
chisquare      p-value   0.05       p <  threshold                          all (numbers as categories)
ztest          p-value   0.05       p <  threshold                          all (first sorted value vs rest)
wasserstein    distance  0.1        W1 / max(std_ref, 0.001) >= threshold   numerical, datetime
jensenshannon  distance  0.1        distance >= threshold                   all
psi            distance  0.1        psi >= threshold                        all
hellinger      distance  0.1        distance >= threshold                   all
=============  ========  =========  ======================================  ===========================

Conventions taken from Evidently (``evidently.legacy.calculations.stattests``):

* chi-square: goodness of fit of the current counts against the reference
  counts scaled to the current size (``f_exp = ref_count * n_cur / n_ref``)
  over the union of categories. When the current data has categories the
  reference never had, that statistic is infinite (Evidently reports it so);
  here the 2 x k contingency (homogeneity) test without continuity
  correction is used instead and the note says so.
* z-test: two-proportion test of "first sorted value" vs the rest, pooled
  variance, two-sided; p = 1 when both sides hold the same single value.
* Jensen-Shannon and PSI: numerical columns with more than 20 distinct
  reference values are binned on Sturges' edges over the pooled data;
  otherwise per-value shares. PSI replaces empty bins by a small share
  (min non-zero share / 1e6, or 1e-4); JS uses natural logs (max sqrt(ln 2)).
* Hellinger: per-value shares, or for numerical columns density histograms
  on Sturges' edges over the distinct pooled values.
* PSI reading: < 0.1 none, 0.1-0.25 "moderate", >= 0.25 "significant".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.spatial import distance as _distance

from mlops_nb.profiling import coltypes as ct
from mlops_nb.profiling.dists import CatCounts, cdf_distances, sturges_edges
from mlops_nb.errors import DriftError


@dataclass(frozen=True)
class TestSpec:
    name: str
    kind: str  # "p_value" or "distance"
    default_threshold: float
    numeric_only: bool
    drift_rule: str  # "le", "lt" or "ge"
    label: str


SPECS = {
    "ks": TestSpec("ks", "p_value", 0.05, True, "le", "K-S p-value"),
    "chisquare": TestSpec("chisquare", "p_value", 0.05, False, "lt", "chi-square p-value"),
    "ztest": TestSpec("ztest", "p_value", 0.05, False, "lt", "Z-test p-value"),
    "wasserstein": TestSpec("wasserstein", "distance", 0.1, True, "ge", "Wasserstein distance (normed)"),
    "jensenshannon": TestSpec("jensenshannon", "distance", 0.1, False, "ge", "Jensen-Shannon distance"),
    "psi": TestSpec("psi", "distance", 0.1, False, "ge", "PSI"),
    "hellinger": TestSpec("hellinger", "distance", 0.1, False, "ge", "Hellinger distance"),
}
ALIASES = {
    "z": "ztest",
    "chi2": "chisquare",
    "chi-square": "chisquare",
    "kolmogorov-smirnov": "ks",
    "js": "jensenshannon",
    "jensen-shannon": "jensenshannon",
    "wasserstein_distance": "wasserstein",
}
PSI_MODERATE, PSI_SIGNIFICANT = 0.1, 0.25


@dataclass
class TestOutcome:
    statistic: float
    p_value: float | None = None
    distance: float | None = None
    note: str | None = None


def canonical(name: str, column=None) -> str:
    """Canonical test name, or DriftError listing the valid ones."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in SPECS:
        where = f" for column {column!r}" if column is not None else ""
        raise DriftError(
            f"Unknown drift test {name!r}{where}; use one of {', '.join(SPECS)}.",
            method=name,
            column=column,
        )
    return key


def default_test(ctype: str, n_ref: int, n_values: int) -> str:
    """Evidently's rule: by reference size (non-missing rows) and distinct values."""
    numeric = ctype in (ct.NUMERICAL, ct.DATETIME)
    if n_ref <= 1000:
        if numeric and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "ztest"
    if numeric and n_values > 5:
        return "wasserstein"
    return "jensenshannon"


def decide(name: str, score: float, threshold: float) -> bool:
    rule = SPECS[name].drift_rule
    if rule == "le":
        return bool(score <= threshold)
    if rule == "lt":
        return bool(score < threshold)
    return bool(score >= threshold)


def psi_severity(value: float) -> str:
    if value >= PSI_SIGNIFICANT:
        return "significant"
    if value >= PSI_MODERATE:
        return "moderate"
    return "none"


# --------------------------------------------------------------------------- counts


@dataclass
class Aligned:
    keys: list
    ref: np.ndarray  # float counts
    cur: np.ndarray
    unseen: list  # current keys absent from the reference
    unseen_count: int
    pooled: int  # number of current categories pooled into "(other)"


def aligned_counts(ref, cur, column=None) -> Aligned:
    """Counts of both sides over the union of values/categories."""
    if isinstance(ref, CatCounts):
        return _aligned_cat(ref, cur)
    ur = ref.unique()
    if ur is None:
        raise DriftError(
            f"Column {column!r}: the reference profile keeps only a quantile sketch "
            f"({ref.nunique()} distinct values), not per-value counts. Use ks, wasserstein, "
            "psi, jensenshannon or hellinger, or pass the raw reference DataFrame.",
            column=column,
        )
    uc = cur.unique()
    keys = np.union1d(ur[0], uc[0])
    rc = np.zeros(keys.size)
    cc = np.zeros(keys.size)
    rc[np.searchsorted(keys, ur[0])] = ur[1]
    cc[np.searchsorted(keys, uc[0])] = uc[1]
    new = (rc == 0) & (cc > 0)
    return Aligned(keys.tolist(), rc, cc, keys[new].tolist(), int(cc[new].sum()), 0)


def _aligned_cat(ref: CatCounts, cur: CatCounts) -> Aligned:
    ref_d = ref.as_dict()
    keys = list(ref.labels)
    rc = list(ref.counts.astype(float))
    cur_d = cur.as_dict()
    unseen, pooled_count, pooled = [], 0, 0
    for lab in cur.labels:
        if lab not in ref_d:
            if ref.other > 0:
                pooled += 1
                pooled_count += cur_d[lab]
            else:
                unseen.append(lab)
    keys += unseen
    rc += [0.0] * len(unseen)
    cc = [float(cur_d.get(k, 0)) for k in keys]
    if ref.other > 0:
        keys.append("(other)")
        rc.append(float(ref.other))
        cc.append(float(pooled_count))
    unseen_count = int(sum(cur_d[k] for k in unseen))
    return Aligned(keys, np.array(rc), np.array(cc), unseen, unseen_count, pooled)


def _aligned(ref, cur, column, aligned: Aligned | None) -> Aligned:
    """``aligned`` when the caller already has it, else :func:`aligned_counts`."""
    return aligned if aligned is not None else aligned_counts(ref, cur, column)


def n_distinct(ref, cur) -> int:
    """Distinct non-missing values over both sides (exact up to > 5 for numbers)."""
    if isinstance(ref, CatCounts):
        return len(_aligned_cat(ref, cur).keys)
    nr, nc = ref.nunique(), cur.nunique()
    if max(nr, nc) > 5 or ref.unique() is None:
        return max(nr, nc)
    return int(np.union1d(ref.unique()[0], cur.unique()[0]).size)


# --------------------------------------------------------------------------- tests


def ks_pvalue(d: float, n1: int, n2: int) -> float:
    """Two-sided two-sample KS p-value as ``scipy.stats.ks_2samp(method='auto')``."""
    if max(n1, n2) <= 10000:
        try:
            from scipy.stats._stats_py import _attempt_exact_2kssamp

            ok, _, prob = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), d, "two-sided")
            if ok:
                return float(np.clip(prob, 0.0, 1.0))
        except Exception:  # pragma: no cover - private scipy helper moved
            pass
    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = m * n / (m + n)
    return float(np.clip(stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def _ks(ref, cur, ctype, column, aligned=None) -> TestOutcome:
    d, _ = cdf_distances(ref, cur)
    return TestOutcome(statistic=d, p_value=ks_pvalue(d, ref.n, cur.n))


def _wasserstein(ref, cur, ctype, column, aligned=None) -> TestOutcome:
    _, w1 = cdf_distances(ref, cur)
    norm = max(ref.std(), 0.001)
    value = w1 / norm
    return TestOutcome(statistic=value, distance=value, note=None)


def _chisquare(ref, cur, ctype, column, aligned=None) -> TestOutcome:
    al = _aligned(ref, cur, column, aligned)
    if len(al.keys) < 2:
        return TestOutcome(statistic=0.0, p_value=1.0, note="single value on both sides")
    if al.unseen:
        table = np.vstack([al.ref, al.cur])
        res = stats.chi2_contingency(table, correction=False)
        note = (
            f"{len(al.unseen)} categor{'y' if len(al.unseen) == 1 else 'ies'} unseen in the reference: "
            "used the 2 x k contingency chi-square (goodness of fit would be infinite)"
        )
        return TestOutcome(statistic=float(res.statistic), p_value=float(res.pvalue), note=note)
    f_exp = al.ref * (cur.n / ref.n)
    res = stats.chisquare(al.cur, f_exp)
    return TestOutcome(statistic=float(res.statistic), p_value=float(res.pvalue))


def _ztest(ref, cur, ctype, column, aligned=None) -> TestOutcome:
    al = _aligned(ref, cur, column, aligned)
    if len(al.keys) < 2:
        return TestOutcome(statistic=0.0, p_value=1.0, note="single value on both sides")
    order = sorted(range(len(al.keys)), key=lambda i: al.keys[i])
    first = order[0]
    n1, n2 = al.ref.sum(), al.cur.sum()
    p1 = (n1 - al.ref[first]) / n1
    p2 = (n2 - al.cur[first]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    note = None
    if len(al.keys) > 2:
        note = f"{len(al.keys)} values: tested {al.keys[first]!r} against all others"
    return TestOutcome(statistic=float(z), p_value=float(2.0 * stats.norm.sf(abs(z))), note=note)


def binned_shares(ref, cur, ctype, column, aligned=None) -> tuple[np.ndarray, np.ndarray, Aligned | None]:
    """Evidently's ``get_binned_data`` without the zero filling."""
    if not isinstance(ref, CatCounts) and ref.nunique() > 20:
        edges = sturges_edges(min(ref.min, cur.min), max(ref.max, cur.max), ref.n + cur.n)
        return ref.hist(edges) / ref.n, cur.hist(edges) / cur.n, None
    al = _aligned(ref, cur, column, aligned)
    return al.ref / ref.n, al.cur / cur.n, al


def _fill_zeros(p: np.ndarray) -> np.ndarray:
    nz = p[p != 0]
    if nz.size == 0:
        return np.full_like(p, 1e-4)
    m = nz.min()
    fill = m / 10**6 if m <= 0.0001 else 0.0001
    return np.where(p == 0, fill, p)


def _jensenshannon(ref, cur, ctype, column, aligned=None) -> TestOutcome:
    r, c, _ = binned_shares(ref, cur, ctype, column, aligned)
    value = float(_distance.jensenshannon(r, c))
    if not math.isfinite(value):
        value = 0.0
    return TestOutcome(statistic=value, distance=value)


def _psi(ref, cur, ctype, column, aligned=None) -> TestOutcome:
    r, c, _ = binned_shares(ref, cur, ctype, column, aligned)
    r, c = _fill_zeros(r), _fill_zeros(c)
    value = float(np.sum((r - c) * np.log(r / c)))
    return TestOutcome(statistic=value, distance=value)


def _hellinger(ref, cur, ctype, column, aligned=None) -> TestOutcome:
    if isinstance(ref, CatCounts) or ctype in (ct.CATEGORICAL, ct.BOOLEAN):
        al = _aligned(ref, cur, column, aligned)
        bc = float(np.sum(np.sqrt((al.ref / ref.n) * (al.cur / cur.n))))
    else:
        n_keys = _union_size(ref, cur)
        edges = sturges_edges(min(ref.min, cur.min), max(ref.max, cur.max), n_keys)
        widths = np.diff(edges)
        h1 = ref.hist(edges) / (ref.n * widths)
        h2 = cur.hist(edges) / (cur.n * widths)
        bin_width = (edges.max() - edges.min()) / (len(edges) - 1)
        bc = float(np.sum(np.sqrt(h1 * h2) * bin_width))
    value = math.sqrt(1.0 - min(max(bc, 0.0), 1.0))
    return TestOutcome(statistic=value, distance=value)


def _union_size(ref, cur) -> int:
    """Distinct values over both sides; estimated for a sketch from the share of
    its knots that the current data also holds."""
    if ref.unique() is None:
        knots, cu = ref.points(), cur.points()
        pos = np.minimum(np.searchsorted(cu, knots), cu.size - 1)
        shared = float(np.mean(cu[pos] == knots)) if knots.size else 0.0
        return max(int(round(ref.nunique() + cur.nunique() - shared * ref.nunique())), cur.nunique(), 1)
    return int(np.union1d(ref.points(), cur.points()).size)


_FUNCS = {
    "ks": _ks,
    "chisquare": _chisquare,
    "ztest": _ztest,
    "wasserstein": _wasserstein,
    "jensenshannon": _jensenshannon,
    "psi": _psi,
    "hellinger": _hellinger,
}


def run_test(name: str, ref, cur, ctype: str, column=None, aligned: Aligned | None = None) -> TestOutcome:
    """Run test ``name`` on two non-empty sides; ``aligned``, when given, is
    ``aligned_counts(ref, cur)`` already computed by the caller."""
    spec = SPECS[name]
    if spec.numeric_only and ctype not in (ct.NUMERICAL, ct.DATETIME):
        raise DriftError(
            f"Test {name!r} needs a numerical or datetime column, but {column!r} is {ctype}; "
            "use chisquare, ztest, jensenshannon, psi or hellinger.",
            column=column,
            method=name,
        )
    return _FUNCS[name](ref, cur, ctype, column, aligned)
