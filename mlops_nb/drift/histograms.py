"""Aggregated reference/current histograms on shared bins, kept in a DriftReport
for the widget and the static HTML (counts per bin or per value, never raw points)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops_nb.profiling import coltypes as ct
from mlops_nb.drift import stattests as st
from mlops_nb.profiling.dists import CatCounts, bin_counts

HIST_BINS = 30
HIST_TOP = 20


def histogram(ref, cur, ctype: str, aligned: st.Aligned | None = None) -> dict:
    """Reference and current counts on shared bins.

    ``{"kind": "values", "labels", "ref", "cur"}`` for categories and numbers
    with at most 20 distinct values (top 20 by share, the rest as "(other)");
    ``{"kind": "bins", "edges", "ref", "cur", "clipped", "datetime"}`` with 30
    equal bins otherwise, over the pooled range or, when outliers stretch it
    more than 3 times the pooled 0.5-99.5 % range, over that range with the
    outliers counted in the edge bins (``clipped``). ``aligned``, when given,
    is ``aligned_counts(ref, cur)`` already computed by the caller.
    """
    if isinstance(ref, CatCounts):
        al = aligned if aligned is not None else st.aligned_counts(ref, cur)
        return _top_values(al.keys, al.ref, al.cur, ref.n, cur.n)
    few = ref.nunique() <= HIST_TOP and cur.nunique() <= HIST_TOP and ref.unique() is not None
    if few:
        al = aligned if aligned is not None else st.aligned_counts(ref, cur)
        if len(al.keys) <= HIST_TOP:
            labels = [_num_label(k, ctype) for k in al.keys]
            return {"kind": "values", "labels": labels, "ref": al.ref.tolist(), "cur": al.cur.tolist()}
    lo, hi = min(ref.min, cur.min), max(ref.max, cur.max)
    qlo = float(min(ref.quantile([0.005])[0], cur.quantile([0.005])[0]))
    qhi = float(max(ref.quantile([0.995])[0], cur.quantile([0.995])[0]))
    clipped = bool(qhi > qlo and (hi - lo) > 3 * (qhi - qlo))
    if clipped:
        lo, hi = qlo, qhi
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, HIST_BINS + 1)
    return {
        "kind": "bins",
        "edges": edges.tolist(),
        "ref": np.round(bin_counts(ref, edges[1:-1]), 3).tolist(),
        "cur": np.round(bin_counts(cur, edges[1:-1]), 3).tolist(),
        "clipped": clipped,
        "datetime": ctype == ct.DATETIME,
    }


def _num_label(value: float, ctype: str) -> str:
    if ctype == ct.DATETIME:
        return str(pd.Timestamp(value, unit="s"))
    return ct.label(float(value))


def _top_values(keys, ref_counts, cur_counts, n_ref, n_cur) -> dict:
    keys = list(keys)
    share = np.maximum(np.asarray(ref_counts) / max(n_ref, 1), np.asarray(cur_counts) / max(n_cur, 1))
    order = np.argsort(-share, kind="stable")
    top = order[:HIST_TOP]
    rest = order[HIST_TOP:]
    labels = [str(keys[i]) for i in top]
    rc = [float(ref_counts[i]) for i in top]
    cc = [float(cur_counts[i]) for i in top]
    if rest.size:
        labels.append("(other)" if "(other)" not in labels else "(more)")
        rc.append(float(np.sum(np.asarray(ref_counts)[rest])))
        cc.append(float(np.sum(np.asarray(cur_counts)[rest])))
    return {"kind": "values", "labels": labels, "ref": rc, "cur": cc}
