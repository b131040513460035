"""A small synthetic churn dataset with realistic drift, generated deterministically (no downloads).

Used by the example notebooks, the demo and the tests::

    train = churn_frame(4000, seed=0)                   # the world the model learns
    march = churn_frame(1500, seed=1, price_increase=15, start="2024-03-01")  # prices rose

``price_increase`` moves ``monthly_charges`` (data drift) and makes customers
more sensitive to price (concept drift: the old model's accuracy drops).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PLANS = ("basic", "standard", "premium")
FEATURES = ["tenure_months", "monthly_charges", "age", "plan", "paperless", "support_calls"]
LABEL = "churned"


def churn_frame(
    n: int = 4000,
    *,
    seed: int = 0,
    price_increase: float = 0.0,
    start: str = "2024-01-01",
    days: int = 28,
) -> pd.DataFrame:
    """``n`` customers joining over ``days`` days from ``start``, with the label ``churned``.

    Parameters
    ----------
    price_increase : float
        Added to every monthly charge (in currency units); above about 5 the
        drift tests flag ``monthly_charges``, and churn rises with it.
    """
    rng = np.random.default_rng(seed)
    plan = rng.choice(PLANS, size=n, p=[0.5, 0.35, 0.15])
    base = np.select([plan == "basic", plan == "standard"], [35.0, 65.0], 95.0)
    tenure = rng.gamma(2.0, 14.0, n).round().astype("int64")
    charges = (base + rng.normal(0, 8, n) + price_increase).round(2)
    age = rng.normal(42, 12, n).clip(18, 90).round(0)
    paperless = rng.random(n) < 0.6
    calls = rng.poisson(1.2 + 0.05 * price_increase, n).astype("int64")
    # Price sensitivity grows once prices rise: the relation the model learnt no longer holds.
    sensitivity = 0.045 + 0.004 * price_increase
    logit = -0.9 - 0.06 * tenure + sensitivity * (charges - 60) + 0.45 * calls + 0.3 * paperless - 0.01 * (age - 42)
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype("int64")
    joined = pd.Timestamp(start) + pd.to_timedelta(rng.integers(0, days * 24 * 3600, n), unit="s")
    frame = pd.DataFrame({
        "customer_id": np.arange(n, dtype="int64") + seed * 1_000_000,
        "joined": joined.sort_values().values,
        "tenure_months": tenure, "monthly_charges": charges, "age": age, "plan": plan,
        "paperless": paperless, "support_calls": calls, LABEL: churned,
    })  # fmt: skip
    return frame


def churn_pipeline(random_state: int = 0):
    """The model of the examples: one-hot plan + scaled numbers → logistic regression (a skops-safe pipeline)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numbers = ["tenure_months", "monthly_charges", "age", "support_calls", "paperless"]
    prep = ColumnTransformer([
        ("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ("num", StandardScaler(), numbers),
    ])  # fmt: skip
    return make_pipeline(prep, LogisticRegression(max_iter=1000, random_state=random_state))
