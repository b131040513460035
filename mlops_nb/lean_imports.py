"""Keep processes of ours from paying for imports that validate nothing they check.

``nbformat`` validates notebooks with ``jsonschema``, whose format checkers
import ``rfc3987_syntax`` when it is installed (``jupyter-events`` pulls it
in): that import builds a Lark grammar and costs 1-1.3 s in every process
that reads a notebook -- papermill's child included.  The grammar checks
only the ``iri`` and ``iri-reference`` formats, which no nbformat schema
uses (v4 uses no ``format`` at all), so validation is the same without it.

Only for processes mlops_nb starts itself (the CLI, the papermill child),
never for a user's kernel.
"""

from __future__ import annotations

import sys

#: Modules whose only use in our processes is a format check no notebook schema asks for.
SKIPPED = frozenset({"rfc3987_syntax"})


class _Skip:  # a meta path finder by protocol (importlib.abc costs 7 ms to import)
    def find_spec(self, name, path=None, target=None):  # noqa: ANN001 - the finder protocol
        if name.partition(".")[0] in SKIPPED:
            raise ModuleNotFoundError(f"{name} is skipped by mlops_nb.lean_imports", name=name)
        return None


def skip_unused_format_checkers() -> None:
    """Make ``import rfc3987_syntax`` fail fast in this process (``jsonschema`` then skips the ``iri`` checks).

    Does nothing when it was imported already or the skip is installed.
    """
    if SKIPPED & sys.modules.keys() or any(isinstance(f, _Skip) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Skip())


def papermill_main() -> None:
    """``papermill`` with the skip installed: the child process of every job (``-c`` entry)."""
    import os

    from .processes import PARENT_ENV, die_with_parent

    if os.environ.get(PARENT_ENV, "").isdigit():
        die_with_parent(int(os.environ[PARENT_ENV]))
    skip_unused_format_checkers()
    from papermill.cli import papermill

    papermill(prog_name="papermill")
