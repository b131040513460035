"""The artifact store on a local folder and on an S3-compatible server (moto, on 127.0.0.1, through s3fs).

Every test here runs twice (``artifacts_url`` is parametrised): what a team
gets with ``MLOPS_NB_ARTIFACTS_URL=s3://...`` must behave like the folder.
"""

from __future__ import annotations

import hashlib
import threading

import pytest
from sklearn.linear_model import LogisticRegression
from test_jobs_support import TRACKED, write_notebook

import mlops_nb
from mlops_nb import config
from mlops_nb.doctor import doctor
from mlops_nb.errors import ArtifactError, IntegrityError
from mlops_nb.store import get_store
from mlops_nb.store.artifacts import ArtifactStore


def _tmp_entries(art: ArtifactStore) -> list[str]:
    folder = f"{art.root}/tmp"
    art.fs.invalidate_cache()
    return art.fs.find(folder) if art.fs.exists(folder) else []


def test_content_addressed_round_trip(artifacts_url, tmp_path):
    art = ArtifactStore(artifacts_url)
    digest = art.put_bytes(b"model bytes")
    assert digest == hashlib.sha256(b"model bytes").hexdigest()
    assert art.exists(digest) and art.fs.cat_file(art.path(digest)) == b"model bytes"
    assert art.path(digest).endswith(f"/{digest[:2]}/{digest[2:]}")
    assert art.put_bytes(b"model bytes") == digest  # storing the same bytes again is free
    src = tmp_path / "big.bin"
    src.write_bytes(bytes(range(256)) * 12_000)  # 3 MB
    big = art.put_file(src)
    assert art.get_bytes(big) == src.read_bytes()
    art.get_file(big, tmp_path / "out" / "copy.bin")
    assert (tmp_path / "out" / "copy.bin").read_bytes() == src.read_bytes()
    assert sorted(art.digests()) == sorted([digest, big])
    assert _tmp_entries(art) == []  # no temporary files left behind


def test_digest_checks_refuse_changed_and_missing_content(artifacts_url):
    art = ArtifactStore(artifacts_url)
    digest = art.put_bytes(b"original")
    art.fs.pipe_file(art.path(digest), b"tampered")  # changed behind the store's back
    art.fs.invalidate_cache()
    with pytest.raises(IntegrityError, match="corrupted"):
        art.get_bytes(digest)
    assert art.verify(digest) == hashlib.sha256(b"tampered").hexdigest()
    art.fs.rm(art.path(digest))
    art.fs.invalidate_cache()
    with pytest.raises(ArtifactError, match="missing"):
        art.get_bytes(digest)
    assert art.verify(digest) is None
    with pytest.raises(ArtifactError, match="not an artifact digest"):
        art.get_bytes("../../etc/passwd")


def test_a_failed_write_leaves_neither_a_partial_artifact_nor_a_temp_file(artifacts_url):
    art = ArtifactStore(artifacts_url)
    digest = hashlib.sha256(b"never complete").hexdigest()

    def half_then_fail(out):
        out.write(b"never")
        raise OSError("disk full")

    with pytest.raises(ArtifactError, match="Cannot write artifact .*disk full"):
        art._atomic_write(digest, half_then_fail)
    art.fs.invalidate_cache()
    assert not art.exists(digest) and _tmp_entries(art) == []


def test_concurrent_writers_of_the_same_content(artifacts_url):
    art = ArtifactStore(artifacts_url)
    payload = b"shared model" * 10_000
    digests, errors = [], []

    def write():
        try:
            digests.append(ArtifactStore(artifacts_url).put_bytes(payload))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(digests)) == 1
    assert art.get_bytes(digests[0]) == payload and list(art.digests()) == digests[:1]


def test_leftover_temp_files_of_killed_writes_are_removed_only_when_old(artifacts_url):
    art = ArtifactStore(artifacts_url)
    art.put_bytes(b"something")  # creates the folders
    art.fs.pipe_file(f"{art.root}/tmp/0123abcd", b"x" * 2048)  # what a killed writer leaves
    art.fs.invalidate_cache()
    assert [e["size"] for e in art.temp_files()] == [2048]
    assert art.remove_temp_files(older_than_s=3600) == []  # could be a write in progress
    removed = art.remove_temp_files(older_than_s=0)
    assert [e["size"] for e in removed] == [2048] and _tmp_entries(art) == []


def test_tracked_models_on_the_shared_artifact_store(artifacts_url, mlops_home, tmp_path):
    config.init(store=f"sqlite:///{tmp_path}/team.db", artifacts=artifacts_url)
    with mlops_nb.track(name="train") as run:
        model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        digest = run.log_model(model, "clf")
    store = get_store()
    assert store.artifacts.url == artifacts_url
    loaded = mlops_nb.load_model(f"model:{digest}", trust=True)
    assert loaded.predict([[3.0]]).tolist() == [1]
    report = doctor()
    assert not report.damaged and "1 verified" in report.text()
    artifact = store.get_model_version(digest)["artifact_digest"]
    store.artifacts.fs.pipe_file(store.artifacts.path(artifact), b"not the model")
    store.artifacts.fs.invalidate_cache()
    report = doctor()
    assert report.damaged and f"{artifact[:12]} (model {digest[:12]}) does not match its digest" in report.text()
    with pytest.raises(IntegrityError):
        mlops_nb.load_model(f"model:{digest}", trust=True)


def test_a_job_writes_its_executed_notebook_to_the_shared_store(artifacts_url, tmp_path, monkeypatch, mlops_home):
    from mlops_nb.jobs import run_notebook

    # The job's kernel is another process: it finds the store the way a team's jobs do, from the environment.
    monkeypatch.setenv("MLOPS_NB_STORE_URL", f"sqlite:///{tmp_path}/team.db")
    monkeypatch.setenv("MLOPS_NB_ARTIFACTS_URL", artifacts_url)
    config.reset()
    nb = write_notebook(tmp_path / "job.ipynb", TRACKED, "%%mlops track --name scored\naccuracy = x / 10", parameters="x = 1")
    job = run_notebook(nb, {"x": 7})
    assert job.ok, job.error
    store = get_store()
    assert store.artifacts.url == artifacts_url
    assert b"x = 7" in store.artifacts.get_bytes(job.output_digest)  # papermill's injected parameters
    (tracked,) = store.list_runs(job_run_id=job.id)
    assert tracked["metrics"] == {"accuracy": 0.7}
