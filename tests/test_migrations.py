"""A registry written by schema version 1 opens, migrates and keeps everything it held."""

from __future__ import annotations

import json
import types
from pathlib import Path

from sqlalchemy import create_engine, select

from mlops_nb.store import SqlStore, schema

# The tables exactly as version 1 shipped them (kept as text: a frozen copy, not code to maintain).
V1 = Path(__file__).parent / "data" / "schema_v1.py.txt"


def _v1_metadata():
    module = types.ModuleType("schema_v1")
    exec(compile(V1.read_text(), str(V1), "exec"), module.__dict__)  # noqa: S102 - our own frozen file
    return module


def test_v1_registry_is_migrated_without_loss(tmp_path):
    v1 = _v1_metadata()
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    v1.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(v1.schema_info.insert().values(key="schema_version", value="1"))
        conn.execute(v1.projects.insert().values(id=1, name="p", created_at=1.0))
        conn.execute(v1.runs.insert().values(id="a1", project_id=1, name="fit", status="finished", start_time=1.0))
        conn.execute(v1.params.insert(), [
            {"run_id": "a1", "key": "C", "value": "0.5"}, {"run_id": "a1", "key": "flag", "value": "true"},
            {"run_id": "a1", "key": "solver", "value": "lbfgs"}, {"run_id": "a1", "key": "none", "value": "null"},
            {"run_id": "a1", "key": "cols", "value": json.dumps(["a", "b"])},
        ])  # fmt: skip
        conn.execute(v1.metrics.insert(), [
            {"run_id": "a1", "key": "loss", "value": 0.9, "step": 0, "timestamp": 1.0},
            {"run_id": "a1", "key": "loss", "value": 0.4, "step": 1, "timestamp": 2.0},
            {"run_id": "a1", "key": "accuracy", "value": 0.8, "step": None, "timestamp": 2.0},
        ])  # fmt: skip
        conn.execute(v1.audit_events.insert().values(
            timestamp=1.0, actor="a", action="x", target="t", prev_hash="0" * 64, hash="h" * 64))  # fmt: skip
    engine.dispose()

    store = SqlStore(url, str(tmp_path / "artifacts"))
    assert store.schema_version == schema.SCHEMA_VERSION
    run = store.get_run("a1")
    assert run["params"] == {"C": 0.5, "flag": True, "solver": "lbfgs", "none": None, "cols": ["a", "b"]}
    assert run["metrics"] == {"loss": 0.4, "accuracy": 0.8} and len(run["metric_history"]) == 3
    assert run["warnings"] is None and run["pid"] is None
    with store.engine.connect() as conn:
        latest = {r.key: (r.value, r.step) for r in conn.execute(select(schema.latest_metrics))}
    assert latest == {"loss": (0.4, 1), "accuracy": (0.8, None)}
    assert store.audit_log()[0]["mac"] is None
    store.close()
    again = SqlStore(url, str(tmp_path / "artifacts"))  # a second open has nothing left to do
    assert again.get_run("a1")["params"]["flag"] is True
    again.close()


def test_param_types_round_trip(store):
    store.start_run("e" * 32, "p")
    values = {"flag": True, "off": False, "none": None, "text": "true", "n": 3, "x": 0.25, "nan": float("nan"), "grid": {"a": [1, 2]}}
    store.finish_run("e" * 32, status="finished", params=values)
    got = store.get_run("e" * 32)["params"]
    assert got["text"] == "true" and got["flag"] is True and got["off"] is False and got["none"] is None
    assert got["n"] == 3 and isinstance(got["n"], int) and got["x"] == 0.25 and got["grid"] == {"a": [1, 2]}
    assert got["nan"] != got["nan"]  # NaN stays NaN
    assert store.list_runs()[0]["params"]["flag"] is True
