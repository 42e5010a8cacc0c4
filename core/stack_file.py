"""Where a running `mgw up` stack listens, for every other `mgw` command on this machine.

`mgw up` starts PostgreSQL, Redis and the broker on whatever ports are free, so a command run
in another terminal (`mgw keys list`, `mgw readmodel rebuild`, `mgw ingest`, `mgw token dev`)
could not find them. `mgw up` therefore writes `.mgw/stack.env` (its `--data-dir`): KEY=VALUE
lines, readable by the owner only, the first one the pid of `mgw up`; and removes it when it
stops. Other commands read it when that pid is alive and take from it only the variables the
environment does not set: an explicit variable always wins, and a stale file from a killed
stack is ignored. MGW_STACK_FILE names another file ("" or "none": never read one).

Ports a child picks for itself (each gateway process its ops port) are recorded by the child in
the directory MGW_PORTS_DIR names (`mgw up` sets it): one file per process, `ROLE.PID` holding
the port, so the banner and `mgw stack` list only ports a live process holds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from dotenv import dotenv_values

STACK_FILE_VARIABLE = "MGW_STACK_FILE"
DEFAULT_STACK_FILE = Path(".mgw") / "stack.env"
PID_VARIABLE = "MGW_STACK_PID"
# Not configuration of any process: what `mgw stack` shows.
DEV_KEY_VARIABLE = "MGW_DEV_API_KEY"
GATEWAY_URL_VARIABLE = "MGW_GATEWAY_URL"
WORKER_OPS_VARIABLE = "MGW_WORKER_OPS_URL"
GATEWAY_OPS_VARIABLE = "MGW_GATEWAY_OPS_URLS"
SUPERVISOR_OPS_VARIABLE = "MGW_SUPERVISOR_URL"
PORTS_DIR_VARIABLE = "MGW_PORTS_DIR"
# The directory `mgw up` names in MGW_PORTS_DIR: `run` beside the stack file (cli/up.py).
PORTS_DIR_NAME = "run"
GATEWAY_OPS_ROLE = "gateway-ops"
# Variables that describe one of the stack's services, taken only along with it: the embedded
# broker's partition cap must never reach a broker the environment names (`mgw topics create`
# would make one-partition topics on it).
BOUND_TO_SERVICE = {"KAFKA_TOPIC_PARTITIONS_MAX": "KAFKA_BROKERS"}


def stack_file() -> Path | None:
    named = os.environ.get(STACK_FILE_VARIABLE)
    if named is None:
        return DEFAULT_STACK_FILE
    return None if named.strip().lower() in ("", "none") else Path(named)


def how_commands_find(path: Path) -> str:
    """How another `mgw` command finds the stack whose file `mgw up` writes at `path`: by
    itself when that is the file it reads (`stack_file()`, from the current directory), else
    only when MGW_STACK_FILE names it (`mgw up --data-dir` elsewhere)."""
    read = stack_file()
    if read is not None and read.resolve() == path.resolve():
        where = os.path.relpath(path)
        return f"Every `mgw` command in this directory finds this stack through {where}"
    return (
        f"Other `mgw` commands find this stack only with MGW_STACK_FILE={path} (export it; "
        f"without it they read {DEFAULT_STACK_FILE} of their own directory)"
    )


def write_stack_file(path: Path, values: Mapping[str, str]) -> None:
    """Write the running stack's variables (this process's pid first), owner-only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{PID_VARIABLE}={os.getpid()}"]
    for name, value in values.items():
        if "\n" in value:
            raise ValueError(f"{name} holds a line break; it cannot go into {path}")
        lines.append(f"{name}={value}")
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    temporary.replace(path)


def remove_stack_file(path: Path) -> None:
    """Remove the file if this process wrote it (a second `mgw up` must not remove the first's)."""
    values = parse(path)
    if values.get(PID_VARIABLE) == str(os.getpid()):
        path.unlink(missing_ok=True)


def parse(path: Path) -> dict[str, str]:
    """The file's variables ({} when it is missing): the .env format, read by python-dotenv."""
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def running_stack(path: Path | None = None) -> dict[str, str]:
    """The variables of the live stack recorded at `path` (default: stack_file()); {} when
    there is no file or its `mgw up` is gone."""
    path = path if path is not None else stack_file()
    if path is None:
        return {}
    values = parse(path)
    try:
        pid = int(values.get(PID_VARIABLE, ""))
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return {}
    except PermissionError:  # alive, someone else's
        pass
    # The gateway's ops ports as its live processes hold them: the file has the ports of the
    # first ones, and a gateway the supervisor restarted serves on others (each process takes
    # the first free port of 9100..), which the file went on naming, dead.
    live = recorded_ports(path.parent / PORTS_DIR_NAME, GATEWAY_OPS_ROLE)
    if live and GATEWAY_OPS_VARIABLE in values:
        values[GATEWAY_OPS_VARIABLE] = ",".join(f"http://127.0.0.1:{port}" for port in live)
    return values


def apply_running_stack(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Put the live stack's variables into the environment where it names none; returns the
    ones taken."""
    env = os.environ if environ is None else environ
    taken = {
        name: value for name, value in running_stack().items() if name not in env and name.isupper()
    }
    for name, service in BOUND_TO_SERVICE.items():
        if service not in taken:
            taken.pop(name, None)
    env.update(taken)
    return taken


def record_port(role: str, port: int) -> Path | None:
    """Under `mgw up` (MGW_PORTS_DIR set): note that this process serves `role` on `port`.
    Returns the file to remove when it stops serving (None outside `mgw up`)."""
    directory = os.environ.get(PORTS_DIR_VARIABLE)
    if not directory:
        return None
    path = Path(directory) / f"{role}.{os.getpid()}"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(str(port))
    temporary.replace(path)
    return path


def recorded_ports(directory: Path, role: str) -> list[int]:
    """The ports live processes recorded for `role`, in order."""
    ports = []
    for path in directory.glob(f"{role}.*"):
        try:
            pid = int(path.suffix.removeprefix("."))
            os.kill(pid, 0)
            ports.append(int(path.read_text()))
        except (ValueError, OSError):  # not a pid, a dead process, a file half written
            continue
    return sorted(ports)
