"""The model registry: numbered versions of named models, aliases, promotion policy and audit.

Plain functions first (``register``, ``promote``, ``approve``, ``rollback``…);
the ``%mlops`` magics, the ``mlops-nb models``/``audit`` commands, the
RegistryPanel and the sidebar all call these, so policy and audit always apply.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .audit import AuditVerification, audit, audit_head, export_audit, verify_audit
from .lineage import Lineage, lineage  # the function shadows its module, as mlops_nb.lineage
from .versions import ModelVersion, RegisteredModel, get_model_version, models, parse_reference, versions

# The rest from its module on first use: a listing such as `mlops-nb models list` needs neither
# the promotion policy (tomllib) nor registration. (audit, lineage and versions, imported above,
# are the names a module of this package shares: imported lazily, the module could win.)
_NAMES = {
    "load_model": "loading", "Gate": "policy", "Policy": "policy", "load_policy": "policy", "policy_path": "policy",
    "Promotion": "promotion", "alias_history": "promotion", "approve": "promotion", "promote": "promotion",
    "remove_alias": "promotion", "rollback": "promotion", "register": "registration",
}  # fmt: skip

if TYPE_CHECKING:
    from .loading import load_model
    from .policy import Gate, Policy, load_policy, policy_path
    from .promotion import Promotion, alias_history, approve, promote, remove_alias, rollback
    from .registration import register

__all__ = [
    "AuditVerification", "Gate", "Lineage", "ModelVersion", "Policy", "Promotion", "RegisteredModel", "alias_history",
    "approve", "audit", "audit_head", "export_audit", "get_model_version", "lineage", "load_model", "load_policy",
    "models", "parse_reference", "policy_path", "promote", "register", "remove_alias", "rollback", "versions",
    "verify_audit",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
