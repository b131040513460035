"""The registry from the notebook and the terminal: RegistryPanel driven through its widgets, magics, CLI."""

from __future__ import annotations

import html

import pytest
from click.testing import CliRunner
from IPython.core.error import UsageError

import mlops_nb
from mlops_nb.cli import main
from mlops_nb.store import get_store
from mlops_nb.widgets.registry_panel import RegistryPanel

from registry_support import X, train

STRICT = '[aliases.production]\nmetrics = [{name = "accuracy", min = 0.9}]\n'


@pytest.fixture
def two_versions(mlops_home):
    store = get_store()
    strong, weak = train(store, 1.0)[0], train(store, 0.001)[0]
    mlops_nb.register(strong, name="iris")
    mlops_nb.register(weak, name="iris")
    return store


def test_panel_lists_models_and_promotes_through_the_policy(two_versions, mlops_home):
    store = two_versions
    (mlops_home / "policy.toml").write_text(STRICT)
    panel = RegistryPanel()
    assert panel.model.value == "iris" and [o[1] for o in panel.version.options] == [2, 1]
    assert "v2" in panel.versions_html.value and "accuracy=" in panel.versions_html.value
    panel.version.value, panel.alias.value, panel.reason.value = 2, "production", "try the small one"
    panel.promote_button.click()
    assert "refused" in panel.message.value and "below the minimum 0.9" in panel.message.value
    assert store.get_alias("iris", "production") is None
    assert mlops_nb.audit("iris")[-1]["action"] == "promotion_refused"  # the panel's refusal is audited too
    panel.version.value = 1
    panel.promote_button.click()
    assert "now points at v1" in panel.message.value and store.get_alias("iris", "production") == 1
    assert "@production" in panel.versions_html.value and "@production" in panel.model.options[0][0]
    mlops_nb.promote("iris", 2, "staging")
    mlops_nb.promote("iris", 1, "staging")
    panel.refresh()
    panel.alias.value = "staging"
    panel.rollback_button.click()
    assert "rolled back to v2" in panel.message.value and store.get_alias("iris", "staging") == 2


def test_panel_approves_a_pending_request(two_versions, mlops_home, monkeypatch):
    store = two_versions
    (mlops_home / "policy.toml").write_text('[aliases.production]\napprovers = ["li"]\n')
    pending = mlops_nb.promote("iris", 1, "production", actor="maria")
    panel = RegistryPanel(name="iris")
    assert [o[1] for o in panel.request.options] == [pending.request_id]
    monkeypatch.setenv("MLOPS_NB_USER", "bob")
    panel.approve_button.click()
    assert "bob is not an approver" in panel.message.value and store.get_alias("iris", "production") is None
    monkeypatch.setenv("MLOPS_NB_USER", "li")
    panel.approve_button.click()
    assert "now points at v1" in panel.message.value and store.get_alias("iris", "production") == 1
    assert panel.request.options == ()


def test_panel_loads_into_the_notebook_and_shows_lineage(two_versions, shell):
    panel = RegistryPanel(shell=shell)
    panel.version.value, panel.variable.value = 1, "prod_model"
    panel.load_button.click()
    assert "loaded into prod_model" in panel.message.value
    assert (shell.user_ns["prod_model"].predict(X) == mlops_nb.load_model("iris:1").predict(X)).all()
    panel.lineage_button.click()
    assert "trained by run" in panel.detail.value and "read data" in panel.detail.value
    panel.variable.value = "not valid"
    panel.load_button.click()
    assert "valid variable name" in panel.message.value


def test_panel_static_fallback_and_empty_registry(mlops_home, two_versions):
    bundle = RegistryPanel()._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "<h4>iris</h4>" in bundle["text/html"] and "v2" in bundle["text/html"]
    assert bundle["text/plain"].startswith("RegistryPanel(iris (v2)")


def test_panel_on_an_empty_registry(mlops_home):
    panel = RegistryPanel()
    assert "No registered model yet" in panel.versions_html.value
    panel.promote_button.click()
    assert "✗" in panel.message.value


