"""Tornado handlers of ``/mlops-nb/api/…``.

Every handler is an authenticated ``APIHandler`` (jupyter_server checks the
token or login cookie, and the XSRF token of cookie-authenticated writes).
Errors are JSON ``{"error": message}``: an ``MlopsError`` maps to 400, 404 or
409 by kind; nothing answers with a traceback.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Callable

import tornado.web
from jupyter_server.base.handlers import APIHandler

from ..environment import current_user, on_behalf_of
from ..errors import (
    ApprovalError, ConcurrentChange, ConfigError, Forbidden, MlopsError, NotFoundError, PermissionDenied,
    PromotionRefused, StoreError,
)  # fmt: skip
from . import views
from .app import MlopsNb
from .views import BadRequest

_ANONYMOUS_ID = re.compile(r"^[0-9a-f]{32}$")
_MAX_ID = 2**31 - 1  # version numbers and request ids fit a database INTEGER


def status_for(exc: MlopsError) -> int:
    """HTTP status of an mlops_nb error: missing → 404, refused or raced → 409, unavailable → 503, else 400."""
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, (Forbidden, PermissionDenied)):  # the sidebar's role mapping, or the database's roles
        return 403
    if isinstance(exc, (PromotionRefused, ApprovalError, ConcurrentChange)):
        return 409
    if isinstance(exc, StoreError) and not isinstance(exc, ConfigError):
        return 503
    return 400


class MlopsHandler(APIHandler):
    """Common parts: the settings, the acting user, JSON replies and errors."""

    @property
    def mlops(self) -> MlopsNb:
        return self.settings["mlops_nb"]

    def actor(self) -> str:
        """The Jupyter user's name; the OS user (or MLOPS_NB_USER) behind a shared-token anonymous login."""
        user = self.current_user
        username = getattr(user, "username", None) or str(user)
        name = getattr(user, "name", "") or ""
        if _ANONYMOUS_ID.match(username) and name.startswith("Anonymous "):
            # jupyter_server made up a random name for a token login: the person is whoever runs the server.
            return current_user()
        return username

    async def reply(self, fn: Callable[..., Any], *args: Any, status: int = 200, **kwargs: Any) -> None:
        """Run ``fn(store, *args, **kwargs)`` on the worker thread and write its result as JSON."""
        try:
            store = await self.mlops.call(self.mlops.store)
            result = await self.mlops.call(fn, store, *args, **kwargs)
        except MlopsError as exc:
            return self.error(status_for(exc), exc.message, exc)
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(views.jsonable(result), allow_nan=False))

    def error(self, status: int, message: str, exc: MlopsError | None = None) -> None:
        body: dict[str, Any] = {"error": message}
        if exc is not None:
            body["kind"] = type(exc).__name__
            if isinstance(exc, PromotionRefused):
                body["gates"] = getattr(exc, "gates", [])
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(views.jsonable(body), allow_nan=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Tornado's own errors (403 without login, 405, an unexpected bug): JSON, never a traceback.
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, tornado.web.HTTPError):
            message = exc.log_message or exc.reason or self._reason
        elif status_code >= 500:
            message = "Internal error in the mlops_nb server extension; the Jupyter server log has the details."
        else:
            message = self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message}))

    # ---- request parsing -------------------------------------------------------------------
    def int_arg(self, name: str, default: int, lo: int = 1, hi: int = 10_000) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise BadRequest(f"{name} must be a whole number, got {raw!r}.") from None
        if not lo <= value <= hi:
            raise BadRequest(f"{name} must be between {lo} and {hi}, got {value}.")
        return value

    def body(self) -> dict[str, Any]:
        raw = self.request.body or b"{}"
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise BadRequest("The request body must be a JSON object.")
        return data

    @staticmethod
    def field(data: dict[str, Any], name: str, kind: type, required: bool = True) -> Any:
        value = data.get(name)
        if value is None or value == "":
            if required:
                raise BadRequest(f"{name!r} is required.")
            return None
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).lstrip("v").isdigit():
                raise BadRequest(f"{name!r} must be a version number, got {value!r}.")
            return small_int(str(value).lstrip("v"), name)
        if not isinstance(value, kind):
            raise BadRequest(f"{name!r} must be a {kind.__name__}, got {value!r}.")
        return value

    async def guarded(self, fn: Callable[[], Any]) -> None:
        """Parse with ``fn`` (which calls :meth:`reply`); bad input becomes a 400."""
        try:
            await fn()
        except BadRequest as exc:
            self.error(400, exc.message, exc)
        except Forbidden as exc:
            self.error(403, exc.message, exc)


class RegistryHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        info = self.mlops.registry_info()
        # Off the event loop, but not behind store calls on the API's worker: those may hang on the
        # very outage that fills the spool, and the banner must show then.
        spool = await asyncio.get_running_loop().run_in_executor(None, self.mlops.spool_info)
        self.finish(json.dumps(views.jsonable({**info, "spool": spool, "user": self.actor(), "root_dir": str(self.mlops.root_dir)})))


class RunsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        async def go():
            order = [o for o in self.get_query_arguments("order_by") if o.strip()]
            await self.reply(
                views.list_runs,
                filter=self.get_query_argument("filter", "").strip() or None,
                order_by=order or None,
                max_results=self.int_arg("max_results", 50, hi=self.mlops.max_results),
                page_token=self.get_query_argument("page_token", None) or None,
                project=self.get_query_argument("project", None) or None,
            )

        await self.guarded(go)


class RunHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, run_id: str) -> None:
        await self.reply(views.get_run, run_id)


class RunLineageHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, run_id: str) -> None:
        await self.reply(views.run_lineage, f"run:{run_id}")


class LineageHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        async def go():
            ref = self.get_query_argument("ref", "").strip()
            if not ref:
                raise BadRequest("ref is required: run:ID, data:DIGEST, model:DIGEST or model:NAME@ALIAS.")
            await self.reply(views.run_lineage, ref)

        await self.guarded(go)


class NotebookRunsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        async def go():
            path = self.get_query_argument("path", "").strip()
            if not path or not path.endswith(".ipynb"):
                raise BadRequest("path must be the notebook's path below the server root, ending in .ipynb.")
            limit = self.int_arg("max_results", 50, hi=self.mlops.max_results)
            await self.reply(views.notebook_runs, self.mlops.notebook_candidates(path), limit)

        await self.guarded(go)


class ModelsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.reply(views.list_models)


class ModelHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        await self.reply(views.get_model, name)


class VersionHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str, version: str) -> None:
        await self.guarded(lambda: self.reply(views.get_version, name, small_int(version, "version")))


class PromoteHandler(MlopsHandler):
    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        async def go():
            data = self.body()
            version = self.field(data, "version", int)
            alias = self.field(data, "alias", str)
            reason = self.field(data, "reason", str, required=False)
            self.mlops.require(self.actor(), "writer", f"promote {name}")
            await self.reply(_promote, name, version, alias, reason, self.actor())

        await self.guarded(go)


class RollbackHandler(MlopsHandler):
    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        async def go():
            data = self.body()
            alias = self.field(data, "alias", str)
            reason = self.field(data, "reason", str, required=False)
            self.mlops.require(self.actor(), "writer", f"roll back {name}@{alias}")
            await self.reply(_rollback, name, alias, reason, self.actor())

        await self.guarded(go)


class ApproveHandler(MlopsHandler):
    @tornado.web.authenticated
    async def post(self, request_id: str) -> None:
        async def go():
            data = self.body()
            comment = self.field(data, "comment", str, required=False)
            self.mlops.require(self.actor(), "approver", f"approve request {request_id}")
            await self.reply(_approve, small_int(request_id, "request id"), comment, self.actor())

        await self.guarded(go)


class RequestsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        name = self.get_query_argument("name", None) or None
        await self.reply(lambda store: {"requests": views.promotion_requests(store, name)})


class DriftHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        async def go():
            await self.reply(views.drift_checks, self.int_arg("limit", 20, hi=200))

        await self.guarded(go)


class AlertsHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        async def go():
            await self.reply(views.alerts, self.int_arg("limit", 20, hi=500))

        await self.guarded(go)


class SchedulesHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.reply(views.schedules)


class ScheduleHistoryHandler(MlopsHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        async def go():
            await self.reply(views.schedule_history, name, self.int_arg("last", 20, hi=1000))

        await self.guarded(go)


class TriggerHandler(MlopsHandler):
    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        async def go():
            reason = self.field(self.body(), "reason", str, required=False)
            self.mlops.require(self.actor(), "writer", f"run schedule {name}")
            await self.reply(views.trigger, name, self.actor(), reason, status=202)

        await self.guarded(go)


def small_int(text: str, what: str) -> int:
    value = int(text)
    if value > _MAX_ID:
        raise BadRequest(f"{what} {text} is too large.")
    return value


def _as(store, person: str, change: Callable[[str | None], Any]) -> dict[str, Any]:
    """Run ``change(actor)`` for the Jupyter user ``person``: on SQLite they are the actor; on PostgreSQL
    the actor is the server's database role and ``person`` is recorded beside it (``on_behalf_of``)."""
    if store.session_user is None:
        return change(person).to_dict()
    token = on_behalf_of.set(person)
    try:
        return change(None).to_dict()
    finally:
        on_behalf_of.reset(token)


def _promote(store, name: str, version: int, alias: str, reason: str | None, actor: str) -> dict[str, Any]:
    from ..registry import promote

    return _as(store, actor, lambda who: promote(name, version, alias, reason=reason, actor=who, store=store))


def _rollback(store, name: str, alias: str, reason: str | None, actor: str) -> dict[str, Any]:
    from ..registry import rollback

    return _as(store, actor, lambda who: rollback(name, alias, reason=reason, actor=who, store=store))


def _approve(store, request_id: int, comment: str | None, actor: str) -> dict[str, Any]:
    from ..registry import approve

    return _as(store, actor, lambda who: approve(request_id, actor=who, comment=comment, store=store))


_NAME = r"([A-Za-z0-9_][A-Za-z0-9_.\-]*)"

#: (pattern below /mlops-nb/api, handler)
handlers: list[tuple[str, type[MlopsHandler]]] = [
    (r"registry", RegistryHandler),
    (r"runs", RunsHandler),
    (r"runs/([0-9a-fA-F]{1,32})", RunHandler),
    (r"runs/([0-9a-fA-F]{1,32})/lineage", RunLineageHandler),
    (r"lineage", LineageHandler),
    (r"notebook-runs", NotebookRunsHandler),
    (r"models", ModelsHandler),
    (rf"models/{_NAME}", ModelHandler),
    (rf"models/{_NAME}/versions/(\d+)", VersionHandler),
    (rf"models/{_NAME}/promote", PromoteHandler),
    (rf"models/{_NAME}/rollback", RollbackHandler),
    (r"requests", RequestsHandler),
    (r"requests/(\d+)/approve", ApproveHandler),
    (r"drift", DriftHandler),
    (r"alerts", AlertsHandler),
    (r"schedules", SchedulesHandler),
    (rf"schedules/{_NAME}/history", ScheduleHistoryHandler),
    (rf"schedules/{_NAME}/trigger", TriggerHandler),
]
