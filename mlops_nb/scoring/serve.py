"""``mlops-nb serve churn@production``: an ASGI model server that follows its alias.

MLflow's scoring server loads one model at start and never reloads
(mlflow#4039).  Here a background task asks the registry every ``poll``
seconds which version the alias names; when it moved, the new version is
loaded completely in a worker thread and only then swapped in by
rebinding one attribute.  A request reads that attribute once, so it is
served entirely by the old or entirely by the new version, and none waits
for a load or is dropped.

Needs the ``serve`` extra (``pip install 'mlops-nb[serve]'``: starlette + uvicorn).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import MlopsError, SchemaMismatch, ServeError
from .access import ANONYMOUS, Access, TooLarge, check_access_settings, check_rows, read_tokens
from .model import ScoringModel, load_scoring_model
from .traffic import TrafficLog

if TYPE_CHECKING:
    from ..store import SqlStore

log = logging.getLogger("mlops_nb.serve")
VERSION_HEADER = "X-Mlops-Model-Version"
#: Requests of at most this many rows are scored without leaving the event loop.
INLINE_ROWS = 256


class ModelHolder:
    """The version being served, and the alias it follows (if any)."""

    def __init__(self, ref: str, *, store: SqlStore | None = None, poll: float = 1.0, trust: Any = False) -> None:
        from ..registry import parse_reference
        from ..store import get_store

        self.ref = ref
        self.store = store or get_store()
        self.poll = poll
        self.trust = trust
        kind, name, alias = parse_reference(ref)
        self.alias: tuple[str, str] | None = (name, alias) if kind == "alias" else None
        self.current: ScoringModel = load_scoring_model(ref, trust=trust, store=self.store)
        self.loaded_at = time.time()
        self.swaps = 0
        self.last_error: str | None = None

    def check_alias(self) -> bool:
        """Load and swap in the version the alias names now, if it moved; True when swapped."""
        if self.alias is None:
            return False
        name, alias = self.alias
        number = self.store.get_alias(name, alias)
        if number is None or number == self.current.version.version:
            return False  # an alias removed keeps the last version serving rather than failing requests
        fresh = load_scoring_model(f"{name}:{number}", trust=self.trust, store=self.store)
        old = self.current
        self.current, self.loaded_at = fresh, time.time()  # one rebinding: atomic for readers
        self.swaps += 1
        log.warning("%s@%s moved: now serving %s (was %s)", name, alias, fresh.version.ref, old.version.ref)
        return True

    async def follow(self) -> None:
        """Poll the alias until cancelled; a failed check is logged and retried, never fatal."""
        while True:
            await asyncio.sleep(self.poll)
            try:
                if await asyncio.to_thread(self.check_alias):
                    await asyncio.to_thread(settle_heap)  # the old version's objects freed, the new one's frozen
                self.last_error = None
            except Exception as exc:  # the registry briefly unreachable, a bad artifact: keep serving
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("checking %s failed: %s", self.ref, self.last_error)

    def describe(self, scorer: ScoringModel | None = None) -> dict[str, Any]:
        v = (scorer or self.current).version
        return {
            "model": v.name, "version": v.version, "digest": v.digest, "ref": v.ref,
            "follows": f"{self.alias[0]}@{self.alias[1]}" if self.alias else None,
        }  # fmt: skip


def settle_heap() -> None:
    """Collect, then move every object alive (modules, the model) out of the collector's reach.

    The server holds some 200,000 long-lived objects (pandas, scikit-learn, the app); a full
    collection walks them all, and took 100-200 ms on this 2-core machine: one request in a
    few thousand waited that long.  Frozen, they are never walked again; what requests
    allocate is still collected as usual.
    """
    gc.unfreeze()  # after a swap: the previous version's objects may be collected now
    gc.collect()
    gc.freeze()


def parse_payload(payload: Any, columns: list[str]) -> pd.DataFrame:
    """A DataFrame from MLflow's request shapes: ``dataframe_split``, ``dataframe_records``, ``inputs``/``instances``."""
    if not isinstance(payload, dict):
        raise ServeError("The request body must be a JSON object with dataframe_split, dataframe_records or inputs.")
    keys = [k for k in ("dataframe_split", "dataframe_records", "inputs", "instances") if k in payload]
    if len(keys) != 1:
        raise ServeError(
            "The request body needs exactly one of dataframe_split, dataframe_records, inputs or instances "
            f"(got {sorted(payload) or 'none'})."
        )
    body = payload[keys[0]]
    try:
        if keys[0] == "dataframe_split":
            if not isinstance(body, dict) or "data" not in body:
                raise ServeError('dataframe_split needs {"columns": [...], "data": [[...], ...]}.')
            data, names = body["data"], body.get("columns") or columns
            if body.get("index") is None and isinstance(data, list) and data and isinstance(data[0], list):
                # All-number rows in one C pass (pandas infers each column from Python objects, the
                # largest cost of a 100-row request); text, None or ragged rows take the general way.
                array = np.array(data)
                if array.ndim == 2 and array.dtype.kind in "fi":
                    return pd.DataFrame(array, columns=names)
            return pd.DataFrame(data, columns=names, index=body.get("index"))
        if isinstance(body, dict):  # column -> values
            return pd.DataFrame({k: v if isinstance(v, list) else [v] for k, v in body.items()})
        if isinstance(body, list) and body and all(isinstance(r, dict) for r in body):
            return pd.DataFrame.from_records(body)
        if isinstance(body, list) and body and all(isinstance(r, list) for r in body):
            return pd.DataFrame(body, columns=columns)
    except (ValueError, TypeError) as exc:
        raise ServeError(f"The {keys[0]} payload is not a table: {exc}.") from None
    raise ServeError(f"{keys[0]} must be a list of records, a column -> values object or a list of rows (and not empty).")


