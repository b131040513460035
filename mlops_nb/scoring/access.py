"""Who may call ``mlops-nb serve``, how much they may send, and a record of who called.

* Bearer tokens by default: ``--token-file`` (lines ``NAME:TOKEN``) and/or
  ``MLOPS_NB_SERVE_TOKEN`` (``TOKEN`` or ``NAME:TOKEN``).  ``--no-auth`` is accepted
  only on a loopback address.  ``/health`` and ``/ping`` stay open for load balancers.
* Limits: request bodies over ``max_bytes`` and payloads over ``max_rows`` rows get
  413; a missing or wrong token gets 401; all as JSON, as the server's other errors.
* Each caller's token name is recorded: one scoring run per caller and period
  (``serve-MODEL``, tags ``kind=scoring`` and ``caller=NAME``, metrics rows and
  requests), written every ``record_every`` seconds and when the server stops.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ServeError

log = logging.getLogger("mlops_nb.serve")
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_ROWS = 100_000
MIN_TOKEN_CHARS = 16
OPEN_PATHS = frozenset({"/health", "/ping"})
ANONYMOUS = "anonymous"


class TooLarge(ServeError):
    """A request over the server's size or row limit (answered with 413)."""


def read_tokens(token_file: str | os.PathLike[str] | None, env_token: str | None) -> dict[str, str]:
    """``{token: name}`` from the token file and the environment's token; refuses short or malformed ones."""
    entries: list[tuple[str, str, str]] = []  # (name, token, where)
    if token_file is not None:
        path = Path(token_file).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ServeError(f"Cannot read the token file {str(path)!r}: {exc.strerror or exc}.") from None
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, token = line.partition(":")
            if not sep or not name.strip() or not token.strip():
                raise ServeError(f"{path}:{number}: write each token as NAME:TOKEN (the name is recorded with the caller's runs).")
            entries.append((name.strip(), token.strip(), f"{path}:{number}"))
    if env_token:
        name, sep, token = env_token.strip().partition(":")
        entries.append((name, token, "MLOPS_NB_SERVE_TOKEN") if sep else ("env", env_token.strip(), "MLOPS_NB_SERVE_TOKEN"))
    tokens: dict[str, str] = {}
    for name, token, where in entries:
        if len(token) < MIN_TOKEN_CHARS:
            raise ServeError(
                f"The token of {name!r} ({where}) is shorter than {MIN_TOKEN_CHARS} characters: make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'."
            )
        tokens[token] = name
    return tokens


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_access_settings(host: str, tokens: dict[str, str], no_auth: bool, certfile: str | None, keyfile: str | None) -> None:
    """Refuse a server anyone on the network could call, and half a TLS configuration."""
    if no_auth and not is_loopback(host):
        raise ServeError(f"--no-auth serves anyone who reaches the port: only allowed on a loopback address, not {host}.")
    if not no_auth and not tokens:
        raise ServeError(
            "The server needs a bearer token: --token-file FILE (lines NAME:TOKEN) or MLOPS_NB_SERVE_TOKEN; "
            "--no-auth on 127.0.0.1 for local trials."
        )
    if (certfile is None) != (keyfile is None):
        raise ServeError("TLS needs both --certfile and --keyfile.")
    for path in (certfile, keyfile):
        if path is not None and not Path(path).is_file():
            raise ServeError(f"The TLS file {path!r} does not exist.")


@dataclass
class _Tally:
    describe: dict[str, Any]
    requests: int = 0
    rows: int = 0
    first: float = field(default_factory=time.time)


class CallerLog:
    """Requests and rows per caller and model version since the last record; ``flush`` writes one
    scoring run for each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tallies: dict[tuple[str, str], _Tally] = {}

    def count(self, caller: str, rows: int, describe: dict[str, Any]) -> None:
        with self._lock:
            tally = self._tallies.setdefault((caller, describe["ref"]), _Tally(describe))
            tally.requests += 1
            tally.rows += rows

    def flush(self, store) -> list[str]:
        """Record what was counted (one run per caller and version); the run ids."""
        from ..tracking.run import track

        with self._lock:
            tallies, self._tallies = self._tallies, {}
        ids = []
        for (caller, _ref), tally in sorted(tallies.items()):
            describe = tally.describe
            tags = {
                "kind": "scoring", "caller": caller, "served_by": "mlops-nb serve",
                "model": describe.get("model") or "", "model_version": str(describe.get("version") or ""),
            }  # fmt: skip
            with track(f"serve-{describe.get('model') or describe['digest'][:8]}", tags=tags, store=store) as run:
                run.log_params({"caller": caller, "model_ref": describe["ref"], "since": tally.first})
                run.log_metric("rows", float(tally.rows))
                run.log_metric("requests", float(tally.requests))
            ids.append(run.id)
        return ids


@dataclass
class Access:
    """The server's access settings and its record of callers."""

    tokens: dict[str, str]
    no_auth: bool = False
    max_bytes: int = DEFAULT_MAX_BYTES
    max_rows: int = DEFAULT_MAX_ROWS
    record_every: float = 60.0
    callers: CallerLog = field(default_factory=CallerLog)

    def wrap(self, app):
        return AccessGuard(app, tokens=self.tokens, no_auth=self.no_auth, max_bytes=self.max_bytes)

    async def keep_records(self, store) -> None:
        """Record the callers every ``record_every`` seconds until cancelled; a failure is logged, not fatal."""
        while True:
            await asyncio.sleep(self.record_every)
            await self.record(store)

    async def record(self, store) -> None:
        try:
            await asyncio.to_thread(self.callers.flush, store)
        except Exception as exc:  # the registry unreachable: keep serving (the spool keeps tracked runs)
            log.error("recording the callers failed: %s: %s", type(exc).__name__, exc)


class AccessGuard:
    """ASGI middleware: bearer token, body size limit; puts the caller's name in ``scope["mlops.caller"]``."""

    def __init__(self, app, *, tokens: dict[str, str], no_auth: bool, max_bytes: int) -> None:
        self.app, self.tokens, self.no_auth, self.max_bytes = app, tokens, no_auth, max_bytes

    def caller(self, headers: dict[bytes, bytes]) -> str | None:
        if self.no_auth:
            return ANONYMOUS
        scheme, _, presented = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return None
        found = None
        for token, name in self.tokens.items():  # every token compared, in constant time each
            if hmac.compare_digest(presented.strip().encode(), token.encode()):
                found = name
        return found

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        caller = self.caller(headers)
        if caller is None:
            return await _json(send, 401, "UNAUTHENTICATED",
                               "Send Authorization: Bearer TOKEN (a token the server was started with).",
                               [(b"www-authenticate", b'Bearer realm="mlops-nb serve"')])  # fmt: skip
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _json(send, 413, "REQUEST_TOO_LARGE", _too_large(self.max_bytes))
        body, more = b"", True
        while more:  # read it all here (bounded), so an over-long chunked body is refused too
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await _json(send, 413, "REQUEST_TOO_LARGE", _too_large(self.max_bytes))
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app({**scope, "mlops.caller": caller}, replay, send)


def _too_large(limit: int) -> str:
    return f"The request body is larger than this server's limit of {limit} bytes: send fewer rows per request."


async def _json(send, status: int, code: str, message: str, extra: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error_code": code, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def check_rows(rows: int, max_rows: int) -> None:
    if rows > max_rows:
        raise TooLarge(f"{rows} rows in one request; this server takes at most {max_rows}: split the request.")
