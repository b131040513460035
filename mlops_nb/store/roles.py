"""Team roles on a PostgreSQL registry: the database decides who may do what.

``install_roles`` (``mlops-nb admin init-roles``, run once by the role that owns the
tables) creates four group roles and makes the database itself enforce them:

* ``mlops_reader``: SELECT on every table;
* ``mlops_writer``: runs, data, model versions, registrations, promotion requests;
* ``mlops_approver``: approves requests for aliases whose policy names approvers;
* ``mlops_admin``: writer and approver, plus policy, direct alias moves and gc.

Aliases and promotion requests have no write privilege for anybody: they change
only inside ``SECURITY DEFINER`` functions that check the caller's role and the
policy's approver rule.  Audit events are insert-only for every role (UPDATE,
DELETE and TRUNCATE are revoked and refused by a trigger) and a trigger sets each
event's time, actor (``session_user``), previous hash and hash, so no client value
is trusted for them.  The "user" columns of runs, versions and jobs are stamped the
same way.  The policy lives in the ``mlops_policies`` table (versioned, audited,
loaded by admins only).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, text

from ..environment import on_behalf_of

ROLES = ("reader", "writer", "approver", "admin")
ROLES_VERSION = "1"
# The advisory lock that serialises appends to the audit chain (as SqlStore._lock_audit).
AUDIT_LOCK = 0x61756469

# Tables a writer changes freely (everything a run, a job, a monitor or a snapshot writes).
_WRITER_TABLES = (
    "projects", "runs", "run_tags", "params", "metrics", "latest_metrics", "data_versions", "run_data",
    "run_contexts", "run_models", "drift_checks", "job_validations", "job_runs", "job_batches",
    "job_schedules", "job_firings", "monitors", "monitor_checks", "alerts", "chunk_leases",
)  # fmt: skip
# Tables a writer adds to but never deletes from (the registry's history; gc is the admin's), and
# of those the ones a writer may also update (descriptions and tags; pinning training data).
# A version's row is never updated: an approval of NAME:VERSION stays an approval of that model.
_WRITER_APPEND = ("model_versions", "registered_models", "registry_versions", "data_snapshots", "snapshot_chunks")
_WRITER_UPDATE = ("registered_models", "data_snapshots")
# Tables whose "user" column (or requester) the database stamps with session_user.
_STAMPED = {
    "runs": "user", "registered_models": "user", "registry_versions": "user", "model_aliases": "user",
    "job_validations": "user", "job_runs": "user", "job_batches": "user", "job_schedules": "user",
    "monitors": "user", "promotion_requests": "requester",
}  # fmt: skip


def _functions(schema: str) -> str:
    """Trigger and SECURITY DEFINER functions; ``schema`` pins their search_path (no hijacking)."""
    path = f"SET search_path = {schema}, pg_temp"
    return f"""
CREATE TABLE IF NOT EXISTS mlops_policies (
    id serial PRIMARY KEY,
    body json NOT NULL,
    source text,
    loaded_by text NOT NULL DEFAULT session_user,
    loaded_at double precision NOT NULL DEFAULT extract(epoch from clock_timestamp())
);

CREATE OR REPLACE FUNCTION mlops_require(p_roles text[], p_what text) RETURNS void
LANGUAGE plpgsql STABLE {path} AS $f$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY p_roles LOOP
        IF pg_has_role(session_user, 'mlops_' || r, 'MEMBER') THEN RETURN; END IF;
    END LOOP;
    RAISE EXCEPTION '% needs the % role; % has not got it (an admin grants it: mlops-nb admin grant % %)',
        p_what, array_to_string(p_roles, ' or '), session_user, session_user, p_roles[1]
        USING ERRCODE = '42501';
END $f$;

CREATE OR REPLACE FUNCTION mlops_audit_hash(p_prev text, p_ts text, p_actor text, p_action text,
                                            p_target text, p_reason text, p_payload text) RETURNS text
