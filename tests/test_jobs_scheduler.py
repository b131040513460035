"""The scheduler with an injected clock: due times, no double firing, timeout kill, retries."""

from __future__ import annotations

import socket
import time

import psutil
from test_jobs_support import write_notebook

from mlops_nb.jobs.scheduler import Scheduler
from mlops_nb.jobs.schedules import add_schedule, next_times


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _schedule(store, nb, cron="*/5 * * * *", **options):
    saved = add_schedule(nb, cron, force=True, store=store, **options)
    return saved, next_times(cron, saved["created_at"], 3)


def test_fires_when_due_and_never_twice_across_a_restart(tmp_path, store):
    nb = write_notebook(tmp_path / "tick.ipynb", "y = x + 1")
    saved, (first, second, _) = _schedule(store, nb)
    clock = Clock(first - 1)
    scheduler = Scheduler(store, clock=clock)
    assert scheduler.tick() == []  # not due yet
    clock.now = first + 1
    fired = scheduler.run_once()
    assert len(fired) == 1
    firing = store.get_firing(fired[0])
    assert firing["slot"] == first and firing["status"] == "finished" and firing["attempts"] == 1
    job = store.get_job_run(firing["job_run_ids"][0])
    assert job["schedule_name"] == saved["name"] and job["firing_id"] == firing["id"] and job["status"] == "finished"
    scheduler.close()

    restarted = Scheduler(store, clock=clock)  # same slot, new process state
    assert restarted.run_once() == []
    assert store.claim_firing(saved["name"], first, "someone-else:1") is None
    # A firing claimed by a scheduler that died is marked interrupted, not fired again.
    clock.now = second + 1
    store.claim_firing(saved["name"], second, f"{socket.gethostname()}:999999999", status="running")
    assert restarted.run_once() == []
    assert [f["status"] for f in store.list_firings(saved["name"])] == ["interrupted", "finished"]
    restarted.close()


def test_paused_schedule_does_not_fire_and_changed_notebook_is_refused(tmp_path, store):
    nb = write_notebook(tmp_path / "edit.ipynb", "y = x + 1")
    saved, (first, second, _) = _schedule(store, nb)
    store.set_schedule_paused(saved["name"], True)
    scheduler = Scheduler(store, clock=Clock(first + 1))
    assert scheduler.tick() == []
    store.set_schedule_paused(saved["name"], False)
    write_notebook(nb, "y = x + 2")  # edited after it was validated/scheduled
    fired = scheduler.run_once()
    firing = store.get_firing(fired[0])
    assert firing["status"] == "refused" and "changed since it was scheduled" in firing["error"]
    assert store.list_job_runs() == []
    scheduler.close()


def test_timeout_kills_the_kernel(tmp_path, store):
    pid_file = tmp_path / "kernel.pid"
    nb = write_notebook(tmp_path / "sleepy.ipynb",
                        f"%load_ext mlops_nb\nimport os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))",
                        "%%mlops track --name sleepy\ntime.sleep(120)")  # fmt: skip
    saved, (first, _, _) = _schedule(store, nb, timeout=10)
    scheduler = Scheduler(store, clock=Clock(first + 1))
    started = time.monotonic()
    fired = scheduler.run_once()
    assert time.monotonic() - started < 120  # killed: the 120 s cell never got to finish
    firing = store.get_firing(fired[0])
    assert firing["status"] == "timeout" and "killed" in firing["error"]
    assert store.get_job_run(firing["job_run_ids"][0])["status"] == "timeout"
    # the tracked cell the kernel was running when killed is not left "running" forever
    (run,) = store.list_runs(job_run_id=firing["job_run_ids"][0])
    assert run["name"] == "sleepy" and run["status"] == "interrupted" and "timeout" in run["error"]
    kernel = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(kernel) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(kernel)
    scheduler.close()


def test_retry_with_backoff_after_one_failure(tmp_path, store):
    marker = tmp_path / "attempted"
    nb = write_notebook(
        tmp_path / "flaky.ipynb",
        "import pathlib\nmarker = pathlib.Path(MARKER)\nif not marker.exists():\n"
        "    marker.write_text('1')\n    raise RuntimeError('first attempt fails')",
        parameters="MARKER = 'unset'",
    )
    saved, (first, _, _) = _schedule(store, nb, "0 * * * *", parameters={"MARKER": str(marker)}, retries=2)
    waits: list[float] = []
    scheduler = Scheduler(store, clock=Clock(first), sleep=waits.append, backoff=5)
    firing = store.get_firing(scheduler.run_once()[0])
    assert firing["status"] == "finished" and firing["attempts"] == 2 and waits == [5]
    jobs = [store.get_job_run(i) for i in firing["job_run_ids"]]
    assert [(j["attempt"], j["status"]) for j in jobs] == [(1, "failed"), (2, "finished")]
    assert "first attempt fails" in jobs[0]["error"]
    scheduler.close()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_manual_trigger_fires_once_at_the_next_tick(tmp_path, store):
    import pytest
    from click.testing import CliRunner

    from mlops_nb.cli import main
    from mlops_nb.errors import JobError, NotFoundError

    nb = write_notebook(tmp_path / "manual.ipynb", "y = x + 1")
    saved, (first, _, _) = _schedule(store, nb, "0 3 * * *")
    scheduler = Scheduler(store, clock=Clock(saved["created_at"] + 1))  # no slot is due
    assert scheduler.run_once() == []
    result = CliRunner().invoke(main, ["schedule", "trigger", saved["name"], "--reason", "hotfix data"])
    assert result.exit_code == 0 and "requested" in result.output
    fired = scheduler.run_once()
    assert len(fired) == 1 and store.get_firing(fired[0])["status"] == "finished"
    assert scheduler.run_once() == []  # a trigger fires once
    event = store.audit_log(f"schedule:{saved['name']}")[-1]
    assert event["action"] == "schedule.trigger" and event["reason"] == "hotfix data"
    store.set_schedule_paused(saved["name"], True)
    with pytest.raises(JobError, match="is paused: resume it first"):
        store.request_firing(saved["name"])
    with pytest.raises(NotFoundError, match="No schedule named"):
        store.request_firing("nope")
    scheduler.close()


def test_notebook_edited_between_retries_is_refused(tmp_path, store):
    """The validated-hash check runs before every attempt, not once per firing."""
    nb = write_notebook(tmp_path / "edited.ipynb", "raise RuntimeError('first attempt fails')")
    saved, (first, _, _) = _schedule(store, nb, "0 * * * *", retries=2)

    def edit_during_backoff(_seconds: float) -> None:
        write_notebook(nb, "y = 'never validated'")

    scheduler = Scheduler(store, clock=Clock(first), sleep=edit_during_backoff, backoff=1)
    firing = store.get_firing(scheduler.run_once()[0])
    assert firing["status"] == "refused" and "changed since it was scheduled" in firing["error"]
    assert [store.get_job_run(i)["status"] for i in firing["job_run_ids"]] == ["failed"]  # the edit never ran
    scheduler.close()
