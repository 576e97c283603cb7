"""Local processes opml starts: detached spawning and liveness checks that survive pid reuse."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def start_ticks(pid: int) -> int | None:
    """Return the process's start time in clock ticks since boot, or None when it is gone.

    A pid with another start time is a different process that reused the number.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # Field 2 (the command name) may contain spaces, so count from its closing bracket.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def is_alive(pid: int | None, ticks: int | None) -> bool:
    return pid is not None and ticks is not None and start_ticks(pid) == ticks


def spawn_python_module(module: str, arguments: list[str], log_path: Path, *, detached: bool) -> subprocess.Popen:
    """Start ``python -m module arguments`` with its output appended to ``log_path``.

    A detached process gets its own session, so it outlives the dashboard or
    command that started it and is not hit by their Ctrl-C.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", module, *arguments],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=detached,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def signal_name(returncode: int) -> str:
    """Describe a Popen return code: ``exit code 3`` or ``signal SIGKILL``."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


def group_members(group_id: int) -> list[int]:
    """Return the live (not zombie) processes of a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == group_id:
            members.append(int(entry.name))
    return members


def stop_group(group_id: int, timeout_s: float) -> None:
    """Send SIGTERM to a process group, then SIGKILL to what is left after ``timeout_s``.

    A zombie leader does not count as running; when this process is its
    parent, it is reaped here.
    """
    try:
        os.killpg(group_id, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(group_id)
        if not group_members(group_id):
            return
        time.sleep(0.1)
    try:
        os.killpg(group_id, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(group_id)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
