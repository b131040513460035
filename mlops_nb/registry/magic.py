"""``%mlops register | models | versions | promote | approve | rollback | audit | registry | lineage``.

Each handler parses its line and calls the registry API; mlops_nb errors
become one-line ``UsageError``s in :mod:`mlops_nb.magics`.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from ..magic_parsing import parse


@magic_arguments()
@argument("model", help="a variable holding a fitted model, or a model digest / reference")
@argument("--name", required=True, help="registered model name")
@argument("--alias", help="also promote the new version to this alias (policy applies)")
@argument("--description", help="description")
@argument("--reason", help="why (kept in the audit trail)")
def _register_args(line):
    """%mlops register: add a model as the next version of a registered model."""


@magic_arguments()
@argument("name", help="registered model name")
def _versions_args(line):
    """%mlops versions: versions of a registered model, newest first."""


@magic_arguments()
@argument("name")
@argument("version", help="version number")
@argument("alias", help="alias to move, e.g. staging or production")
@argument("--reason", help="why (kept in the audit trail)")
@argument("--policy", help="policy file (default: policy.toml beside the registry)")
def _promote_args(line):
    """%mlops promote: point NAME@ALIAS at VERSION through the policy's gates."""


@magic_arguments()
@argument("request_id", type=int, help="promotion request id")
@argument("--comment", help="kept with the approval")
@argument("--policy", help="policy file")
def _approve_args(line):
    """%mlops approve: approve a pending promotion request."""


@magic_arguments()
@argument("name")
@argument("alias")
@argument("--from", dest="from_version", metavar="VERSION", help="only if NAME@ALIAS still points at VERSION")
@argument("--reason", help="why (kept in the audit trail)")
def _rollback_args(line):
    """%mlops rollback: point NAME@ALIAS back at its previous holder."""


@magic_arguments()
@argument("name", nargs="?", help="only events of this registered model")
@argument("--last", type=int, help="only the N newest events")
@argument("--verify", action="store_true", help="check the chain instead of listing it")
@argument("--head", help="with --verify: ID:HASH kept from `%%mlops audit --head-only` / mlops-nb audit head")
def _audit_args(line):
    """%mlops audit: the audit trail of the registry (or of one model)."""


@magic_arguments()
@argument("name", nargs="?", help="open on this model")
def _registry_args(line):
    """%mlops registry: the RegistryPanel."""


def register_command(shell, line: str) -> None:
    from . import register
    from .tables import metric_text

    args = parse(_register_args, line, "register")
    if args is None:
        return
    model: Any = args.model
    if model in shell.user_ns:
        model = shell.user_ns[model]
    v = register(model, name=args.name, alias=args.alias, description=args.description, reason=args.reason)
    aliases = f" @{', @'.join(v.aliases)}" if v.aliases else ""
    print(f"{v.ref}{aliases} {v.class_name.rsplit('.', 1)[-1]} ({v.digest[:8]}) {metric_text(v.metrics)}".rstrip())


def models_command(shell, line: str) -> Any:
    from . import models
    from .tables import models_frame

    if line.strip():
        raise UsageError("%mlops models takes no arguments; %mlops versions NAME lists one model's versions.")
    return models_frame(models())


def versions_command(shell, line: str) -> Any:
    from . import versions
    from .tables import versions_frame

    args = parse(_versions_args, line, "versions")
    return None if args is None else versions_frame(versions(args.name))


def promote_command(shell, line: str) -> None:
    from . import promote
    from .tables import promotion_line

    args = parse(_promote_args, line, "promote")
    if args is not None:
        print(promotion_line(promote(args.name, args.version, args.alias, reason=args.reason, policy=args.policy)))


def approve_command(shell, line: str) -> None:
    from . import approve
    from .tables import promotion_line

    args = parse(_approve_args, line, "approve")
    if args is not None:
        print(promotion_line(approve(args.request_id, comment=args.comment, policy=args.policy)))


def rollback_command(shell, line: str) -> None:
    from . import rollback
    from .tables import promotion_line

    args = parse(_rollback_args, line, "rollback")
    if args is not None:
        print(promotion_line(rollback(args.name, args.alias, from_version=args.from_version, reason=args.reason)))


def audit_command(shell, line: str) -> Any:
    from . import audit, verify_audit
    from .tables import audit_frame

    args = parse(_audit_args, line, "audit")
    if args is None:
        return None
    if args.verify:
        result = verify_audit(head=args.head)
        print(result)
        return None
    if args.head:
        raise UsageError("--head goes with --verify: %mlops audit --verify --head ID:HASH.")
    events = audit(args.name)
    if args.last is not None:
        if args.last < 1:
            raise UsageError("--last must be a positive number of events.")
        events = events[-args.last :]
    return audit_frame(events)


def registry_command(shell, line: str) -> Any:
    from ..widgets.registry_panel import RegistryPanel

    args = parse(_registry_args, line, "registry")
    return None if args is None else RegistryPanel(name=args.name)


