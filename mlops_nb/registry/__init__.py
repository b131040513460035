"""The model registry: numbered versions of named models, aliases, promotion policy and audit.

Plain functions first (``register``, ``promote``, ``approve``, ``rollback``…);
the ``%mlops`` magics, the ``mlops-nb models``/``audit`` commands, the
RegistryPanel and the sidebar all call these, so policy and audit always apply.
"""

from .audit import AuditVerification, audit, audit_head, export_audit, verify_audit
from .lineage import Lineage, lineage  # the function shadows its module, as mlops_nb.lineage
from .loading import load_model
from .policy import Gate, Policy, load_policy, policy_path
from .promotion import Promotion, alias_history, approve, promote, remove_alias, rollback
from .registration import register
from .versions import ModelVersion, RegisteredModel, get_model_version, models, parse_reference, versions

__all__ = [
    "AuditVerification", "Gate", "Lineage", "ModelVersion", "Policy", "Promotion", "RegisteredModel", "alias_history",
    "approve", "audit", "audit_head", "export_audit", "get_model_version", "lineage", "load_model", "load_policy",
    "models", "parse_reference", "policy_path", "promote", "register", "remove_alias", "rollback", "versions",
    "verify_audit",
]  # fmt: skip
