"""``%mlops validate`` and ``%mlops run``: parsing and display over the jobs API.

Both start papermill in a child process: papermill cannot run inside this
kernel's event loop (papermill#490), and the notebook under test must get a
fresh kernel anyway.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from ..errors import MlopsError
from ..magic_parsing import parse
from .notebook import parse_parameters, write_file


@magic_arguments()
@argument("notebook", help="path of the .ipynb file")
@argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
          help="parameter value (repeatable)")  # fmt: skip
@argument("--rtol", type=float, default=0.0, help="relative tolerance for metrics of the two runs")
@argument("--timeout", type=float, help="per-cell timeout in seconds")
@argument("--kernel", help="kernel name (default: the notebook's)")
@argument("--junit", help="also write the checks as JUnit XML to this file")
@argument("--static", action="store_true", help="static checks only, no execution")
def _validate_args(line):
    """%mlops validate NOTEBOOK: can this notebook become a job?"""


@magic_arguments()
@argument("notebook", help="path of the .ipynb file")
@argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
          help="parameter value (repeatable)")  # fmt: skip
@argument("--timeout", type=float, help="wall-clock limit in seconds (the kernel is killed after)")
@argument("--cell-timeout", type=float, help="per-cell timeout in seconds")
@argument("--kernel", help="kernel name (default: the notebook's)")
@argument("--output", help="also write the executed notebook here")
def _run_args(line):
    """%mlops run NOTEBOOK: execute a notebook as a recorded job, in a separate process."""


def _parse(spec, line: str):
    try:
        # Shell-like splitting; an unterminated quote is a one-line UsageError too.
        args = parse(spec, line, spec.__name__.strip("_").removesuffix("_args"))
    except UsageError as exc:
        raise UsageError(f"{exc} (see %mlops help)") from None
    if args is None:  # --help printed the usage
        return None
    rtol = getattr(args, "rtol", 0.0)
    if rtol < 0:
        raise UsageError("--rtol must be zero or positive.")
    for option in ("timeout", "cell_timeout"):
        value = getattr(args, option, None)
        if value is not None and value <= 0:
            raise UsageError(f"--{option.replace('_', '-')} must be a positive number of seconds.")
    return args


def validate_command(shell, line: str) -> None:
    """``%mlops validate NOTEBOOK [-p NAME VALUE]... [--rtol X] [--timeout S] [--kernel K] [--static]``."""
    from .validation import validate

    args = _parse(_validate_args, line)
    if args is None:
        return
    params = _params(args.parameter)
    with _Progress("validate") as progress:
        progress.show(f"validating {args.notebook}: static checks, then two runs in fresh kernels…")
        result = validate(args.notebook, params, rtol=args.rtol, timeout=args.timeout, kernel=args.kernel,
                          execute=not args.static, progress=progress.show)  # fmt: skip
        progress.show(f"{args.notebook}: done in {result.duration:.1f} s")
    print(result.report())
    if args.junit:
        write_file(args.junit, result.to_junit())
    result.raise_for_status()


def run_command(shell, line: str) -> None:
    """``%mlops run NOTEBOOK [-p NAME VALUE]... [--timeout S] [--cell-timeout S] [--kernel K] [--output URL]``."""
    from .commands import job_summary
    from .execute import run_notebook
    from .notebook import check_parameter_names

    args = _parse(_run_args, line)
    if args is None:
        return
    params = _params(args.parameter)
    check_parameter_names(args.notebook, params)
    with _Progress("run") as progress:
        progress.show(f"running {args.notebook} in a separate papermill process…")
        job = run_notebook(
            args.notebook, params, timeout=args.timeout, cell_timeout=args.cell_timeout, kernel=args.kernel,
            output=args.output, progress=lambda e: progress.show(f"{args.notebook}: cell {e['cell']}/{e['total']}")
            if e["state"] == "start" else None,
        )  # fmt: skip
        progress.show(f"{args.notebook}: {job.status} in {job.duration:.1f} s")
    print(job_summary(job))
    job.raise_for_status()


def _params(pairs: list[list[str]]) -> dict[str, Any]:
    try:
        return parse_parameters((name, value) for name, value in pairs)
    except MlopsError as exc:
        raise UsageError(str(exc)) from None


class _Progress:
    """One status line, updated in place in Jupyter (a display handle), printed elsewhere.

    Updates come from papermill's log-reader thread; display handles send
    ``update_display_data`` messages, which is safe from any thread.
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.handle = None

    def __enter__(self) -> _Progress:
        try:
            from IPython import get_ipython
            from IPython.display import display

            if get_ipython() is not None and getattr(get_ipython(), "kernel", None) is not None:
                self.handle = display({"text/plain": f"mlops {self.label}: starting…"}, raw=True, display_id=True)
        except Exception:
            self.handle = None
        return self

    def show(self, text: str) -> None:
        if self.handle is not None:
            self.handle.update({"text/plain": f"mlops {self.label}: {text}" if text else ""}, raw=True)
        elif text:
            print(f"mlops {self.label}: {text}", flush=True)

    def __exit__(self, *exc) -> None:
        return None
