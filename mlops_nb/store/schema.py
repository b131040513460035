"""Tables of the registry database (SQLAlchemy Core, portable SQLite/PostgreSQL).

Timestamps are UNIX epoch seconds (float) so that both backends store and
compare them identically.  JSON columns hold small structured values.
Bump :data:`SCHEMA_VERSION` and add a step to ``migrations.MIGRATIONS`` for any
change to an existing table; new tables are created automatically.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

SCHEMA_VERSION = 2

# Python None stored as SQL NULL (not JSON null), so IS NULL works.
Json = JSON(none_as_null=True)

metadata = MetaData()

schema_info = Table(
    "schema_info",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("name", String(255)),
    Column("status", String(16), nullable=False),  # running/finished/failed/interrupted
    Column("start_time", Float, nullable=False),
    Column("end_time", Float),
    Column("duration", Float),
    Column("source", Text),
    Column("source_hash", String(64)),
    Column("notebook_path", Text),
    Column("execution_count", Integer),
    Column("environment", Json),
    Column("git_commit", String(64)),
    Column("git_dirty", Boolean),
    Column("error", Text),
    Column("user", String(255)),
    Column("job_run_id", String(32)),
    Column("batch_id", String(32)),
    # Stale / out-of-order / hidden-state input warnings: [{kind, name, message, cell}]
    Column("warnings", Json),
    # Who is recording a running run, so a store can tell when its process is gone.
    Column("host", String(255)),
    Column("pid", Integer),
    Column("process_start", Float),
    Index("ix_runs_project_start", "project_id", "start_time"),
    Index("ix_runs_status", "status"),
    Index("ix_runs_job_run", "job_run_id"),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text),  # JSON text for non-strings, the string itself for str
    Column("value_type", String(8)),  # str/int/float/bool/null/json: how to read ``value``
    Column("value_num", Float),  # numeric view (int/float/bool) for search in SQL
    Index("ix_params_key_num", "key", "value_num"),
)

metrics = Table(
    "metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=False),
    Column("key", String(255), nullable=False),
    Column("value", Float),
    Column("step", Integer),
    Column("timestamp", Float, nullable=False),
    Index("ix_metrics_run_key", "run_id", "key"),
)

# Last value of each metric of each run: what run search filters and sorts on.
latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Float),
    Column("step", Integer),
    Index("ix_latest_metrics_key_value", "key", "value"),
)

data_versions = Table(
    "data_versions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("shape", Json),
    Column("schema", Json),
    Column("profile", Json),
    Column("first_run_id", String(32)),
    Column("created_at", Float, nullable=False),
)

# Lineage edges: which data versions a run read (input) and produced (output).
run_data = Table(
    "run_data",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("direction", String(8), primary_key=True),  # input / output
    Column("name", String(255), primary_key=True),
    Column("digest", String(64), ForeignKey("data_versions.digest"), nullable=False),
    Index("ix_run_data_digest", "digest"),
)

# Snapshots: the bytes of a data version, as content-addressed chunks listed in a manifest
# (an artifact). ``pinned``: a registered model was trained on it, so gc keeps it.
data_snapshots = Table(
    "data_snapshots",
    metadata,
    Column("digest", String(64), ForeignKey("data_versions.digest"), primary_key=True),
    Column("manifest", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("rows", BigInteger),
    Column("chunks", Integer, nullable=False),
    Column("nbytes", BigInteger),  # in memory
    Column("stored_bytes", BigInteger),  # every chunk it lists
    Column("new_bytes", BigInteger),  # chunks no earlier snapshot had
    Column("pinned", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
)

snapshot_chunks = Table(
    "snapshot_chunks",
    metadata,
    Column("digest", String(64), ForeignKey("data_snapshots.digest"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("chunk", String(64), nullable=False),
    Column("rows", BigInteger),
    Column("size", BigInteger),
    Index("ix_snapshot_chunks_chunk", "chunk"),
)

# A chunk a snapshot writer is about to rely on: gc never deletes it while the lease stands.
chunk_leases = Table(
    "chunk_leases",
    metadata,
    Column("lease", String(32), primary_key=True),
    Column("chunk", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
    Index("ix_chunk_leases_chunk", "chunk"),
)

# What a tracked cell read besides data and models, so that `reproduce` can rebuild it:
# {name: {kind: import|module|value|model|unknown, ...}} (see mlops_nb.tracking.context).
run_contexts = Table(
    "run_contexts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("names", Json),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("flavor", String(32), nullable=False),  # skops / joblib
    Column("class_name", String(255), nullable=False),
    Column("params", Json),
    Column("artifact_digest", String(64), nullable=False),
    Column("artifact_size", Integer),
    Column("run_id", String(32)),
    Column("created_at", Float, nullable=False),
)

run_models = Table(
    "run_models",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("digest", String(64), ForeignKey("model_versions.digest"), nullable=False),
    Index("ix_run_models_digest", "digest"),
)

# ---- model registry -------------------------------------------------------

registered_models = Table(
    "registered_models",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("description", Text),
    Column("tags", Json),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("user", String(255)),
)

# Version N of a registered model: one model version (by digest) under a name.
registry_versions = Table(
    "registry_versions",
    metadata,
    Column("name", String(255), ForeignKey("registered_models.name"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("model_digest", String(64), ForeignKey("model_versions.digest"), nullable=False),
    Column("run_id", String(32)),
    Column("description", Text),
    Column("tags", Json),
    Column("created_at", Float, nullable=False),
    Column("user", String(255)),
    UniqueConstraint("name", "model_digest", name="uq_registry_versions_digest"),
)

# One alias names one version of one model.
model_aliases = Table(
    "model_aliases",
    metadata,
    Column("name", String(255), ForeignKey("registered_models.name"), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("user", String(255)),
)

# A request to move an alias that the policy says needs approval.
promotion_requests = Table(
    "promotion_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("alias", String(64), nullable=False),
    Column("requester", String(255), nullable=False),
    Column("reason", Text),
    Column("status", String(16), nullable=False),  # pending/approved/rejected/superseded
    Column("approvals", Json),  # [{user, at, comment}]
    Column("created_at", Float, nullable=False),
    Column("decided_at", Float),
    Index("ix_promotion_requests_model", "name", "status"),
)

# Append-only; each event carries the hash of the previous one (tamper evidence).
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("timestamp", Float, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(255), nullable=False),
    Column("reason", Text),
    Column("payload", Json),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # HMAC-SHA256 of ``hash`` with MLOPS_NB_AUDIT_KEY when set: without the key
    # nobody can rewrite the chain forward and keep it valid.
    Column("mac", String(64)),
)

drift_checks = Table(
    "drift_checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("reference", Text, nullable=False),
    Column("reference_digest", String(64)),
    Column("current_digest", String(64)),
    Column("n_columns", Integer, nullable=False),
    Column("n_drifted", Integer, nullable=False),
    Column("dataset_drift", Boolean, nullable=False),
    Column("result", Json),
)

# ---- notebook jobs (validate / run / batch / schedule) ---------------------

# A validation result, keyed by the notebook's content hash and its parameters,
# so that scheduling can require a passing validation of that exact notebook.
job_validations = Table(
    "job_validations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("notebook_path", Text, nullable=False),
    Column("notebook_hash", String(64), nullable=False),
    Column("params_hash", String(64), nullable=False),
    Column("parameters", Json),
    Column("passed", Boolean, nullable=False),
    Column("checks", Json, nullable=False),  # [{name, status, reason, details}]
    Column("created_at", Float, nullable=False),
    Column("duration", Float),
    Column("user", String(255)),
    Index("ix_job_validations_hash", "notebook_hash", "params_hash"),
)

# One papermill execution of a notebook (from run, batch or the scheduler).
job_runs = Table(
    "job_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("notebook_path", Text, nullable=False),
    Column("notebook_hash", String(64), nullable=False),
    Column("parameters", Json),
    Column("kernel", String(255)),
    Column("environment", Json),
    Column("status", String(16), nullable=False),  # running/finished/failed/timeout
    Column("start_time", Float, nullable=False),
    Column("end_time", Float),
    Column("duration", Float),
    Column("output_digest", String(64)),  # executed notebook in the artifact store
    Column("output_url", Text),
    Column("error", Text),
    Column("failed_cell", Json),  # {index, execution_count, line, ename, evalue}
    Column("run_ids", Json),  # runs recorded by %%mlops track cells inside it
    Column("batch_id", String(32)),
    Column("schedule_name", String(255)),
    Column("firing_id", Integer),
    Column("attempt", Integer),
    Column("user", String(255)),
    Column("host", String(255)),
    Index("ix_job_runs_start", "start_time"),
    Index("ix_job_runs_batch", "batch_id"),
    Index("ix_job_runs_firing", "firing_id"),
)

job_batches = Table(
    "job_batches",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("notebook_path", Text, nullable=False),
    Column("notebook_hash", String(64), nullable=False),
    Column("grid", Json, nullable=False),  # list of parameter combinations
    Column("backend", String(255), nullable=False),  # local:N or dask:ADDRESS
    Column("status", String(16), nullable=False),  # running/finished/failed
    Column("n_total", Integer, nullable=False),
    Column("n_failed", Integer),
    Column("start_time", Float, nullable=False),
    Column("end_time", Float),
    Column("user", String(255)),
)

job_schedules = Table(
    "job_schedules",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("notebook_path", Text, nullable=False),
    Column("notebook_hash", String(64), nullable=False),
    Column("cron", String(255), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("parameters", Json),
    Column("timeout", Float),
    Column("retries", Integer, nullable=False),
    Column("kernel", String(255)),
    Column("catchup", String(8), nullable=False),  # skip / one / all
    Column("paused", Boolean, nullable=False),
    Column("validation_id", String(32)),
    Column("forced", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),  # slots are counted from here
    Column("updated_at", Float, nullable=False),
    Column("user", String(255)),
)

# One row per (schedule, slot), written before the notebook starts: the unique
# constraint is what keeps two schedulers, or one restarted, from firing twice.
job_firings = Table(
    "job_firings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("schedule_name", String(255), nullable=False),
    Column("slot", Float, nullable=False),
    Column("status", String(16), nullable=False),  # pending/running/retrying/finished/failed/timeout/interrupted/refused
    Column("attempts", Integer, nullable=False),
    Column("job_run_ids", Json),
    Column("error", Text),
    Column("owner", String(255)),  # host:pid of the scheduler that claimed the slot
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    UniqueConstraint("schedule_name", "slot", name="uq_job_firings_slot"),
    Index("ix_job_firings_status", "status"),
)

# ---- monitoring (model monitors, their checks, alerts) ----------------------

# A monitor: on a cron schedule, compare the newest data with a model's training
# data (and its metric when labels come with the data); retrain when a threshold is crossed.
monitors = Table(
    "monitors",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("model", String(255), nullable=False),  # NAME@ALIAS the monitor watches and may move
    Column("data", Text, nullable=False),  # a glob (newest match) or a notebook writing output_path
    Column("cron", String(255), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("drift_share", Float),  # trigger when this share of columns drifted
    Column("metric", String(255)),
    Column("metric_min", Float),  # trigger when the metric falls below (or rises above) these
    Column("metric_max", Float),
    Column("label_column", String(255)),
    Column("retrain", Text, nullable=False),  # the retrain notebook
    Column("retrain_hash", String(64)),
    Column("parameters", Json),  # extra parameters of the retrain notebook
    Column("eval_fraction", Float, nullable=False),
    Column("timeout", Float),
    Column("paused", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("user", String(255)),
)

# One check of a monitor: the numbers, whether it triggered, and what was decided.
monitor_checks = Table(
    "monitor_checks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor", String(255), nullable=False),
    Column("firing_id", Integer),
    Column("created_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("model", String(255)),
    Column("version", Integer),  # the champion, pinned at the start of the check
    Column("data_path", Text),
    Column("data_digest", String(64)),
    Column("rows", Integer),
    Column("drift_share", Float),
    Column("n_drifted", Integer),
    Column("metric", String(255)),
    Column("metric_value", Float),
    Column("triggered", Boolean),
    Column("decision", String(32)),  # ok/no_new_data/promoted/kept_champion/kept_challenger/pending_approval/retrain_failed/error
    Column("reason", Text),
    Column("challenger_version", Integer),
    Column("job_run_id", String(32)),
    Column("payload", Json),
    Index("ix_monitor_checks_monitor", "monitor", "created_at"),
)

# What needs a human's eye: a triggered monitor, its decision and reason, or a failed check.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),
    Column("monitor", String(255), nullable=False),
    Column("check_id", Integer),
    Column("severity", String(16), nullable=False),  # info/warning/error
    Column("kind", String(32), nullable=False),  # drift/metric/error
    Column("model", String(255)),
    Column("version", Integer),
    Column("decision", String(32)),
    Column("message", Text, nullable=False),
    Column("payload", Json),
    Column("acknowledged", Boolean, nullable=False),
    Index("ix_alerts_created", "created_at"),
)
