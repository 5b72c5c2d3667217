"""`make run` keeps the platform up: a process that exits (an arq worker when Redis
restarts, a crashed service) is said and started again with backoff (tools/platform.py)."""

from __future__ import annotations

import time

import pytest

from tools.platform import Platform, exit_reason


@pytest.fixture
def platform():
    running = Platform(env={}, gateway_port=0, service_ports={}, restart_delay=0.2, max_restart_delay=0.4)
    try:
        yield running
    finally:
        running.stop()


def supervise_until(platform: Platform, count: int, timeout: float = 10.0) -> list[str]:
    said: list[str] = []
    deadline = time.monotonic() + timeout
    while len(said) < count:
        said += platform.supervise()
        assert time.monotonic() < deadline, said
        time.sleep(0.02)
    return said


def test_an_exited_process_is_said_and_started_again_with_growing_waits(platform):
    platform._spawn("registry-worker", ["-c", "import sys; sys.exit(3)"])
    said = supervise_until(platform, 6)
    assert said == [
        "registry-worker exited (exit code 3); restarting in 0.2 s",
        "registry-worker restarted",
        "registry-worker exited (exit code 3); restarting in 0.4 s",
        "registry-worker restarted",
        "registry-worker exited (exit code 3); restarting in 0.4 s",  # capped
        "registry-worker restarted",
    ]


def test_a_process_killed_by_a_signal_says_which(platform):
    platform._spawn("gateway", ["-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"])
    assert supervise_until(platform, 1) == ["gateway exited (killed by SIGKILL); restarting in 0.2 s"]


def test_the_others_keep_running_and_a_long_run_starts_the_count_afresh(platform):
    platform.stable_after = 0.3
    platform._spawn("statistics", ["-c", "import time; time.sleep(60)"])
    platform._spawn("enforcement-worker", ["-c", "import time, sys; time.sleep(0.5); sys.exit(1)"])
    said = supervise_until(platform, 4)
    assert said == [
        "enforcement-worker exited (exit code 1); restarting in 0.2 s",
        "enforcement-worker restarted",
        "enforcement-worker exited (exit code 1); restarting in 0.2 s",  # it ran long enough
        "enforcement-worker restarted",
    ]
    assert platform.processes["statistics"].poll() is None


def test_exit_reasons():
    assert exit_reason(1) == "exit code 1"
    assert exit_reason(-15) == "killed by SIGTERM"
