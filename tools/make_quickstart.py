"""Regenerate notebooks/quickstart.ipynb (kept as code so the notebook stays reviewable)."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = [
    new_markdown_cell(
        "# mlops_nb quickstart\n\n"
        "Track data preparation and two models with `%%mlops track` — no change to the cells' code."
    ),
    new_code_cell(
        "# Parameters (papermill and `mlops-nb run -p NAME VALUE` override these)\n"
        "C = 1.0\nmax_depth = 4\ntest_size = 0.25\nrandom_state = 0",
        metadata={"tags": ["parameters"]},
    ),
    new_code_cell("%load_ext mlops_nb\n%mlops init --project quickstart"),
    new_code_cell(
        "from sklearn.datasets import load_breast_cancer\n"
        "from sklearn.ensemble import RandomForestClassifier\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.metrics import f1_score, roc_auc_score\n"
        "from sklearn.model_selection import train_test_split\n"
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import StandardScaler\n\n"
        "df = load_breast_cancer(as_frame=True).frame\n"
        "df.shape"
    ),
    new_markdown_cell("Prepare the data: the run records `df` as input and the four splits as outputs."),
    new_code_cell(
        "%%mlops track --name prepare-data\n"
        "X_train, X_test, y_train, y_test = train_test_split(\n"
        "    df.drop(columns=\"target\"), df[\"target\"],\n"
        "    test_size=test_size, random_state=random_state, stratify=df[\"target\"],\n"
        ")"
    ),
    new_markdown_cell("Two models; their parameters, versions and metrics are captured from the code."),
    new_code_cell(
        "%%mlops track --name train-logreg --tag owner=ana\n"
        "clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500)).fit(X_train, y_train)\n"
        "accuracy = clf.score(X_test, y_test)\n"
        "f1 = f1_score(y_test, clf.predict(X_test))"
    ),
    new_code_cell(
        "%%mlops track --name train-forest --tag owner=ana\n"
        "forest = RandomForestClassifier(n_estimators=100, max_depth=max_depth, random_state=random_state)\n"
        "forest.fit(X_train, y_train)\n"
        "accuracy = forest.score(X_test, y_test)\n"
        "roc_auc = roc_auc_score(y_test, forest.predict_proba(X_test)[:, 1])"
    ),
    new_code_cell("%mlops runs --last 5"),
    new_markdown_cell(
        "Where did the forest come from? Its model version is its content fingerprint; lineage walks "
        "back through the training run to the data it was made from."
    ),
    new_code_cell("import mlops_nb\n\nmlops_nb.lineage(f\"model:{mlops_nb.fingerprint(forest)}\")"),
    new_markdown_cell("Is the test split distributed like the training split? `--save` keeps the check in the registry."),
    new_code_cell("%mlops drift X_train X_test --save"),
    new_markdown_cell(
        "## Registry: versions, a promotion policy, aliases\n\n"
        "The team's policy lives in `policy.toml` beside the registry: a production model needs an accuracy "
        "of at least 0.95 and may not be worse than the current production model by more than 0.02."
    ),
    new_code_cell(
        "from mlops_nb.registry import policy_path\n"
        "from mlops_nb.store import get_store\n\n"
        "policy = policy_path(get_store())\n"
        "policy.write_text(\n"
        "    '[aliases.production]\\n'\n"
        "    'metrics = [{name = \"accuracy\", min = 0.95}, {name = \"accuracy\", max_drop = 0.02}]\\n'\n"
        ")\n"
        "print(policy.read_text())"
    ),
    new_markdown_cell("Register both models as versions of `cancer` (a model already registered is not added twice)."),
    new_code_cell(
        "v_forest = mlops_nb.register(forest, name=\"cancer\", description=\"breast cancer classifier\")\n"
        "v_logreg = mlops_nb.register(clf, name=\"cancer\")\n"
        "v_forest, v_logreg"
    ),
    new_markdown_cell("The forest is not good enough for production: the gate refuses it, says why, and the refusal is audited."),
    new_code_cell(
        "try:\n"
        "    mlops_nb.promote(\"cancer\", v_forest.version, \"production\", reason=\"first candidate\")\n"
        "except mlops_nb.errors.PromotionRefused as refused:\n"
        "    print(refused)"
    ),
    new_markdown_cell("The logistic regression passes (IPython expands `{v_logreg.version}` in the magic line)."),
    new_code_cell("%mlops promote cancer {v_logreg.version} production --reason \"best accuracy\""),
    new_markdown_cell("A retrained candidate with stronger regularisation also passes the gates and is promoted…"),
    new_code_cell(
        "%%mlops track --name retrain-logreg --tag owner=ana\n"
        "clf_strong = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=500)).fit(X_train, y_train)\n"
        "accuracy = clf_strong.score(X_test, y_test)\n"
        "f1 = f1_score(y_test, clf_strong.predict(X_test))"
    ),
    new_code_cell(
        "v_retrained = mlops_nb.register(clf_strong, name=\"cancer\")\n"
        "%mlops promote cancer {v_retrained.version} production --reason \"retrained\""
    ),
    new_markdown_cell("…until a problem shows up in production: roll back to the previous holder, from the audit history."),
    new_code_cell("%mlops rollback cancer production --reason \"recall dropped on live data\"\nmlops_nb.get_model_version(\"cancer@production\")"),
    new_markdown_cell("Load the production model by its alias: the artifact's digest and the model's fingerprint are checked."),
    new_code_cell("model = mlops_nb.load_model(\"cancer@production\")\nmodel.score(X_test, y_test)"),
    new_markdown_cell("The registry panel (promote, approve, roll back, load and lineage buttons call the same API) and the audit trail:"),
    new_code_cell("%mlops registry cancer"),
    new_code_cell("%mlops audit cancer"),
    new_code_cell("%mlops audit --verify"),
    new_markdown_cell("All runs of this project, in the runs panel (filter with the search grammar, select runs to compare):"),
    new_code_cell("%mlops runs"),
]

nb = new_notebook(
    cells=cells,
    metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    },
)
path = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"
nbformat.validate(nb)
nbformat.write(nb, path)
print(f"wrote {path}")
