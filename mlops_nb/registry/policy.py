"""Promotion policy: the gates a model version must pass before an alias may point at it.

The policy is a TOML file, ``policy.toml`` beside the registry database (or
``MLOPS_NB_POLICY``, or ``--policy``), with one table per alias::

    [aliases.production]
    approvers = ["maria", "li"]      # promotion waits for one of them (not the requester)
    min_approvals = 1
    clean_lineage = true             # training run finished, notebook validated, git clean, no stale inputs
    allow_dirty = false              # accept a training run from a dirty git tree
    require_validated = true         # the training notebook passed mlops-nb validate

    [[aliases.production.metrics]]
    name = "accuracy"
    min = 0.90                       # absolute floor (``max`` for a ceiling)
    max_drop = 0.01                  # not worse than the current holder by more than 0.01

Whether "worse" means lower or higher follows the metric's name (``*loss``,
``*error``, ``rmse``, ``mae``... are lower-is-better) unless ``higher_is_better``
is given.  An alias without a table has no gates.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, PolicyError
from ..report import higher_is_better

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from ..store import SqlStore
    from .versions import ModelVersion

_ALIAS_KEYS = {"approvers", "min_approvals", "clean_lineage", "allow_dirty", "require_validated", "allow_warnings", "metrics"}
_METRIC_KEYS = {"name", "min", "max", "max_drop", "higher_is_better"}


@dataclass
class MetricRule:
    name: str
    min: float | None = None
    max: float | None = None
    max_drop: float | None = None
    higher_is_better: bool | None = None

    @property
    def higher(self) -> bool:
        return self.higher_is_better if self.higher_is_better is not None else higher_is_better(self.name)


@dataclass
class AliasPolicy:
    approvers: list[str] = field(default_factory=list)
    min_approvals: int = 1
    clean_lineage: bool = False
    allow_dirty: bool = False
    require_validated: bool = True
    allow_warnings: bool = False
    metrics: list[MetricRule] = field(default_factory=list)


@dataclass
class Gate:
    """The outcome of one gate: its name, whether it passed, and why."""

    gate: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "passed": self.passed, "detail": self.detail}


@dataclass
class Policy:
    """Per-alias promotion rules; :meth:`for_alias` gives an empty rule set for unlisted aliases."""

    aliases: dict[str, AliasPolicy] = field(default_factory=dict)
    path: str | None = None

    def for_alias(self, alias: str) -> AliasPolicy:
        return self.aliases.get(alias) or AliasPolicy()

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str | None = None) -> Policy:
        where = path or "the policy"
        unknown = set(data) - {"aliases"}
        if unknown:
            raise PolicyError(f"{where}: unknown top-level key(s) {sorted(unknown)}; only [aliases.NAME] tables are read.", path=path)
        aliases = {}
        for alias, body in (data.get("aliases") or {}).items():
            if not isinstance(body, dict):
                raise PolicyError(f"{where}: [aliases.{alias}] must be a table.", path=path)
            bad = set(body) - _ALIAS_KEYS
            if bad:
                raise PolicyError(f"{where}: [aliases.{alias}] has unknown key(s) {sorted(bad)}; known: {sorted(_ALIAS_KEYS)}.", path=path)
            rules = []
            for rule in body.get("metrics", []):
                if not isinstance(rule, dict) or "name" not in rule:
                    raise PolicyError(f"{where}: each [[aliases.{alias}.metrics]] needs a name.", path=path)
                bad = set(rule) - _METRIC_KEYS
                if bad:
                    raise PolicyError(f"{where}: metric rule {rule.get('name')!r} has unknown key(s) {sorted(bad)}; known: {sorted(_METRIC_KEYS)}.", path=path)
                for key in ("min", "max", "max_drop"):
                    if key in rule and not isinstance(rule[key], (int, float)):
                        raise PolicyError(f"{where}: {rule['name']}.{key} must be a number, not {rule[key]!r}.", path=path)
                rules.append(MetricRule(**rule))
            approvers = body.get("approvers", [])
            if not isinstance(approvers, list) or not all(isinstance(a, str) for a in approvers):
                raise PolicyError(f"{where}: [aliases.{alias}] approvers must be a list of user names.", path=path)
            aliases[alias] = AliasPolicy(
                approvers=approvers,
                min_approvals=int(body.get("min_approvals", 1)),
                clean_lineage=bool(body.get("clean_lineage", False)),
                allow_dirty=bool(body.get("allow_dirty", False)),
                require_validated=bool(body.get("require_validated", True)),
                allow_warnings=bool(body.get("allow_warnings", False)),
                metrics=rules,
            )
        return cls(aliases=aliases, path=path)


def policy_path(store: SqlStore) -> Path:
    """Where the policy of ``store`` is read from when none is given."""
    from .. import config

    env = os.environ.get("MLOPS_NB_POLICY")
    if env:
        return Path(env).expanduser()
    url = store.url
    if url.startswith("sqlite:///") and ":memory:" not in url:
        return Path(url[len("sqlite:///"):]).resolve().parent / "policy.toml"
    return config.home_dir() / "policy.toml"


def load_policy(policy: str | os.PathLike[str] | Policy | dict | None, store: SqlStore) -> Policy:
    """The policy to apply: an object, a path, or the file beside the registry (none: no gates)."""
    if getattr(store, "secured", False):  # a team registry: the policy in its database, nothing else
        return database_policy(policy, store)
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, dict):
        return Policy.from_dict(policy)
    explicit = policy is not None
    path = Path(policy).expanduser() if explicit else policy_path(store)
    if not path.exists():
        if explicit:
            raise PolicyError(f"The policy file {str(path)!r} does not exist.", path=str(path))
        return Policy(path=None)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"Cannot read the policy file {str(path)!r}: {exc}. Fix it or remove it.", path=str(path)) from None
    return Policy.from_dict(data, str(path))


def database_policy(policy, store: SqlStore) -> Policy:
    """The policy in force in a team registry's database (``mlops_policies``); another one passed in is
    refused, since the database checks approvers against its own and a local file would not be enforced."""
    from ..store.engine import read_transaction
    from ..store.roles import current_policy

    if isinstance(policy, Policy) and (policy.path or "").startswith("database"):
        return policy  # read from the database a moment ago
    if policy is not None:
        raise PolicyError(
            "This registry keeps its promotion policy in its database (team roles): a policy passed here "
            "would not be enforced. An admin changes it with mlops-nb admin policy load FILE."
        )
    with read_transaction(store.engine) as conn:
        found = current_policy(conn)
    return Policy(path=None) if found is None else Policy.from_dict(found[1], f"database policy v{found[0]}")


def evaluate(rules: AliasPolicy, candidate: ModelVersion, holder: ModelVersion | None, store: SqlStore) -> list[Gate]:
    """Every gate of ``rules`` for promoting ``candidate`` over the current ``holder``."""
    gates = [_metric_gate(rule, candidate, holder) for rule in rules.metrics]
    if rules.clean_lineage:
        gates.extend(_lineage_gates(rules, candidate, store))
    return gates


def _metric_gate(rule: MetricRule, candidate: ModelVersion, holder: ModelVersion | None) -> Gate:
    gate = f"metric {rule.name}"
    value = candidate.metrics.get(rule.name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        known = ", ".join(sorted(candidate.metrics)) or "none"
        return Gate(gate, False, f"{candidate.ref} has no metric {rule.name!r} (its training run recorded: {known})")
    if rule.min is not None and value < rule.min:
        return Gate(gate, False, f"{rule.name}={value:.4g} is below the minimum {rule.min:g}")
    if rule.max is not None and value > rule.max:
        return Gate(gate, False, f"{rule.name}={value:.4g} is above the maximum {rule.max:g}")
    if rule.max_drop is not None and holder is not None and holder.digest != candidate.digest:
        current = holder.metrics.get(rule.name)
        if current is not None:
            worse_by = (current - value) if rule.higher else (value - current)
            if worse_by > rule.max_drop + 1e-12:
                return Gate(
                    gate, False,
                    f"{rule.name}={value:.4g} is worse than the current holder {holder.ref} ({current:.4g}) "
                    f"by {worse_by:.4g}, more than the allowed {rule.max_drop:g}",
                )  # fmt: skip
            return Gate(gate, True, f"{rule.name}={value:.4g} vs current {current:.4g} (allowed drop {rule.max_drop:g})")
    return Gate(gate, True, f"{rule.name}={value:.4g}")


def _lineage_gates(rules: AliasPolicy, candidate: ModelVersion, store: SqlStore) -> list[Gate]:
    if not candidate.run_id:
        return [Gate("clean lineage", False, f"{candidate.ref} has no training run on record (registered from an object made outside a tracked run)")]
    try:
        run = store.get_run(candidate.run_id)
    except NotFoundError:
        return [Gate("clean lineage", False, f"the training run {candidate.run_id[:8]} is not in the registry")]
    gates = []
    ok = run["status"] == "finished"
    gates.append(Gate("training run finished", ok, f"run {run['id'][:8]} is {run['status']}"))
    if not rules.allow_dirty:
        if run.get("git_dirty"):
            gates.append(Gate("git clean", False, f"run {run['id'][:8]} ran on a dirty git tree ({(run.get('git_commit') or '')[:8]}); commit first or set allow_dirty = true"))
        elif not run.get("git_commit"):
            gates.append(Gate("git clean", False, f"run {run['id'][:8]} did not run in a git work tree, so its code cannot be traced; commit the notebook or set allow_dirty = true"))
        else:
            gates.append(Gate("git clean", True, f"commit {(run.get('git_commit') or 'none')[:8]}"))
    if rules.require_validated:
        gates.append(_validated_gate(run, store))
    if not rules.allow_warnings:
        gates.append(_warnings_gate(run, store))
    return gates


def _validated_gate(run: dict[str, Any], store: SqlStore) -> Gate:
    from ..fingerprint.notebooks import notebook_file_hash as file_hash

    notebook_hash = None
    if run.get("job_run_id"):
        try:
            notebook_hash = store.get_job_run(run["job_run_id"])["notebook_hash"]
        except NotFoundError:
            pass
    path = run.get("notebook_path")
    if notebook_hash is None and path and path != "unknown" and Path(path).exists():
        try:
            notebook_hash = file_hash(path)
        except Exception:  # unreadable notebook: reported below as not validated
            notebook_hash = None
    if notebook_hash is None:
        return Gate("notebook validated", False, f"the notebook of run {run['id'][:8]} ({path or 'unknown'}) cannot be found to check; run it as a job")
    found = store.find_validation(notebook_hash, passed=True)
    if found is None:
        return Gate("notebook validated", False, f"{Path(path).name if path else 'the notebook'} (this content) has no passing validation: run mlops-nb validate {path or 'NOTEBOOK'}")
    return Gate("notebook validated", True, f"validation {found['id'][:8]} passed")


def _warnings_gate(run: dict[str, Any], store: SqlStore) -> Gate:
    from .lineage import lineage

    flagged = []
    runs = [run]
    try:
        tree = lineage(f"run:{run['id']}", store=store)
        stack = [tree.root]
        seen = {run["id"]}
        while stack:
            node = stack.pop()
            stack.extend(node.children)
            if node.kind == "run" and node.id not in seen:
                seen.add(node.id)
                runs.append(store.get_run(node.id))
    except NotFoundError:
        pass
    for r in runs:
        for w in r.get("warnings") or []:
            flagged.append(f"run {r['id'][:8]}: {w.get('message') or w}")
    if flagged:
        return Gate("no stale inputs", False, "; ".join(flagged[:5]) + ("" if len(flagged) <= 5 else f" (+{len(flagged) - 5} more)"))
    return Gate("no stale inputs", True, f"{len(runs)} run(s) in the lineage, none flagged")