def fast_rows(payload: Any, scorer: ScoringModel) -> np.ndarray | None:
    """The rows of a ``dataframe_split`` request as one number matrix when the model's numpy route
    (:mod:`.fastpath`) may score them: the training columns in order (or none named), all numbers,
    all finite.  None sends the request the general way (its checks and its error messages)."""
    if scorer.fast is None or not isinstance(payload, dict) or len(payload) != 1:
        return None
    body = payload.get("dataframe_split")
    if not isinstance(body, dict) or body.get("index") is not None:
        return None
    data, names = body.get("data"), body.get("columns")
    if not isinstance(data, list) or not data or not isinstance(data[0], list):
        return None
    if names is not None and names != list(scorer.schema):
        return None
    try:
        array = np.array(data)
    except (ValueError, TypeError):  # ragged rows
        return None
    if array.ndim != 2 or array.dtype.kind not in "fi" or array.shape[1] != len(scorer.schema):
        return None
    return array if np.isfinite(array).all() else None  # NaN, inf: the model's own validation answers


def _jsonable(values: np.ndarray) -> list[Any]:
    out = values.tolist()
    return [None if isinstance(x, float) and not math.isfinite(x) else x for x in out]


def create_app(holder: ModelHolder, access: Access | None = None, traffic: TrafficLog | None = None):
    """The Starlette application serving ``holder``, behind ``access`` (tokens, limits, callers' runs) when given.

    With ``traffic``, a sample of the scored requests is logged as data (see :mod:`.traffic`).
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def error(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse({"error_code": code, "message": message}, status_code=status)

    async def invocations(request: Request) -> JSONResponse:
        scorer = holder.current  # read once: this request is served by this version only
        info = holder.describe(scorer)
        try:
            payload = await request.json()
        except ValueError as exc:
            return error(400, "MALFORMED_REQUEST", f"The body is not JSON: {exc}")
        try:
            rows = fast_rows(payload, scorer)
            if rows is not None:  # checked numbers in the training columns' order: the numpy route
                frame: pd.DataFrame | np.ndarray = rows
                if access is not None:
                    check_rows(len(rows), access.max_rows)
                scored = scorer.fast(rows) if len(rows) <= INLINE_ROWS else await asyncio.to_thread(scorer.fast, rows)
            else:
                frame = parse_payload(payload, list(scorer.schema))
                if access is not None:
                    check_rows(len(frame), access.max_rows)
                # A small request is scored on the event loop: a thread hop costs more than its prediction.
                try:
                    predictions = scorer.predict(frame) if len(frame) <= INLINE_ROWS else await asyncio.to_thread(scorer.predict, frame)
                except ValueError as exc:  # the model's own input validation (NaN, infinities): the caller's rows
                    raise ServeError(f"{scorer.label} cannot score these rows: {str(exc).splitlines()[0]}") from None
                scored = {c: predictions[c].to_numpy() for c in predictions.columns}
        except TooLarge as exc:
            return error(413, "REQUEST_TOO_LARGE", str(exc))
        except (SchemaMismatch, ServeError) as exc:
            return error(400, "BAD_REQUEST", str(exc))
        except MlopsError as exc:
            return error(500, "INTERNAL_ERROR", str(exc))
        body: dict[str, Any] = {"predictions": _jsonable(scored["prediction"]), "model": info["model"], "version": info["version"]}
        if "probability" in scored:
            body["probabilities"] = _jsonable(scored["probability"])
        if access is not None:
            access.callers.count(request.scope.get("mlops.caller", ANONYMOUS), len(frame), info)
        if traffic is not None:
            # A random draw; a kept request's rows become a frame and are written by another thread.
            traffic.offer(frame, info["version"], columns=list(scorer.schema))
        return JSONResponse(body, headers={VERSION_HEADER: str(info["version"] if info["version"] is not None else info["digest"])})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", **holder.describe()})

    async def version(request: Request) -> JSONResponse:
        from ..version import __version__

        return JSONResponse({
            **holder.describe(), "schema": holder.current.schema, "loaded_at": holder.loaded_at,
            "swaps": holder.swaps, "last_error": holder.last_error, "mlops_nb": __version__,
            "fast_path": holder.current.fast is not None,
            **({"traffic": traffic.describe()} if traffic is not None else {}),
        })  # fmt: skip

    @contextlib.asynccontextmanager
    async def lifespan(app):
        settle_heap()  # before the first request: see settle_heap
        task = asyncio.create_task(holder.follow()) if holder.alias else None
        recorder = asyncio.create_task(access.keep_records(holder.store)) if access is not None else None
        if traffic is not None:
            traffic.start()
        try:
            yield
        finally:
            for running in (task, recorder):
                if running is not None:
                    running.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await running
            if access is not None:
                await access.record(holder.store)  # what the callers did since the last record
            if traffic is not None:
                await asyncio.to_thread(traffic.close)  # the sampled requests still waiting are written

    routes = [
        Route("/invocations", invocations, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/ping", health, methods=["GET"]),  # MLflow's name for it
        Route("/version", version, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    return access.wrap(app) if access is not None else app


def serve(
    model: str = "churn@production",
    *,
    host: str = "127.0.0.1",
    port: int = 5000,
    poll: float = 1.0,
    trust: Any = False,
    store: SqlStore | None = None,
    log_level: str = "warning",
    access: Access | None = None,
    token_file: str | None = None,
    no_auth: bool = False,
    certfile: str | None = None,
    keyfile: str | None = None,
    log_sample: float = 0.0,
    log_keep: float | None = None,
) -> None:
    """Serve ``model`` over HTTP until interrupted, following its alias (see the module docs).

    Callers need a bearer token from ``token_file`` or ``MLOPS_NB_SERVE_TOKEN`` unless
    ``no_auth`` (loopback only); ``certfile``/``keyfile`` serve HTTPS; ``access`` sets the
    limits (see :mod:`mlops_nb.scoring.access`).  ``log_sample`` > 0 logs that share of the
    scored requests as ``served:MODEL`` data for the monitors (see :mod:`mlops_nb.scoring.traffic`),
    their rows kept ``log_keep`` seconds (default: until ``mlops-nb gc``).
    """
    import os

    try:
        import uvicorn
    except ModuleNotFoundError:
        raise ServeError("Serving needs the serve extra: pip install 'mlops-nb[serve]' (starlette and uvicorn).") from None
    access = access or Access(tokens={})
    access.tokens = access.tokens or read_tokens(token_file, os.environ.get("MLOPS_NB_SERVE_TOKEN"))
    access.no_auth = access.no_auth or no_auth
    check_access_settings(host, access.tokens, access.no_auth, certfile, keyfile)
    holder = ModelHolder(model, store=store, poll=poll, trust=trust)
    d = holder.describe()
    scheme = "https" if certfile else "http"
    who = "anyone on this machine (--no-auth)" if access.no_auth else f"{len(set(access.tokens.values()))} token name(s)"
    print(f"serving {d['ref']}" + (f" (following {d['follows']})" if d["follows"] else "") + f" on {scheme}://{host}:{port} for {who}", flush=True)
    traffic = TrafficLog(model, holder.store, log_sample, keep=log_keep) if log_sample else None
    uvicorn.run(create_app(holder, access, traffic), host=host, port=port, log_level=log_level, ssl_certfile=certfile, ssl_keyfile=keyfile)
