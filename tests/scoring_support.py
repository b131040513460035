"""Train and register churn models in a test's store (real tracked runs, real registry)."""

from __future__ import annotations

import mlops_nb
from mlops_nb.monitoring.datasets import FEATURES, LABEL, churn_frame, churn_pipeline


def train_churn(store, *, seed: int = 0, price_increase: float = 0.0, n: int = 3000, name: str = "churn", alias: str | None = "production"):
    """Fit the example pipeline in a tracked run and register it (optionally under ``alias``)."""
    data = churn_frame(n, seed=seed, price_increase=price_increase)
    train, test = data.iloc[: int(n * 0.75)], data.iloc[int(n * 0.75):]
    with mlops_nb.track(name="train-churn", inputs={"train": train[FEATURES + [LABEL]]}, store=store):
        model = churn_pipeline().fit(train[FEATURES], train[LABEL])
        mlops_nb.log_metric("accuracy", float(model.score(test[FEATURES], test[LABEL])))
        digest = mlops_nb.log_model(model, "model")
    return mlops_nb.register(digest, name=name, alias=alias, store=store)
