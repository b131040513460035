"""Regenerate notebooks/scheduled_retraining.ipynb and the monitoring part of drift_monitoring.ipynb.

The notebooks are kept as code so that they stay reviewable.  drift_monitoring.ipynb
keeps its first part (the drift story) as it is; everything from the
``## From drift to action`` heading on is rewritten here.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
KERNEL = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}

retraining = [
    new_markdown_cell(
        "# Scheduled retraining\n\n"
        "The notebook a monitor runs when new data crosses a threshold "
        "(see the end of `drift_monitoring.ipynb`). It is a plain job: parameters in one tagged cell, "
        "every name defined top to bottom, seeded randomness, a quality gate that fails the job, and at the end "
        "it registers its model as the next version of `churn`. The monitor then gives that version the "
        "alias `challenger`, scores champion and challenger on the same held-out new rows, and promotes the "
        "challenger only if it is better *and* the registry's policy (`policy.toml`) lets it.\n\n"
        "```bash\n"
        "mlops-nb validate notebooks/scheduled_retraining.ipynb\n"
        "mlops-nb monitor add churn-weekly --model churn@production --data 'incoming/*.parquet' \\\n"
        "    --cron '0 6 * * 1' --drift-share 0.3 --metric accuracy --min 0.8 --label-column churned \\\n"
        "    --retrain notebooks/scheduled_retraining.ipynb\n"
        "mlops-nb scheduler                       # fires monitors and schedules on their cron\n"
        "mlops-nb monitor check churn-weekly      # or fire it now\n"
        "mlops-nb monitor history churn-weekly; mlops-nb alerts; mlops-nb audit churn\n"
        "```\n\n"
        "Run by hand (no `data_path`), it trains on a bundled month of drifted data."
    ),
    new_code_cell(
        "# Parameters (the monitor sets data_path; papermill and `mlops-nb run -p NAME VALUE` override these)\n"
        'data_path = ""\n'
        'model_name = "churn"\n'
        'label = "churned"\n'
        "test_size = 0.25\n"
        "min_accuracy = 0.75\n"
        "random_state = 0",
        metadata={"tags": ["parameters"]},
    ),
    new_code_cell("%load_ext mlops_nb\n%mlops init --project churn"),
    new_code_cell(
        "import pandas as pd\n"
        "from sklearn.model_selection import train_test_split\n\n"
        "import mlops_nb\n"
        "from mlops_nb.monitoring.datasets import FEATURES, churn_frame, churn_pipeline\n\n"
        "# The data the monitor hands over; its fingerprint in the run says exactly which version trained the model.\n"
        "df = pd.read_parquet(data_path) if data_path else churn_frame(3000, seed=11, price_increase=20, start=\"2024-03-01\")\n"
        "df.shape"
    ),
    new_code_cell(
        "%%mlops track --name retrain-churn\n"
        "X_train, X_test, y_train, y_test = train_test_split(\n"
        "    df[FEATURES], df[label], test_size=test_size, random_state=random_state, stratify=df[label]\n"
        ")\n"
        "model = churn_pipeline(random_state).fit(X_train, y_train)\n"
        "accuracy = model.score(X_test, y_test)"
    ),
    new_markdown_cell("Quality gate: a model below the floor fails the job (the monitor records `retrain_failed`) and is never registered."),
    new_code_cell(
        "if accuracy < min_accuracy:\n"
        "    raise RuntimeError(f\"accuracy {accuracy:.3f} is below the gate {min_accuracy}: not registering\")\n"
        "print(f\"accuracy {accuracy:.3f} on {len(X_test)} held-out rows: passed the gate\")"
    ),
    new_markdown_cell("Register the model: the next version of the model the monitor watches. Promotion is the monitor's decision, not this notebook's."),
    new_code_cell(
        "version = mlops_nb.register(model, name=model_name, description=f\"retrained on {data_path or 'bundled data'}\")\n"
        "version"
    ),
]

monitoring = [
    new_markdown_cell(
        "## From drift to action\n\n"
        "The drift check says *that* the data moved; the model registry and a monitor decide what to do about it. "
        "Register the model, give it the alias `production`, and score new files with it: every batch is a "
        "recorded scoring run (model version, input fingerprint, rows, drift against the training data)."
    ),
    new_code_cell(
        "from pathlib import Path\n\n"
        "from mlops_nb.monitoring.datasets import FEATURES, churn_frame, churn_pipeline\n\n"
        "history = churn_frame(4000, seed=random_state)\n"
        "holdout = churn_frame(1000, seed=random_state + 100)"
    ),
    new_code_cell(
        "%%mlops track --name train-churn-pipeline\n"
        "pipeline = churn_pipeline().fit(history[FEATURES], history[\"churned\"])\n"
        "accuracy = pipeline.score(holdout[FEATURES], holdout[\"churned\"])"
    ),
    new_code_cell(
        "# The policy beside the registry: production needs accuracy >= 0.75 (training run's metric).\n"
        "from mlops_nb.registry import policy_path\n"
        "from mlops_nb.store import get_store\n\n"
        "policy_path(get_store()).write_text(\n"
        "    '[aliases.production]\\nmetrics = [{name = \"accuracy\", min = 0.75}]\\n'\n"
        ")\n"
        "champion = mlops_nb.register(pipeline, name=\"churn\", alias=\"production\", reason=\"first model\")\n"
        "champion"
    ),
    new_markdown_cell("Score this week's customers with `churn@production` (resolved once to a fixed version)."),
    new_code_cell(
        "Path(\"incoming\").mkdir(exist_ok=True)\n"
        "week1 = churn_frame(1500, seed=random_state + 1, start=\"2024-02-05\", days=7)\n"
        "week1.to_parquet(\"incoming/2024-02-05.parquet\")\n"
        "scored = mlops_nb.predict(\"churn@production\", \"incoming/2024-02-05.parquet\", output=\"scores/2024-02-05.parquet\", keep=[\"customer_id\"])\n"
        "print(scored.summary())\n"
        "scored.predictions.head(3)"
    ),
    new_markdown_cell(
        "The same from a shell: `mlops-nb predict churn@production --input new.csv --output scores.csv`. "
        "`mlops-nb serve churn@production --port 5000` serves it over HTTP (MLflow's `/invocations` JSON) "
        "and follows the alias: when `production` moves, the server swaps versions without dropping a request.\n\n"
        "Now a **monitor**: on each cron slot it takes the newest file, compares it with the model's training "
        "profile, measures accuracy when the labels have arrived, and retrains with `scheduled_retraining.ipynb` "
        "when a threshold is crossed."
    ),
    new_code_cell(
        "retrain = Path(retrain_notebook or \"scheduled_retraining.ipynb\")\n"
        "if not retrain.exists():  # run from elsewhere: the example next to the package\n"
        "    retrain = Path(mlops_nb.__file__).resolve().parents[1] / \"notebooks\" / \"scheduled_retraining.ipynb\"\n"
        "mlops_nb.monitor(\n"
        "    \"churn-weekly\", model=\"churn@production\", data=\"incoming/*.parquet\", cron=\"0 6 * * 1\",\n"
        "    drift_share=0.3, metric=\"accuracy\", min=0.8, label_column=\"churned\", retrain=retrain, replace=True,\n"
        ")\n"
        "first = mlops_nb.check_monitor(\"churn-weekly\")\n"
        "first"
    ),
    new_markdown_cell(
        "A month later prices have risen again: the newest file has drifted, and customers react more to price. "
        "The check retrains, races champion against challenger on held-out new rows, and lets the policy decide."
    ),
    new_code_cell(
        "march = churn_frame(3000, seed=random_state + 2, price_increase=price_increase + 8, start=\"2024-03-04\", days=28)\n"
        "march.to_parquet(\"incoming/2024-03-04.parquet\")\n"
        "decision = mlops_nb.check_monitor(\"churn-weekly\")\n"
        "print(decision.decision, \"—\", decision.reason)"
    ),
    new_code_cell("mlops_nb.alerts()[[\"created_at\", \"monitor\", \"model\", \"version\", \"decision\", \"message\"]]"),
    new_code_cell("mlops_nb.monitor_history(\"churn-weekly\")[[\"version\", \"rows\", \"drift_share\", \"metric_value\", \"decision\", \"challenger_version\"]]"),
    new_markdown_cell("The audit trail keeps the automatic decision with its reason, next to the alias moves it caused."),
    new_code_cell("%mlops audit churn"),
    new_markdown_cell(
        "The next batch is scored by the winner: `churn@production` now resolves to the retrained version "
        "(a running `mlops-nb serve churn@production` has swapped to it by itself)."
    ),
    new_code_cell("print(mlops_nb.predict(\"churn@production\", \"incoming/2024-03-04.parquet\").summary())"),
]


def _stable_ids(cells, prefix: str) -> None:
    # Fixed cell ids: regenerating gives the same file (and the same notebook hash for validations).
    for i, cell in enumerate(cells):
        cell.id = f"{prefix}-{i:02d}"


def write_retraining() -> None:
    _stable_ids(retraining, "retrain")
    nbformat.write(new_notebook(cells=retraining, metadata=KERNEL), ROOT / "notebooks" / "scheduled_retraining.ipynb")


def write_monitoring() -> None:
    path = ROOT / "notebooks" / "drift_monitoring.ipynb"
    nb = nbformat.read(path, as_version=4)
    keep = []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## From drift to action"):
            break
        keep.append(cell)
    params = next(c for c in keep if "parameters" in c.metadata.get("tags", []))
    if "retrain_notebook" not in params.source:
        params.source += '\nretrain_notebook = ""  # the retrain notebook the monitor runs (default: the example beside this one)'
    _stable_ids(monitoring, "monitor")
    nb.cells = keep + monitoring
    nbformat.write(nb, path)


if __name__ == "__main__":
    write_retraining()
    write_monitoring()