LANGUAGE sql IMMUTABLE AS $f$
    SELECT encode(sha256(convert_to(
        length(p_prev) || ':' || p_prev || length(p_ts) || ':' || p_ts || length(p_actor) || ':' || p_actor
        || length(p_action) || ':' || p_action || length(p_target) || ':' || p_target
        || coalesce(length(p_reason) || ':' || p_reason, '-') || coalesce(length(p_payload) || ':' || p_payload, '-'),
        'UTF8')), 'hex')
$f$;

CREATE OR REPLACE FUNCTION mlops_audit_stamp() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER {path} AS $f$
DECLARE prev text;
BEGIN
    PERFORM pg_advisory_xact_lock({AUDIT_LOCK});
    SELECT hash INTO prev FROM audit_events ORDER BY id DESC LIMIT 1;
    NEW."timestamp" := extract(epoch from clock_timestamp());
    NEW.actor := session_user;
    NEW.prev_hash := coalesce(prev, repeat('0', 64));
    NEW.mac := NULL;
    NEW.hash := mlops_audit_hash(NEW.prev_hash, NEW."timestamp"::text, NEW.actor, NEW.action, NEW.target,
                                 NEW.reason, NEW.payload::text);
    RETURN NEW;
END $f$;

CREATE OR REPLACE FUNCTION mlops_audit_frozen() RETURNS trigger
LANGUAGE plpgsql AS $f$
BEGIN
    RAISE EXCEPTION 'audit events are insert-only: % refused for %', TG_OP, session_user USING ERRCODE = '42501';
END $f$;

CREATE OR REPLACE FUNCTION mlops_stamp_user() RETURNS trigger
LANGUAGE plpgsql AS $f$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW := jsonb_populate_record(NEW, jsonb_build_object(TG_ARGV[0], session_user::text));
    ELSE  -- who did it never changes afterwards
        NEW := jsonb_populate_record(NEW, jsonb_build_object(TG_ARGV[0], to_jsonb(OLD) -> TG_ARGV[0]));
    END IF;
    RETURN NEW;
END $f$;

CREATE OR REPLACE FUNCTION mlops_alias_rules(p_alias text) RETURNS jsonb
LANGUAGE sql STABLE {path} AS $f$
    SELECT coalesce((SELECT body::jsonb -> 'aliases' -> p_alias FROM mlops_policies ORDER BY id DESC LIMIT 1), '{{}}')
$f$;

CREATE OR REPLACE FUNCTION mlops_guarded(p_alias text) RETURNS boolean
LANGUAGE sql STABLE {path} AS $f$
    SELECT coalesce(jsonb_array_length(mlops_alias_rules(p_alias) -> 'approvers'), 0) > 0
$f$;

-- Point an alias at a version (NULL removes it); internal, no role check.
CREATE OR REPLACE FUNCTION mlops_put_alias(p_name text, p_alias text, p_version int, p_action text,
                                           p_reason text, p_payload jsonb) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER {path} AS $f$
DECLARE previous int; digest text;
BEGIN
    SELECT version INTO previous FROM model_aliases WHERE name = p_name AND alias = p_alias;
    SELECT model_digest INTO digest FROM registry_versions WHERE name = p_name AND version = p_version;
    IF p_version IS NOT NULL AND digest IS NULL THEN
        RAISE EXCEPTION 'model % has no version %', p_name, p_version USING ERRCODE = 'P0002';
    END IF;
    DELETE FROM model_aliases WHERE name = p_name AND alias = p_alias;
    IF p_version IS NOT NULL THEN
        INSERT INTO model_aliases (name, alias, version, updated_at, "user")
        VALUES (p_name, p_alias, p_version, extract(epoch from clock_timestamp()), session_user);
    END IF;
    INSERT INTO audit_events ("timestamp", actor, action, target, reason, payload, prev_hash, hash)
    VALUES (0, '', p_action, 'model:' || p_name, p_reason,
            (jsonb_build_object('alias', p_alias, 'version', p_version, 'previous_version', previous)
             || coalesce(p_payload, '{{}}') || jsonb_strip_nulls(jsonb_build_object('model_digest', digest)))::json, '', '');
    RETURN previous;
