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
