"""Real models trained in tracked runs, and stores on SQLite and PostgreSQL, for the registry tests."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import mlops_nb
from mlops_nb.store import SqlStore

from pg_server import PostgresServer

X, Y = load_iris(return_X_y=True)


def train(store: SqlStore, C: float, *, name: str = "train", warnings=None) -> tuple[str, LogisticRegression, str]:
    """Fit a model in a tracked run; return (model digest, model, run id)."""
    with mlops_nb.track(name=name, inputs={"iris": X}, store=store) as run:
        model = LogisticRegression(C=C, max_iter=300).fit(X, Y)
        mlops_nb.log_metric("accuracy", float(model.score(X, Y)))
        mlops_nb.log_metric("rmse", float(np.sqrt(np.mean((model.predict(X) - Y) ** 2))))
        digest = mlops_nb.log_model(model, "clf")
    if warnings:
        with store.engine.begin() as conn:
            from mlops_nb.store import schema

            conn.execute(schema.runs.update().where(schema.runs.c.id == run.id).values(warnings=warnings))
    return digest, model, run.id


class PgDatabases:
    """One PostgreSQL server for the session; a fresh database per store."""

    def __init__(self) -> None:
        self.server = PostgresServer()
        self.url = self.server.start()

    def new_url(self) -> str:
        from sqlalchemy import create_engine, text

        name = "t" + uuid.uuid4().hex[:12]
        engine = create_engine(self.url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
        engine.dispose()
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="session")
def pg_databases():
    dbs = PgDatabases()
    yield dbs
    dbs.stop()
