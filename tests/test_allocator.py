"""allocator.tune(): freed multi-MiB numpy temporaries are reused, not faulted in again."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, resource, sys
import numpy as np
from mlops_nb import allocator
tuned = allocator.tune()
x = np.random.default_rng(0).normal(size=500_000)  # 4 MB, a drift column's size
for _ in range(3):  # warm up
    y = np.sort(x); z = np.cumsum(y); del y, z
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    y = np.sort(x); z = np.cumsum(y); del y, z
print(json.dumps({"tuned": tuned, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _probe(**env: str) -> dict:
    import os

    out = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, **env}, capture_output=True, text=True,
                         check=True)  # fmt: skip
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_tuned_allocator_reuses_freed_arrays_instead_of_faulting_pages_in():
    tuned = _probe()
    untouched = _probe(MLOPS_NB_MALLOC_TUNING="0")
    assert tuned["tuned"] is True and untouched["tuned"] is False
    # 50 rounds of two fresh 4 MB arrays: tens of thousands of page faults when glibc maps
    # and trims them (its dynamic thresholds catch only some), a handful when the heap keeps them.
    assert untouched["faults"] > 5_000, untouched
    assert tuned["faults"] < untouched["faults"] / 20, (tuned, untouched)


def test_tune_is_tried_once_per_process_and_keeps_its_answer():
    from mlops_nb import allocator

    first = allocator.tune()
    assert isinstance(first, bool)
    assert allocator.tune() is first  # the same answer, without a second attempt
    if sys.platform.startswith("linux") and os.environ.get("MLOPS_NB_MALLOC_TUNING", "1") != "0":
        assert allocator.tune() is True
    off = _probe(MLOPS_NB_MALLOC_TUNING="0")  # a process told to leave glibc alone says so every time
    assert off["tuned"] is False
