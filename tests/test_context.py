"""What reproduce records of a cell's names besides data (tracking/context.py)."""

from __future__ import annotations

import math

from mlops_nb.tracking.context import describe, describe_names, rebuild_value


def test_plain_values_round_trip_and_names_are_classified():
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    for value in (0.1, 3, "text", None, True, [1, 2.5, "a"], (1, (2, 3)), {"a": [1, {"b": None}]}, float("inf")):
        found = describe(value)
        assert found["kind"] == "value", value
        back = rebuild_value(found["value"])
        assert back == value or (isinstance(value, float) and math.isinf(back)), value
    assert describe(np) == {"kind": "module", "module": "numpy"}
    assert describe(LogisticRegression)["kind"] == "import"
    assert describe(lambda x: x)["why"] == "defined in the notebook"
    assert describe(object())["kind"] == "unknown"
    names = describe_names({"C": 1.0, "m": object(), "df": None}, {"C", "m", "df"}, skip={"df"}, models={"m": "ab" * 16})
    assert names == {"C": {"kind": "value", "value": 1.0}, "m": {"kind": "model", "digest": "ab" * 16}}


def test_a_long_list_is_data_not_a_setting():
    found = describe(list(range(2_000_000)))  # looked at by its length, not walked nor serialised
    assert found == {"kind": "unknown", "type": "list", "why": "a large value (data, not a setting)"}
    nested = {"a": [[0] * 400 for _ in range(10)]}  # 4,000 elements in small pieces
    assert describe(nested)["why"] == "a large value (data, not a setting)"
