"""Exceptions raised by mlops_nb.

Every error derives from :class:`MlopsError`, carries structured fields for
programs, and a message that says what happened and what to do about it.
"""

from __future__ import annotations

from typing import Any


class MlopsError(Exception):
    """Root of all mlops_nb errors.

    Parameters
    ----------
    message : str
        What happened and what to do, in one or two sentences.
    **fields : Any
        Structured details, also available as attributes.
    """

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        for key, value in fields.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return self.message


class ConfigError(MlopsError):
    """A store URL, artifact URL or setting is invalid."""


class StoreError(MlopsError):
    """The registry database could not be read or written."""


class PermissionDenied(StoreError):
    """The database refused the action for this role (PostgreSQL team roles)."""


class Forbidden(MlopsError):
    """The Jupyter user lacks the role an action of the sidebar needs (``c.MlopsNb.roles``)."""


class IdentityError(ConfigError):
    """A claimed user name disagrees with the identity the database authenticated."""


class SchemaVersionError(StoreError):
    """The registry database was written by a newer mlops_nb."""


class StoreDamaged(StoreError):
    """The registry database or an artifact failed an integrity check (see ``mlops-nb doctor``)."""


class NoRegistry(StoreError):
    """A read-only command found no registry where it looked (``looked_in``)."""


class SpoolError(StoreError):
    """A record the registry could not take could not be kept in the local spool either (full, disk full)."""


class NotFoundError(MlopsError):
    """A run, data version, model version or other record does not exist."""


class ArtifactError(MlopsError):
    """An artifact is missing or its content does not match its digest."""


class IntegrityError(ArtifactError):
    """Stored content failed digest verification."""


class FingerprintError(MlopsError):
    """An object cannot be fingerprinted."""


class TrackingError(MlopsError):
    """A tracking call was used incorrectly (for example outside a run)."""


class RecordingError(TrackingError):
    """The tracked code ran, but its run could not be written to the registry."""


class ModelFormatError(MlopsError):
    """A model cannot be saved or loaded in the requested format."""


class DriftError(MlopsError):
    """Drift cannot be computed for the given data or options."""


class JobError(MlopsError):
    """A notebook job could not be validated, executed or scheduled."""


class ValidationFailed(JobError):
    """A notebook failed one or more validation checks."""


class NotebookChanged(JobError):
    """A scheduled notebook's content no longer matches the validated version."""


class NotebookExecutionError(JobError):
    """A notebook raised during execution."""


class RegistryError(MlopsError):
    """A registry operation (register, alias, promotion) cannot be carried out."""


class ConcurrentChange(RegistryError):
    """An alias moved while a change to it was being checked."""


class PromotionRefused(RegistryError):
    """A promotion failed one or more policy gates (see ``gates``)."""


class ApprovalError(RegistryError):
    """An approval is not allowed (wrong approver, own request, request not pending)."""


class PolicyError(ConfigError):
    """The promotion policy file is invalid."""


class AuditError(MlopsError):
    """The audit trail failed verification."""


class SchemaMismatch(MlopsError):
    """Data to score lacks columns of the model's training data, or has them with other types."""


class ServeError(MlopsError):
    """The model server cannot start or answer a request."""


class MonitorError(MlopsError):
    """A monitor cannot be defined, checked or acted on."""


class SearchError(MlopsError):
    """A run search filter or ordering cannot be read."""


class SnapshotError(MlopsError):
    """A data version could not be stored as a snapshot, or read back from one."""


class SnapshotMissing(SnapshotError):
    """A data version has no snapshot, or one of its chunks is missing or damaged."""


class ReproduceError(MlopsError):
    """A run could not be re-executed: an input that cannot be rebuilt, a notebook that changed."""
