"""Stale, hidden-state and out-of-order inputs flagged on the run, in a real kernel with cell ids.

The kernel gets cells as JupyterLab sends them (``cellId``, ``deletedCells``),
in the order a user clicks them, and the saved notebook on disk for the cell
order (``MLOPS_NB_NOTEBOOK``).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from capture_kernel import flush, kernel_session, output_text

KERNEL = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


class Session:
    """A notebook file, its kernel, and the runs it records."""

    def __init__(self, cells: dict[str, str], tmp_path: Path, env: dict[str, str]) -> None:
        self.nb = new_notebook(metadata=KERNEL)
        for cell_id, source in cells.items():
            cell = new_code_cell(source)
            cell.id = cell_id
            self.nb.cells.append(cell)
        self.path = tmp_path / "session.ipynb"
        self.save()
        self.env = {**env, "MLOPS_NB_NOTEBOOK": str(self.path)}
        self.cwd = tmp_path

    def save(self) -> None:
        nbformat.write(self.nb, self.path)

    def cell(self, cell_id: str):
        return next(c for c in self.nb.cells if c.id == cell_id)

    def run(self, client, *cell_ids: str) -> str:
        text = ""
        for cell_id in cell_ids:
            cell = self.cell(cell_id)
            client.execute_cell(cell, self.nb.cells.index(cell))
            text = output_text(cell)
        flush(client)  # the run is written in the background; wait before reading the store here
        return text

    def edit(self, cell_id: str, source: str) -> None:
        self.cell(cell_id).source = source
        self.save()

    def delete(self, client, cell_id: str) -> None:
        self.nb.cells.remove(self.cell(cell_id))
        client.deleted_cells.append(cell_id)
        self.save()


def _last_run(store, name: str):
    rows = [r for r in store.list_runs() if r["name"] == name]
    return store.get_run(rows[0]["id"])  # newest first


def test_stale_input_after_an_upstream_cell_changed(store, tmp_path, kernel_env):
    s = Session(
        {
            "load": "%load_ext mlops_nb\nimport pandas as pd\ndf = pd.DataFrame({'a': [1.0, 2.0, 3.0]})",
            "prep": "X_train = df * 2",
            "train": "%%mlops track --name train\nfit_loss = float(X_train['a'].sum()) / 100",
        },
        tmp_path, kernel_env,
    )  # fmt: skip
    with kernel_session(s.nb, env=s.env, cwd=s.cwd) as client:
        out = s.run(client, "load", "prep", "train")
        assert "⚠" not in out and _last_run(store, "train")["warnings"] is None  # straight run: clean
        s.edit("load", "%load_ext mlops_nb\nimport pandas as pd\ndf = pd.DataFrame({'a': [10.0, 20.0, 30.0]})")
        s.run(client, "load")
        load_count = s.cell("load").execution_count
        out = s.run(client, "train")  # X_train not recomputed from the new df
        assert f"stale: X_train was made from df before df changed (cell [{load_count}])" in out
        (warning,) = _last_run(store, "train")["warnings"]
        assert warning == {
            "kind": "stale", "name": "X_train", "cell": "load",
            "message": f"stale: X_train was made from df before df changed (cell [{load_count}])",
        }  # fmt: skip
        s.run(client, "prep")
        out = s.run(client, "train")  # recomputed: clean again
        assert "⚠" not in out and _last_run(store, "train")["warnings"] is None


def test_rerunning_an_upstream_cell_that_gives_the_same_content_is_not_stale(store, tmp_path, kernel_env):
    """Values are compared, not only re-runs: the same data recomputed leaves what was made from it current."""
    s = Session(
        {
            "load": "%load_ext mlops_nb\nimport numpy as np\nimport pandas as pd\ndf = pd.DataFrame({'a': [1.0, 2.0, 3.0]})",
            "prep": "X_train = df * 2",
            "noise": "draws = np.random.default_rng().normal(size=3)",
            "derived": "noisy = draws + 1",
            "train": "%%mlops track --name train\nfit_loss = float(X_train['a'].sum()) / 100 + float(noisy.sum())",
        },
        tmp_path, kernel_env,
    )  # fmt: skip
    with kernel_session(s.nb, env=s.env, cwd=s.cwd) as client:
        s.run(client, "load", "prep", "noise", "derived", "train")
        out = s.run(client, "load", "train")  # the same cell again: the same frame
        assert "⚠" not in out and _last_run(store, "train")["warnings"] is None
        s.edit("load", "%load_ext mlops_nb\nimport numpy as np\nimport pandas as pd\n# same data, new spelling\n"
                       "df = pd.DataFrame({'a': [1.0, 2.0, 3.0]})")  # fmt: skip
        out = s.run(client, "load", "train")
        assert "⚠" not in out and _last_run(store, "train")["warnings"] is None
        out = s.run(client, "noise", "train")  # new random draws: noisy is stale, X_train is not
        noise_count = s.cell("noise").execution_count
        assert f"stale: noisy was made from draws before draws changed (cell [{noise_count}])" in out
        assert [w["name"] for w in _last_run(store, "train")["warnings"]] == ["noisy"]
        s.run(client, "load")  # a changed frame after an unchanged re-run is still caught
        s.edit("load", "%load_ext mlops_nb\nimport numpy as np\nimport pandas as pd\ndf = pd.DataFrame({'a': [9.0, 2.0, 3.0]})")
        s.run(client, "load", "derived")
        out = s.run(client, "train")
        assert "stale: X_train was made from df before df changed" in out
        assert [w["name"] for w in _last_run(store, "train")["warnings"]] == ["X_train"]


def test_linear_mutation_below_is_not_stale(store, tmp_path, kernel_env):
    """A later cell changing df is ordinary top-to-bottom flow, not staleness."""
    s = Session(
        {
            "load": "%load_ext mlops_nb\nimport pandas as pd\ndf = pd.DataFrame({'a': [1.0, 2.0]})",
            "prep": "X = df[['a']].copy()",
            "mutate": "df['b'] = df['a'] * 2",
            "train": "%%mlops track --name train\nfit_loss = float(X['a'].mean())",
        },
        tmp_path, kernel_env,
    )  # fmt: skip
    with kernel_session(s.nb, env=s.env, cwd=s.cwd) as client:
        s.run(client, "load", "prep", "mutate", "train", "mutate", "train")
    assert all(store.get_run(r["id"])["warnings"] is None for r in store.list_runs())


def test_hidden_state_from_rerun_and_deleted_cells(store, tmp_path, kernel_env):
    s = Session(
        {
            "setup": "%load_ext mlops_nb\nthreshold = 0.5\nscale = 2.0",
            "extra": "offset = 1.0",
            "train": "%%mlops track --name train\nfit_loss = threshold * scale + offset",
        },
        tmp_path, kernel_env,
    )  # fmt: skip
    with kernel_session(s.nb, env=s.env, cwd=s.cwd) as client:
        s.run(client, "setup", "extra", "train")
        assert _last_run(store, "train")["warnings"] is None
        s.edit("setup", "%load_ext mlops_nb\nscale = 2.0")  # threshold no longer defined anywhere
        s.run(client, "setup")
        s.delete(client, "extra")
        out = s.run(client, "train")
        count = s.cell("setup").execution_count
    warnings = {w["name"]: w for w in _last_run(store, "train")["warnings"]}
    assert set(warnings) == {"threshold", "offset"}
    assert warnings["threshold"]["kind"] == "hidden" and warnings["threshold"]["cell"] == "setup"
    assert "re-run with source that no longer defines it" in warnings["threshold"]["message"]
    assert warnings["offset"] == {
        "kind": "hidden", "name": "offset", "cell": "extra",
        "message": "hidden state: offset was defined by a cell that has been deleted (cell [2])",
    }  # fmt: skip
    assert "hidden state: threshold" in out and "hidden state: offset" in out and count == 4


def test_out_of_order_definition_below(store, tmp_path, kernel_env):
    s = Session(
        {
            "setup": "%load_ext mlops_nb",
            "train": "%%mlops track --name train\nfit_loss = learning_rate * 10",
            "params": "learning_rate = 0.01",
        },
        tmp_path, kernel_env,
    )  # fmt: skip
    with kernel_session(s.nb, env=s.env, cwd=s.cwd) as client:
        s.run(client, "setup", "params", "train")
        run = _last_run(store, "train")
        s.nb.cells.append(new_code_cell("import sys\nprint(*(m in sys.modules for m in ('nbformat', 'pandas', 'numpy')))"))
        s.nb.cells[-1].id = "probe"
        # The saved notebook's order is read as plain JSON (importing nbformat costs a kernel
        # 1-3 s), and cells with no pandas or numpy objects import neither (0.2 s, 0.05 s).
        assert s.run(client, "probe").strip() == "False False False"
        s.nb.cells.append(new_code_cell(f"%mlops show {run['id'][:8]}"))
        s.nb.cells[-1].id = "show"
        s.save()
        from_show = s.run(client, "show")
    params_count = s.cell("params").execution_count
    message = f"out of order: learning_rate is defined by a cell below this one (cell [{params_count}])"
    assert run["warnings"] == [{"kind": "out_of_order", "name": "learning_rate", "cell": "params", "message": message}]
    assert "warnings" in from_show and message in from_show