END $f$;
REVOKE ALL ON FUNCTION mlops_put_alias(text, text, int, text, text, jsonb) FROM PUBLIC;

CREATE OR REPLACE FUNCTION mlops_move_alias(p_name text, p_alias text, p_version int, p_action text,
                                            p_expected int, p_check boolean, p_reason text, p_payload json)
RETURNS jsonb LANGUAGE plpgsql SECURITY DEFINER {path} AS $f$
DECLARE previous int; guarded boolean := mlops_guarded(p_alias);
BEGIN
    IF p_action NOT IN ('promote', 'rollback', 'alias_removed') THEN
        RAISE EXCEPTION 'unknown alias action %', p_action USING ERRCODE = '22023';
    END IF;
    IF NOT guarded THEN
        PERFORM mlops_require(ARRAY['writer'], 'moving ' || p_name || '@' || p_alias);
    ELSIF p_action = 'rollback' THEN
        PERFORM mlops_require(ARRAY['approver', 'admin'], 'rolling back ' || p_name || '@' || p_alias);
    ELSE
        PERFORM mlops_require(ARRAY['admin'],
            'moving ' || p_name || '@' || p_alias || ' without an approval (its policy names approvers)');
    END IF;
    PERFORM pg_advisory_xact_lock({AUDIT_LOCK});
    IF NOT EXISTS (SELECT 1 FROM registered_models WHERE name = p_name) THEN
        RAISE EXCEPTION 'no registered model %', p_name USING ERRCODE = 'P0002';
    END IF;
    SELECT version INTO previous FROM model_aliases WHERE name = p_name AND alias = p_alias;
    IF p_check AND previous IS DISTINCT FROM p_expected THEN
        RETURN jsonb_build_object('moved', false, 'previous', previous);
    END IF;
    PERFORM mlops_put_alias(p_name, p_alias, p_version, p_action, p_reason, p_payload::jsonb);
    RETURN jsonb_build_object('moved', true, 'previous', previous);
END $f$;

CREATE OR REPLACE FUNCTION mlops_request_promotion(p_name text, p_version int, p_alias text, p_reason text,
                                                   p_payload json) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER {path} AS $f$
DECLARE rid int; now_ double precision := extract(epoch from clock_timestamp());
BEGIN
    PERFORM mlops_require(ARRAY['writer'], 'requesting a promotion');
    PERFORM pg_advisory_xact_lock({AUDIT_LOCK});
    UPDATE promotion_requests SET status = 'superseded', decided_at = now_
     WHERE name = p_name AND alias = p_alias AND status = 'pending';
    INSERT INTO promotion_requests (name, version, alias, requester, reason, status, approvals, created_at)
    VALUES (p_name, p_version, p_alias, session_user, p_reason, 'pending', '[]'::json, now_) RETURNING id INTO rid;
    INSERT INTO audit_events ("timestamp", actor, action, target, reason, payload, prev_hash, hash)
    VALUES (0, '', 'promotion_requested', 'model:' || p_name, p_reason,
            (jsonb_build_object('request_id', rid, 'alias', p_alias, 'version', p_version)
             || coalesce(p_payload::jsonb, '{{}}'))::json, '', '');
    RETURN rid;
END $f$;

