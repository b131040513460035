"""A reproduced run against its original: models, metrics, environment."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Check:
    """One comparison: what, the original and the new value, whether they match, and why not."""

    what: str
    original: Any
    reproduced: Any
    match: bool
    why: str = ""


@dataclass
class Comparison:
    checks: list[Check] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return all(c.match for c in self.checks)

    def add(self, *args: Any, **kwargs: Any) -> None:
        self.checks.append(Check(*args, **kwargs))


def compare_runs(original: dict[str, Any], new: dict[str, Any], *, rtol: float) -> Comparison:
    """Models by fingerprint (named by the run's model names), metrics within ``rtol``, and
    the Python and package versions recorded with each run."""
    out = Comparison()
    old_models = {m["name"]: m for m in original.get("models", [])}
    new_models = {m["name"]: m for m in new.get("models", [])}
    for name in sorted(set(old_models) | set(new_models)):
        a, b = old_models.get(name), new_models.get(name)
        if a is None or b is None:
            out.add(f"model {name}", a and a["digest"][:12], b and b["digest"][:12], False,
                    "only in the " + ("reproduction" if a is None else "original"))  # fmt: skip
            continue
        same = a["digest"] == b["digest"]
        out.add(f"model {name}", a["digest"][:12], b["digest"][:12], same, "" if same else _why_model(a))
    old_metrics, new_metrics = original.get("metrics") or {}, new.get("metrics") or {}
    for key in sorted(set(old_metrics) | set(new_metrics)):
        a, b = old_metrics.get(key), new_metrics.get(key)
        if a is None or b is None:
            out.add(f"metric {key}", a, b, False, "only in the " + ("reproduction" if a is None else "original"))
            continue
        same = (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rtol, abs_tol=0.0)
        out.add(f"metric {key}", a, b, same, "" if same else f"differs by {abs(a - b):.3g} (rtol {rtol:g})")
    old_env, new_env = original.get("environment") or {}, new.get("environment") or {}
    if old_env.get("python") != new_env.get("python"):
        out.add("env python", old_env.get("python"), new_env.get("python"), False, "another Python version")
    old_pk, new_pk = old_env.get("packages") or {}, new_env.get("packages") or {}
    for pkg in sorted(set(old_pk) | set(new_pk)):
        if old_pk.get(pkg) != new_pk.get(pkg):
            out.add(f"env {pkg}", old_pk.get(pkg), new_pk.get(pkg), False, "another version installed")
    return out


def _why_model(record: dict[str, Any]) -> str:
    """Why two fits of one cell may differ: an estimator left unseeded is the usual cause."""
    params = record.get("params") or {}
    unseeded = sorted(k for k, v in params.items() if (k == "random_state" or k.endswith("__random_state")) and v is None)
    cls = record.get("class_name", "the model").rsplit(".", 1)[-1]
    if unseeded:
        return f"{cls} is unseeded ({', '.join(unseeded)}=None): set random_state to make it reproducible"
    return f"{cls} fitted to other values (inputs, code or a package version differ)"
