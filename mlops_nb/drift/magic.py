"""``%mlops drift REF CUR [--columns a,b] [--method NAME] [--threshold X] [--save]``.

REF and CUR are names of variables in the notebook; REF may also be a
``run:RUN_ID[:INPUT]``, ``model:DIGEST`` or ``data:DIGEST`` reference.
``--method`` takes one test for all columns, or ``col=test,col2=test``.
The handler returns a :class:`~mlops_nb.widgets.drift_panel.DriftPanel`
(displayed as the cell's output).
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from mlops_nb.errors import MlopsError
from mlops_nb.magic_parsing import parse

_REF_PREFIXES = ("run:", "model:", "data:")


@magic_arguments()
@argument("reference", help="variable name, or run:RUN_ID[:INPUT] / model:DIGEST / data:DIGEST")
@argument("current", help="variable name of the current DataFrame")
@argument("--columns", help="comma-separated columns to compare (default: all)")
@argument("--method", help="test for all columns, or col=test,col2=test")
@argument("--threshold", type=float, help="drift threshold for all columns")
@argument("--save", action="store_true", help="record the check in the registry")
def _drift_args(line):
    """%mlops drift: compare current data with a reference, column by column."""


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _lookup(shell, token: str, role: str, allow_refs: bool) -> Any:
    if allow_refs and token.startswith(_REF_PREFIXES):
        return token
    ns = shell.user_ns
    if token in ns:
        return ns[token]
    try:  # allow simple expressions such as df[df.year == 2024] or data["train"]
        return eval(token, shell.user_global_ns, ns)  # noqa: S307 - the user's own notebook code
    except Exception:
        hint = " or run:RUN_ID / model:DIGEST" if allow_refs else ""
        raise UsageError(f"%mlops drift: {role} {token!r} is not a variable in the notebook{hint}.") from None


def _methods(text: str | None) -> Any:
    if not text:
        return None
    if "=" not in text:
        return text.strip()
    out = {}
    for part in text.split(","):
        col, sep, name = part.partition("=")
        if not sep or not col.strip() or not name.strip():
            raise UsageError(f"%mlops drift: --method expects NAME or col=NAME,col2=NAME, got {text!r}.")
        out[col.strip()] = name.strip()
    return out


def drift_command(shell, line: str):
    """Parse ``line``, run :func:`mlops_nb.drift`, and return a DriftPanel."""
    try:
        # Shell-like splitting; an unterminated quote is a one-line UsageError too.
        args = parse(_drift_args, line, "drift")
    except UsageError as exc:
        message = str(exc)
        raise UsageError(_one_line(message if message.startswith("%mlops drift") else f"%mlops drift: {message}")) from None
    if args is None:  # --help printed the usage
        return None
    reference = _lookup(shell, args.reference, "reference", allow_refs=True)
    current = _lookup(shell, args.current, "current data", allow_refs=False)
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    from mlops_nb.drift.engine import drift
    from mlops_nb.widgets.drift_panel import DriftPanel

    label = args.reference
    try:
        report = drift(
            reference,
            current,
            columns=columns,
            method=_methods(args.method),
            threshold=args.threshold,
            reference_label=label,
        )
        if args.save:
            check_id = report.save()
            print(f"mlops: drift check {check_id} saved ({report.summary()})")
    except MlopsError as exc:
        raise UsageError(_one_line(f"%mlops drift: {exc}")) from None
    return DriftPanel(report)