-- Approve request p_id as session_user; the alias moves once enough approvers agreed.
CREATE OR REPLACE FUNCTION mlops_approve(p_id int, p_comment text, p_expected int, p_payload json) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER {path} AS $f$
DECLARE req promotion_requests%ROWTYPE; rules jsonb; v_approvals jsonb; holder int; previous int; needed int;
BEGIN
    PERFORM mlops_require(ARRAY['approver'], 'approving a promotion');
    PERFORM pg_advisory_xact_lock({AUDIT_LOCK});
    SELECT * INTO req FROM promotion_requests WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN RAISE EXCEPTION 'no promotion request %', p_id USING ERRCODE = 'P0002'; END IF;
    IF req.status <> 'pending' THEN
        RAISE EXCEPTION 'promotion request % is %, not pending', p_id, req.status USING ERRCODE = '55000';
    END IF;
    IF req.requester = session_user THEN
        RAISE EXCEPTION '% requested promotion % and cannot also approve it', session_user, p_id USING ERRCODE = '42501';
    END IF;
    rules := mlops_alias_rules(req.alias);
    IF jsonb_array_length(coalesce(rules -> 'approvers', '[]')) > 0
       AND NOT (rules -> 'approvers') ? session_user::text THEN
        RAISE EXCEPTION '% is not an approver for % (the policy names %)', session_user, req.alias, rules -> 'approvers'
            USING ERRCODE = '42501';
    END IF;
    v_approvals := coalesce(req.approvals::jsonb, '[]');
    IF EXISTS (SELECT 1 FROM jsonb_array_elements(v_approvals) a WHERE a ->> 'user' = session_user) THEN
        RAISE EXCEPTION '% already approved request %', session_user, p_id USING ERRCODE = '42501';
    END IF;
    v_approvals := v_approvals || jsonb_build_array(jsonb_build_object(
        'user', session_user::text, 'at', extract(epoch from clock_timestamp())::float8, 'comment', p_comment));
    needed := greatest(1, coalesce((rules ->> 'min_approvals')::int, 1));
    SELECT version INTO holder FROM model_aliases WHERE name = req.name AND alias = req.alias;
    IF holder IS DISTINCT FROM p_expected THEN
        RETURN jsonb_build_object('status', 'moved', 'previous', holder);
    END IF;
    IF jsonb_array_length(v_approvals) < needed THEN
        UPDATE promotion_requests SET approvals = v_approvals::json WHERE id = p_id;
        INSERT INTO audit_events ("timestamp", actor, action, target, reason, payload, prev_hash, hash)
        VALUES (0, '', 'approve', 'model:' || req.name, p_comment,
                (jsonb_build_object('request_id', p_id, 'alias', req.alias, 'version', req.version,
                                    'approvals', jsonb_array_length(v_approvals))
                 || coalesce(p_payload::jsonb, '{{}}'))::json, '', '');
        RETURN jsonb_build_object('status', 'pending_approval', 'previous', holder);
    END IF;
    UPDATE promotion_requests SET approvals = v_approvals::json, status = 'approved',
           decided_at = extract(epoch from clock_timestamp()) WHERE id = p_id;
    previous := mlops_put_alias(req.name, req.alias, req.version, 'promote', req.reason,
        jsonb_build_object('request_id', p_id, 'requester', req.requester,
                           'approvers', (SELECT jsonb_agg(a -> 'user') FROM jsonb_array_elements(v_approvals) a))
        || coalesce(p_payload::jsonb, '{{}}'));
    RETURN jsonb_build_object('status', 'promoted', 'previous', previous);
END $f$;

CREATE OR REPLACE FUNCTION mlops_load_policy(p_body json, p_source text) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER {path} AS $f$
DECLARE pid int;
BEGIN
    PERFORM mlops_require(ARRAY['admin'], 'loading the promotion policy');
    INSERT INTO mlops_policies (body, source) VALUES (p_body, p_source) RETURNING id INTO pid;
    INSERT INTO audit_events ("timestamp", actor, action, target, reason, payload, prev_hash, hash)
    VALUES (0, '', 'policy_loaded', 'policy', p_source,
            json_build_object('policy_version', pid, 'policy', p_body), '', '');
    RETURN pid;
