"""A `score` process stopped by a signal once it has saved some rows: how the crash and SIGTERM tests begin."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence


def signal_mid_run(
    command: Sequence[str],
    rows_saved: Callable[[], int],
    sig: signal.Signals,
    after_rows: int = 10,
    env: dict[str, str] | None = None,
    timeout: float = 90,
) -> subprocess.CompletedProcess:
    """Start ``command``, send it ``sig`` once ``rows_saved()`` reaches ``after_rows``, and wait for it to end.

    Fails if the run ends before that: a test of a stopped run must stop one.
    """
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while rows_saved() < after_rows and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert process.poll() is None, "the run finished before it could be stopped"
        process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        process.kill()  # a no-op once it has ended
        process.wait()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
