"""Workers drain on SIGTERM: a job running when the signal comes finishes (it is not
cancelled), no new one starts, and the process exits 0 — what a rolling update or a
scale-down sends a worker pod before its grace period ends."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid

import pytest
from arq.jobs import Job, JobStatus

from services.common.jobs import create_job_pool, queue_name
from services.common.settings import REPO_ROOT, part_settings

SLOW_JOB_SECONDS = 3.0


def start_worker(drain_seconds: int) -> subprocess.Popen:
    env = {**os.environ, "REGISTRY_WORKER_DRAIN_SECONDS": str(drain_seconds), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.deploy.drain_worker"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


async def wait_for(redis, key: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if await redis.exists(key):
            return
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{key} never set")


async def wait_exit(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    for _ in range(int(timeout / 0.05)):
        if proc.poll() is not None:
            return proc.returncode
        await asyncio.sleep(0.05)
    proc.kill()
    raise AssertionError("the worker did not exit after SIGTERM")


async def forget(pool, name: str, *jobs: Job) -> None:
    """Jobs left queued (the runs share one Redis database) taken away."""
    await pool.zrem(name, *(j.job_id for j in jobs))
    await pool.delete(*(f"arq:job:{j.job_id}" for j in jobs))


@pytest.fixture
async def queue():
    settings = part_settings("registry")
    pool = await create_job_pool(settings.redis_url)
    yield pool, queue_name("registry", settings)
    await pool.aclose()


async def run_until_sigterm(queue, drain_seconds: int) -> tuple[int, Job, str, object]:
    pool, name = queue
    mark = f"drain-test:{uuid.uuid4()}"
    proc = start_worker(drain_seconds)
    try:
        job = await pool.enqueue_job("slow_job", SLOW_JOB_SECONDS, mark, _queue_name=name)
        await wait_for(pool, f"{mark}:started", proc)
        # Due a moment after the signal: a draining worker must leave it for another.
        later = await pool.enqueue_job("slow_job", 0.0, f"{mark}:later", _queue_name=name, _defer_by=1.0)
        os.killpg(proc.pid, signal.SIGTERM)
        returncode = await wait_exit(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stderr.close()
    return returncode, job, mark, later


async def test_a_running_job_finishes_after_sigterm_and_the_worker_exits_0(queue):
    pool, _ = queue
    returncode, job, mark, later = await run_until_sigterm(queue, drain_seconds=20)
    assert returncode == 0
    assert await pool.exists(f"{mark}:finished")
    info = await job.result_info()
    assert info is not None and info.success and info.result == "finished"
    # The job due after the signal was not taken: it waits for the next worker.
    assert await later.status() == JobStatus.queued
    assert not await pool.exists(f"{mark}:later:started")
    await forget(pool, queue[1], later)


async def test_without_a_drain_period_the_running_job_is_cancelled(queue):
    """The contrast: arq's own SIGTERM handling (no completion wait) cancels the job."""
    pool, name = queue
    _, job, mark, later = await run_until_sigterm(queue, drain_seconds=0)
    # (Its exit status is not checked: arq's close may re-raise the cancellation, exit 1.)
    assert not await pool.exists(f"{mark}:finished")
    assert await job.result_info() is None
    await forget(pool, name, job, later)