END $f$;
"""


def _grants(schema: str) -> list[str]:
    """Triggers, revocations and grants; safe to run again (after new tables appeared)."""
    out = [
        "DROP TRIGGER IF EXISTS mlops_audit_stamp ON audit_events",
        "CREATE TRIGGER mlops_audit_stamp BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION mlops_audit_stamp()",
        "DROP TRIGGER IF EXISTS mlops_audit_frozen ON audit_events",
        "CREATE TRIGGER mlops_audit_frozen BEFORE UPDATE OR DELETE ON audit_events FOR EACH ROW EXECUTE FUNCTION mlops_audit_frozen()",
        "DROP TRIGGER IF EXISTS mlops_audit_truncate ON audit_events",
        "CREATE TRIGGER mlops_audit_truncate BEFORE TRUNCATE ON audit_events FOR EACH STATEMENT EXECUTE FUNCTION mlops_audit_frozen()",
    ]
    for table, column in _STAMPED.items():
        out.append(f"DROP TRIGGER IF EXISTS mlops_stamp_user ON {table}")
        out.append(
            f"CREATE TRIGGER mlops_stamp_user BEFORE INSERT OR UPDATE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION mlops_stamp_user('{column}')"
        )
    out += [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM PUBLIC",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM mlops_reader, mlops_writer, mlops_approver, mlops_admin",
        f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {schema} FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA {schema} TO mlops_reader",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO mlops_reader",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO mlops_writer, mlops_approver",
        f"GRANT INSERT, UPDATE, DELETE ON {', '.join(_WRITER_TABLES)} TO mlops_writer",
        f"GRANT INSERT ON {', '.join(_WRITER_APPEND)} TO mlops_writer",
        f"GRANT UPDATE ON {', '.join(_WRITER_UPDATE)} TO mlops_writer",
        "GRANT DELETE ON data_snapshots, snapshot_chunks TO mlops_admin",
        "GRANT INSERT ON audit_events TO mlops_writer, mlops_approver",
        "GRANT EXECUTE ON FUNCTION mlops_require(text[], text), mlops_audit_hash(text, text, text, text, text, text, text), "
        "mlops_alias_rules(text), mlops_guarded(text) TO mlops_reader",
        # Every team member may call the guarded functions: each checks the caller's role itself and
        # says which role is missing (a bare "permission denied for function" says nothing useful).
        "GRANT EXECUTE ON FUNCTION mlops_move_alias(text, text, int, text, int, boolean, text, json), "
        "mlops_request_promotion(text, int, text, text, json), mlops_approve(int, text, int, json), "
        "mlops_load_policy(json, text) TO mlops_reader",
    ]
    return out


def _ddl(conn: Connection, sql: str) -> None:
    """Run ``sql`` as written: the driver would read its ``%`` (RAISE formats, %ROWTYPE) as placeholders."""
    conn.exec_driver_sql(sql.replace("%", "%%"))


def install_roles(conn: Connection) -> None:
    """Create the roles, functions, triggers and grants (idempotent); run by the tables' owner."""
    schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK})
    _ddl(
        conn,
        "DO $$ BEGIN "
        + " ".join(
            f"IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mlops_{r}') THEN CREATE ROLE mlops_{r} NOLOGIN; END IF;"
            for r in ROLES
        )
        + " END $$"
    )
    for member, group in (("writer", "reader"), ("approver", "reader"), ("admin", "writer"), ("admin", "approver")):
        _ddl(conn, f"GRANT mlops_{group} TO mlops_{member}")
    _ddl(conn, _functions(schema))
    for statement in _grants(schema):
        _ddl(conn, statement)
    conn.execute(
        text(
            "INSERT INTO schema_info (key, value) VALUES ('roles', :v) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        ),
        {"v": ROLES_VERSION},
    )


def roles_installed(conn: Connection) -> bool:
    """Whether ``install_roles`` ran on this database."""
    return conn.execute(text("SELECT 1 FROM schema_info WHERE key = 'roles'")).first() is not None


def grant_role(conn: Connection, user: str, role: str, *, password: str | None = None) -> bool:
    """Give login role ``user`` the team role ``role`` (created as a login role if new); True if created."""
    if role not in ROLES:
        raise ValueError(role)
    quoted = conn.dialect.identifier_preparer.quote(user)
    created = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :u"), {"u": user}).first() is None
    if created:
        _ddl(conn, f"CREATE ROLE {quoted} LOGIN")
    if password is not None:
        literal = "'" + password.replace("'", "''") + "'"  # a utility statement takes no bound parameters
        _ddl(conn, f"ALTER ROLE {quoted} PASSWORD {literal}")
    _ddl(conn, f"GRANT mlops_{role} TO {quoted}")
    return created


def revoke_role(conn: Connection, user: str, role: str) -> None:
    """Take team role ``role`` away from ``user``."""
    if role not in ROLES:
        raise ValueError(role)
    _ddl(conn, f"REVOKE mlops_{role} FROM {conn.dialect.identifier_preparer.quote(user)}")


def members(conn: Connection) -> dict[str, list[str]]:
    """Login roles by team role they hold (directly or through another team role)."""
    rows = conn.execute(
        text(
            "SELECT r.rolname AS login, g.rolname AS team FROM pg_roles r CROSS JOIN pg_roles g "
            "WHERE r.rolcanlogin AND g.rolname = ANY(:teams) AND pg_has_role(r.oid, g.oid, 'MEMBER') "
            "AND NOT r.rolsuper ORDER BY 1"
        ),
        {"teams": [f"mlops_{r}" for r in ROLES]},
    ).all()
    out: dict[str, list[str]] = {r: [] for r in ROLES}
    for login, team in rows:
        out[team[len("mlops_"):]].append(login)
    return out


def roles_of(conn: Connection, user: str | None = None) -> list[str]:
    """Team roles ``user`` (default: this session's user) holds; a superuser holds all."""
    found = conn.execute(
        text("SELECT g FROM unnest(CAST(:teams AS text[])) g WHERE pg_has_role(coalesce(:u, session_user), g, 'MEMBER')"),
        {"teams": [f"mlops_{r}" for r in ROLES], "u": user},
    ).scalars().all()
    return [g[len("mlops_"):] for g in found]


def load_policy_body(conn: Connection, body: Mapping[str, Any], source: str | None) -> int:
    """Store a new policy version (admin only, audited); its number."""
    import json

    return conn.execute(
        text("SELECT mlops_load_policy(CAST(:b AS json), :s)"), {"b": json.dumps(body, sort_keys=True), "s": source}
    ).scalar_one()


def current_policy(conn: Connection) -> tuple[int, dict[str, Any], str | None, str, float] | None:
    """``(version, body, source, loaded_by, loaded_at)`` of the policy in force, or None."""
    row = conn.execute(
        text("SELECT id, body, source, loaded_by, loaded_at FROM mlops_policies ORDER BY id DESC LIMIT 1")
    ).first()
    return tuple(row) if row is not None else None  # type: ignore[return-value]


def db_event_hash(prev: str, timestamp_text: str, actor: str, action: str, target: str,
                  reason: str | None, payload_text: str | None) -> str:  # fmt: skip
    """The hash the database gives an event (``mlops_audit_hash``), recomputed here to verify it."""

    def part(value: str | None) -> str:
        return "-" if value is None else f"{len(value)}:{value}"

    body = "".join(part(v) for v in (prev, timestamp_text, actor, action, target)) + part(reason) + part(payload_text)
    return hashlib.sha256(body.encode()).hexdigest()


def db_hash_texts(conn: Connection, ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
    """Each event's time and payload as the database renders them (what its hash covers)."""
    rows = conn.execute(
        text('SELECT id, CAST("timestamp" AS text), CAST(payload AS text) FROM audit_events ORDER BY id')
    ).all()
    wanted = set(ids)
    return {r[0]: (r[1], r[2]) for r in rows if r[0] in wanted}


def session_identity(engine: Engine) -> tuple[str, bool]:
    """``(session_user, roles installed)`` in one round trip."""
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT session_user, EXISTS (SELECT 1 FROM schema_info WHERE key = 'roles')")
        ).one()
        conn.rollback()
    return str(row[0]), bool(row[1])


def with_principal(payload: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``payload`` with ``on_behalf_of`` when a shared process acts for someone (see environment.on_behalf_of)."""
    person = on_behalf_of.get()
    if person is None:
        return dict(payload) if payload else None
    return {**dict(payload or {}), "on_behalf_of": person}
