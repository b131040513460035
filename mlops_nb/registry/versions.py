"""Registered models and their numbered versions; model references.

A reference names one model version:

* ``NAME@ALIAS`` / ``model:NAME@ALIAS``: the version an alias points at;
* ``NAME:3`` / ``model:NAME:3``: version 3 of a registered model;
* ``DIGEST`` / ``model:DIGEST`` (or a unique prefix): a model version by content.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..environment import current_user
from ..errors import NotFoundError, RegistryError

if TYPE_CHECKING:
    from ..store import SqlStore

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}$")
_ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
_HEX = re.compile(r"^[0-9a-fA-F]{4,64}$")


@dataclass
class ModelVersion:
    """One version of a registered model (or an unregistered model version, ``version=None``)."""

    name: str | None
    version: int | None
    digest: str
    class_name: str
    flavor: str
    run_id: str | None
    aliases: list[str] = field(default_factory=list)
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    created_at: float | None = None
    user: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    data: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ref(self) -> str:
        """``NAME:VERSION``, or ``model:DIGEST`` for an unregistered model version."""
        return f"{self.name}:{self.version}" if self.name else f"model:{self.digest}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ref": self.ref}

    def __repr__(self) -> str:
        aliases = f" @{', @'.join(self.aliases)}" if self.aliases else ""
        metrics = ", ".join(f"{k}={v:.4g}" for k, v in list(self.metrics.items())[:4])
        short = self.class_name.rsplit(".", 1)[-1]
        return f"<ModelVersion {self.ref}{aliases} {short} ({self.digest[:8]}){' ' + metrics if metrics else ''}>"


@dataclass
class RegisteredModel:
    """A model name with its versions' count and its aliases."""

    name: str
    latest_version: int | None
    aliases: dict[str, int]
    description: str | None
    tags: dict[str, str]
    created_at: float
    user: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_name(name: str, what: str = "model name") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(
            f"{name!r} is not a valid {what}: use letters, digits, '_', '-' and '.', starting with a letter or digit.",
            name=name,
        )
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise RegistryError(
            f"{alias!r} is not a valid alias: use letters, digits, '_' and '-', starting with a letter (e.g. production).",
            alias=alias,
        )
    if alias.isdigit():
        raise RegistryError(f"An alias cannot be a number ({alias!r} reads as a version).", alias=alias)
    return alias


def parse_reference(ref: str) -> tuple[str, str | None, str | None]:
    """``(kind, a, b)``: ``("alias", name, alias)``, ``("version", name, "3")`` or ``("digest", digest, None)``."""
    text = ref.strip()
    if text.startswith("model:"):
        text = text[len("model:"):]
    if "@" in text:
        name, _, alias = text.partition("@")
        return "alias", check_name(name), check_alias(alias)
    if ":" in text:
        name, _, number = text.rpartition(":")
        if not number.isdigit():
            raise RegistryError(
                f"Cannot read the model reference {ref!r}: use NAME@ALIAS, NAME:VERSION or a model digest.",
                reference=ref,
            )
        return "version", check_name(name), number
    if _HEX.match(text):
        return "digest", text.lower(), None
    raise RegistryError(
        f"Cannot read the model reference {ref!r}: use NAME@ALIAS (e.g. churn@production), "
        "NAME:VERSION (churn:3) or a model digest.",
        reference=ref,
    )


def trained_version(ref: str, *, store: SqlStore | None = None) -> ModelVersion:
    """The model version ``ref`` names, when its training run is recorded (so its training data
    is known); a RegistryError saying so otherwise."""
    version = get_model_version(ref, store=store)
    if not version.run_id:
        raise RegistryError(
            f"Model version {version.ref} has no recorded training run, so its training data is unknown.",
            reference=ref,
        )
    return version


def get_model_version(ref: str, *, store: SqlStore | None = None) -> ModelVersion:
    """The model version ``ref`` names, with its training run's metrics and data."""
    store = store or _store()
    kind, a, b = parse_reference(ref)
    if kind == "alias":
        version = store.get_alias(a, b)
        if version is None:
            store.resolve_alias(a, b)  # raises the explanatory NotFoundError
        return _from_registry_row(store, store.get_registry_version(a, version))
    if kind == "version":
        return _from_registry_row(store, store.get_registry_version(a, int(b)))
    row = store.get_model_version(a)
    registered = store.registry_versions_of_digest(row["digest"])
    if len(registered) == 1:
        r = registered[0]
        return _from_registry_row(store, store.get_registry_version(r["name"], r["version"]))
    return _build(store, row, name=None, version=None)


def _from_registry_row(store: SqlStore, row: dict[str, Any]) -> ModelVersion:
    model_row = store.get_model_version(row["model_digest"])
    model_row["run_id"] = row.get("run_id") or model_row.get("run_id")
    return _build(
        store, model_row, name=row["name"], version=row["version"], aliases=row["aliases"],
        description=row.get("description"), tags=row.get("tags") or {},
        created_at=row["created_at"], user=row.get("user"),
    )  # fmt: skip


def _build(store: SqlStore, model_row: dict[str, Any], **extra: Any) -> ModelVersion:
    metrics: dict[str, float] = {}
    data: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    run_id = model_row.get("run_id")
    if run_id:
        try:
            run = store.get_run(run_id)
        except NotFoundError:
            run = None
        if run is not None:
            metrics = run["metrics"]
            data = [{"name": d["name"], "digest": d["digest"], "shape": d["shape"]} for d in run["inputs"]]
            warnings = list(run.get("warnings") or [])
    extra.setdefault("created_at", model_row.get("created_at"))
    return ModelVersion(
        digest=model_row["digest"],
        class_name=model_row["class_name"],
        flavor=model_row["flavor"],
        run_id=run_id,
        params=model_row.get("params") or {},
        metrics=metrics,
        data=data,
        warnings=warnings,
        **extra,
    )


def models(*, store: SqlStore | None = None) -> list[RegisteredModel]:
    """Every registered model, by name."""
    store = store or _store()
    return [
        RegisteredModel(
            name=r["name"], latest_version=r["latest_version"], aliases=r["aliases"], description=r["description"],
            tags=r["tags"] or {}, created_at=r["created_at"], user=r["user"],
        )  # fmt: skip
        for r in store.list_registered_models()
    ]


def versions(name: str, *, store: SqlStore | None = None) -> list[ModelVersion]:
    """Versions of ``name``, newest first."""
    store = store or _store()
    return [_from_registry_row(store, row) for row in store.list_registry_versions(name)]


def actor_or_user(actor: str | None) -> str:
    return actor or current_user()


def _store():
    from ..store import get_store

    return get_store()


def pin_references(parameters: dict[str, Any], store: SqlStore) -> tuple[dict[str, Any], dict[str, str]]:
    """Job parameters with every ``NAME@ALIAS`` that the registry knows pinned to ``NAME:VERSION``.

    A job then uses one fixed model version from start to end, even if the
    alias moves while it runs; ``pinned`` maps each parameter to what its
    alias meant (recorded with the job run).
    """
    pinned: dict[str, str] = {}
    out = dict(parameters)
    for key, value in parameters.items():
        if not isinstance(value, str) or "@" not in value:
            continue
        try:
            kind, name, alias = parse_reference(value)
        except RegistryError:
            continue  # an ordinary string such as an e-mail address
        version = store.get_alias(name, alias) if kind == "alias" else None
        if version is None:
            continue
        prefix = "model:" if value.strip().startswith("model:") else ""
        out[key] = f"{prefix}{name}:{version}"
        pinned[key] = f"{value} → {name}:{version}"
    return out, pinned