def test_magics_register_promote_rollback_audit(shell, mlops_home, capsys):
    store = get_store()
    shell.run_cell(
        "from sklearn.datasets import load_iris\nfrom sklearn.linear_model import LogisticRegression\n"
        "X, y = load_iris(return_X_y=True)"
    )
    shell.run_cell("%%mlops track --name fit\nclf = LogisticRegression(max_iter=300).fit(X, y)\naccuracy = clf.score(X, y)")
    shell.run_cell("%%mlops track --name fit2\nclf2 = LogisticRegression(C=0.1, max_iter=300).fit(X, y)\naccuracy = clf2.score(X, y)")
    capsys.readouterr()
    shell.run_line_magic("mlops", "register clf --name iris --alias production")
    assert capsys.readouterr().out.startswith("iris:1 @production LogisticRegression")
    shell.run_line_magic("mlops", "register clf2 --name iris")
    shell.run_line_magic("mlops", 'promote iris 2 production --reason "v2 is simpler"')
    assert "iris@production now points at v2 (was v1)" in capsys.readouterr().out
    shell.run_line_magic("mlops", "rollback iris production --from 1")
    assert "iris@production no longer points at v1 (now v2): nothing rolled back" in capsys.readouterr().out
    shell.run_line_magic("mlops", "rollback iris production --from 2")
    assert "rolled back to v1" in capsys.readouterr().out and store.get_alias("iris", "production") == 1
    frame = shell.run_line_magic("mlops", "versions iris")
    assert list(frame["version"]) == [2, 1] and frame.loc[frame.version == 1, "aliases"].item() == "production"
    assert list(shell.run_line_magic("mlops", "models")["model"]) == ["iris"]
    audit = shell.run_line_magic("mlops", "audit iris")
    assert list(audit["action"]) == ["register", "promote", "register", "promote", "rollback"]
    assert audit["reason"].tolist()[3] == "v2 is simpler"
    shell.run_line_magic("mlops", "audit --verify")
    assert "audit trail intact" in capsys.readouterr().out
    assert isinstance(shell.run_line_magic("mlops", "registry iris"), RegistryPanel)
    for bad, message in (
        ("promote iris 9 production", "no version 9"),
        ("promote iris 1 'bad alias'", "not a valid alias"),
        ("register nothing_here --name iris", "Cannot read the model reference"),
        ("register clf", "--name"),
        ('audit --name "x', "check the quotes"),
        ("models extra", "takes no arguments"),
        ("rollback iris staging", "no alias 'staging'"),
    ):
        with pytest.raises(UsageError, match=message):
            shell.run_line_magic("mlops", bad)


def test_cli_models_commands(two_versions, mlops_home, monkeypatch):
    runner = CliRunner()
    listed = runner.invoke(main, ["models"])
    assert listed.exit_code == 0 and "iris" in listed.output
    (mlops_home / "policy.toml").write_text(STRICT + 'approvers = ["li"]\n')
    refused = runner.invoke(main, ["models", "promote", "iris", "2", "production"])
    assert refused.exit_code == 1 and refused.output.startswith("Error: Promotion of iris:2 to 'production' refused")
    monkeypatch.setenv("MLOPS_NB_USER", "maria")
    requested = runner.invoke(main, ["models", "promote", "iris", "1", "production", "-m", "ready"])
    assert requested.exit_code == 0 and "waits for approval (request 1)" in requested.output
    assert "maria" in runner.invoke(main, ["models", "requests"]).output
    assert runner.invoke(main, ["models", "approve", "1"]).exit_code == 1  # own request
    monkeypatch.setenv("MLOPS_NB_USER", "li")
    approved = runner.invoke(main, ["models", "approve", "1", "-m", "lgtm"])
    assert approved.exit_code == 0 and "iris@production now points at v1" in approved.output
    shown = runner.invoke(main, ["models", "show", "iris@production"])
    assert shown.exit_code == 0 and "metric   accuracy" in shown.output and "data     iris" in shown.output
    versions = runner.invoke(main, ["models", "versions", "iris"])
    assert versions.exit_code == 0 and "production" in versions.output
    digest = mlops_nb.get_model_version("iris:2").digest
    registered = runner.invoke(main, ["models", "register", digest[:12], "--name", "iris-small"])
    assert registered.exit_code == 0 and "iris-small:1 registered" in registered.output
    assert runner.invoke(main, ["models", "remove-alias", "iris", "production"]).exit_code == 0
    missing = runner.invoke(main, ["models", "versions", "nope"])
    assert missing.exit_code == 1 and "No registered model 'nope'" in missing.output


def test_panel_shows_the_models_monitoring_alerts(two_versions, mlops_home, tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    from mlops_nb.errors import MonitorError

    mlops_nb.promote("iris", 1, "production")
    retrain = tmp_path / "retrain.ipynb"
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nbformat.write(new_notebook(cells=[new_code_cell('data_path = ""', metadata={"tags": ["parameters"]})], metadata=kernel), retrain)
    (tmp_path / "incoming").mkdir()
    mlops_nb.monitor("iris-watch", model="iris@production", data=str(tmp_path / "incoming" / "*.csv"), retrain=retrain, drift_share=0.5)
    with pytest.raises(MonitorError):
        mlops_nb.check_monitor("iris-watch")  # nothing arrived yet: recorded as an error alert
    panel = RegistryPanel(name="iris")
    assert "iris-watch" in panel.alerts_html.value and "No .parquet or .csv file matches" in panel.alerts_html.value
    assert "iris-watch" in panel.static_html()


def test_panel_says_when_local_records_are_not_in_the_registry_yet(two_versions):
    from mlops_nb.tracking import spool

    from sidebar_support import spooled_run

    spooled_run(two_versions, "offline", reason="connection refused (test)")
    panel = RegistryPanel()  # the configured registry, as %mlops registry opens it
    note = html.unescape(panel.spool_note.value)
    assert "1 local record(s) of 1 run(s) are not in the registry yet (registry unreachable: connection refused (test))" in note
    assert note in html.unescape(panel.static_html())
    assert spool.replay(two_versions.url) == (1, None)
    panel.refresh_button.click()
    assert panel.spool_note.value == "" and panel.spool_note.layout.display == "none"
