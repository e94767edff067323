"""``cctvchain network up|status|down`` with real node processes on free loopback ports.

The network: 3 organisations (a CA each), 3 Raft orderers and 2 peers. The configuration
format requires at least one peer, so the peers are always in it; while this build has
no "peer" service (cctvchain.node.services.SERVICES), ``up`` must refuse them by name
and ``up --keep-going`` must start the CAs and orderers and mark the peers "no service".
Once a peer service is registered, the same tests run the peers like any other node.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from node_helpers import PYTHON, REPO, free_ports, one_line_error

from cctvchain.node.services import SERVICES

ORGS = ("CityCCTV", "Police", "LocalAuthority")
CAS = ("ca.city", "ca.police", "ca.la")
ORDERERS = ("orderer0.city", "orderer1.police", "orderer2.la")
PEERS = ("peer0.city", "peer0.police")
PEER_SERVICE = "peer" in SERVICES
# Without a peer service the peers cannot run: `up` needs --keep-going to start the rest.
UP = ("--keep-going",) if not PEER_SERVICE else ()
STARTED = (*CAS, *ORDERERS, *(PEERS if PEER_SERVICE else ()))
ALL = (*CAS, *ORDERERS, *PEERS)


def network_toml(ports: dict[str, int]) -> str:
    members = ", ".join(f"'{org}.member'" for org in ORGS)
    orgs = "".join(
        f'[[organizations]]\nname = "{org}"\nmsp_id = "{org}"\n'
        f'ca = {{ name = "{ca}", host = "127.0.0.1", port = {ports[ca]} }}\n\n'
        for org, ca in zip(ORGS, CAS, strict=True)
    )
    orderers = "".join(
        f'[[orderers]]\nname = "{name}"\norg = "{org}"\nhost = "127.0.0.1"\n'
        f"port = {ports[name]}\n\n"
        for name, org in zip(ORDERERS, ORGS, strict=True)
    )
    peers = "".join(
        f'[[peers]]\nname = "{name}"\norg = "{org}"\nhost = "127.0.0.1"\nport = {ports[name]}\n\n'
        for name, org in zip(PEERS, ORGS, strict=False)
    )
    return f"""
[network]
name = "uptest"
channel = "cctv"
nodes_dir = "nodes"

[batch]
max_message_count = 10
batch_timeout_ms = 200

[policies]
Readers = "OR({members})"
Writers = "OR({members})"
Admins = "OutOf(2, 'CityCCTV.admin', 'Police.admin', 'LocalAuthority.admin')"
BlockValidation = "OR('CityCCTV.orderer', 'Police.orderer', 'LocalAuthority.orderer')"

[endorsement]
cctv = "OutOf(2, 'CityCCTV.peer', 'Police.peer', 'LocalAuthority.peer')"

{orgs}{orderers}{peers}"""


class Net:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ports = dict(zip(ALL, free_ports(len(ALL)), strict=True))
        self.config = directory / "network.toml"
        self.config.write_text(network_toml(self.ports))
        self.nodes_dir = directory / "nodes"
        self.extra: list[subprocess.Popen[bytes]] = []

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "cctvchain", "network", *args, "--config", str(self.config)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def ok(self, *args: str) -> str:
        result = self.cli(*args)
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr
        return result.stdout

    def status(self) -> tuple[int, dict[str, Any]]:
        result = self.cli("status", "--json")
        assert "Traceback" not in result.stderr, result.stderr
        data = json.loads(result.stdout)
        return result.returncode, data

    def pid_file(self, node: str) -> Path:
        return self.nodes_dir / node / "node.pid"

    def pid(self, node: str) -> int:
        return int(json.loads(self.pid_file(node).read_text())["pid"])

    def url(self, node: str) -> str:
        return f"https://127.0.0.1:{self.ports[node]}"

    def cleanup(self) -> None:
        """Whatever the test left: `network down`, then SIGKILL anything recorded."""
        if self.config.exists():
            self.cli("down", "--timeout", "5")
        for pid_file in self.nodes_dir.glob("*/node.pid"):
            pid = int(json.loads(pid_file.read_text())["pid"])
            with contextlib.suppress(OSError):  # gone meanwhile
                if alive(pid) and b"node\0start" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.killpg(pid, signal.SIGKILL)
        for process in self.extra:
            if process.poll() is None:
                process.kill()
            process.wait()


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    network = Net(tmp_path)
    try:
        yield network
    finally:
        network.cleanup()


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie) -- read from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def by_name(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["name"]: node for node in status["nodes"]}


def ready_lines(output: str) -> dict[str, str]:
    """``  ready  NODE  URL  ...`` progress lines of `network up`, by node."""
    lines = {}
    for line in output.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "ready":
            lines[words[1]] = words[2]
    return lines


def table_rows(output: str) -> dict[str, list[str]]:
    """The rows of the node table (NODE KIND ORG URL PID STATE...), by node."""
    rows = {}
    for line in output.splitlines():
        words = line.split()
        if len(words) >= 6 and words[0] in ALL and words[3].startswith("https://"):
            rows[words[0]] = words
    return rows


def check_all_running(net: Net, status: dict[str, Any]) -> str:
    """Every node that can run is running with the recorded pid; the agreed leader."""
    nodes = by_name(status)
    assert set(nodes) == set(ALL)
    for name in STARTED:
        node = nodes[name]
        assert node["state"] == "running", node
        assert node["healthy"] and node["ready"] and node["managed"], node
        assert node["pid"] == net.pid(name) and alive(node["pid"]), node
        assert node["url"] == net.url(name)
    for name in set(ALL) - set(STARTED):
        assert nodes[name]["state"] == "no service", nodes[name]
        assert nodes[name]["pid"] is None and not net.pid_file(name).exists()
    leaders = {nodes[name]["orderer"]["leader"] for name in ORDERERS}
    roles = sorted(nodes[name]["orderer"]["role"] for name in ORDERERS)
    assert len(leaders) == 1 and next(iter(leaders)) in ORDERERS, leaders
    assert roles == ["follower", "follower", "leader"], roles
    assert status["leader"] == next(iter(leaders))
    assert nodes[status["leader"]]["orderer"]["role"] == "leader"
    for name in PEERS if PEER_SERVICE else ():
        channel = nodes[name]["channel"]  # a peer's /api/v1/channel, where it has one
        assert channel is None or channel["height"] >= 1, channel
    assert status["running"] == len(STARTED) and status["total"] == len(ALL)
    return str(status["leader"])


# -- the whole life cycle ------------------------------------------------------------------


def test_up_status_restart_down(net: Net) -> None:
    if not PEER_SERVICE:
        # The peers have no service in this build: refused by name, nothing started.
        error = one_line_error(net.cli("up"))
        assert "peer0.city, peer0.police: this build has no peer service yet" in error
        assert "--keep-going" in error
        assert not list(net.nodes_dir.glob("*/node.pid"))
        assert all(port_free(port) for port in net.ports.values())

    # up: material created, every node started and ready, listed with its URL.
    output = net.ok("up", *UP)
    assert "created genesis block of channel cctv" in output
    assert ready_lines(output) == {name: net.url(name) for name in STARTED}
    rows = table_rows(output)
    for name in STARTED:
        assert rows[name][3] == net.url(name) and rows[name][5] == "running", rows[name]
        assert rows[name][4] == str(net.pid(name))
        assert (net.nodes_dir / name / "node.log").stat().st_size > 0
    assert "cctvchain network status --config" in output
    assert "cctvchain network down --config" in output

    code, status = net.status()
    assert code == (0 if PEER_SERVICE else 3)
    check_all_running(net, status)

    # A second up starts nothing and says the nodes already run.
    pids = {name: net.pid(name) for name in STARTED}
    output = net.ok("up", *UP)
    assert "all present" in output and "started " not in output
    for name in STARTED:
        assert f"{name}: already running (pid {pids[name]}); left alone" in output
    assert {name: net.pid(name) for name in STARTED} == pids

    # kill -9 the Raft leader: status shows it down; up restarts just that one.
    victim = check_all_running(net, net.status()[1])
    os.kill(pids[victim], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive(pids[victim]) and time.monotonic() < deadline:
        time.sleep(0.05)
    code, status = net.status()
    down = by_name(status)[victim]
    assert code == 3
    assert down["state"] == "down" and down["pid"] is None and not down["healthy"], down
    assert f"pid {pids[victim]} is gone" in down["detail"]
    for name in set(STARTED) - {victim}:
        assert by_name(status)[name]["pid"] == pids[name]

    output = net.ok("up", *UP)
    started = [line for line in output.splitlines() if line.startswith("started ")]
    assert len(started) == 1 and started[0].startswith(f"started {victim} (orderer)"), output
    assert f"{victim}: removing stale pid file (pid {pids[victim]} is gone)" in output
    assert net.pid(victim) != pids[victim] and alive(net.pid(victim))
    status = net.status()[1]
    check_all_running(net, status)
    for name in set(STARTED) - {victim}:
        assert net.pid(name) == pids[name]
    pids[victim] = net.pid(victim)

    # down: peers, then orderers, then CAs; every process gone, every port free.
    output = net.ok("down")
    assert f"network uptest is down: {len(STARTED)} node(s) stopped" in output
    for name in STARTED:
        assert f"stopped {name} (pid {pids[name]}) by SIGTERM" in output
        assert not alive(pids[name]) and not net.pid_file(name).exists()
    assert output.index("stopping orderers") < output.index("stopping CAs")
    if PEER_SERVICE:
        assert output.index("stopping peers") < output.index("stopping orderers")
    assert all(port_free(port) for port in net.ports.values())

    # A second down does nothing; status shows everything down.
    output = net.ok("down")
    assert "nothing to stop" in output and "stopped " not in output
    code, status = net.status()
    assert code == 3 and status["running"] == 0 and status["leader"] is None
    assert {node["state"] for node in status["nodes"]} <= {"down", "no service"}


def test_pid_file_of_another_boot_or_process_is_not_a_live_node(net: Net) -> None:
    """A pid file naming a live process that is not the node (a pid reused after a
    reboot, or by another program) must not count as the node running."""
    net.ok("up", *UP)
    victim = "orderer2.la"
    record = json.loads(net.pid_file(victim).read_text())
    os.killpg(record["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive(record["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    # Same pid file, but its pid is now another live process (its own session, so a
    # wrong signal cannot reach the test): once with that process's real start time and
    # another boot id (a reboot), once in this boot with another start time.
    impostor = subprocess.Popen(["sleep", "120"], start_new_session=True)
    net.extra.append(impostor)
    stat = Path(f"/proc/{impostor.pid}/stat").read_text().rpartition(")")[2].split()
    for changes in (
        {"start_ticks": int(stat[19]), "boot_id": "00000000-another-boot"},
        {"start_ticks": int(stat[19]) + 1},
    ):
        net.pid_file(victim).write_text(json.dumps({**record, "pid": impostor.pid, **changes}))
        code, status = net.status()
        assert code == 3 and by_name(status)[victim]["state"] == "down", by_name(status)[victim]
        assert by_name(status)[victim]["pid"] is None
    result = net.cli("down")  # signals no impostor
    assert result.returncode == 0 and impostor.poll() is None, result.stdout
    assert f"stopped {victim}" not in result.stdout
    assert f"{victim}: removed a stale pid file" in result.stdout
    assert not net.pid_file(victim).exists()
    net.pid_file(victim).write_text(json.dumps({**record, "pid": impostor.pid, **changes}))
    output = net.ok("up", *UP)
    assert (
        f"{victim}: removing stale pid file (pid {impostor.pid} is now another process)" in output
    )
    assert f"started {victim} (orderer)" in output
    assert net.pid(victim) != impostor.pid and alive(net.pid(victim))
    check_all_running(net, net.status()[1])

    # A configuration that puts a stopped node (ca.police) on the port where another node
    # of the network (orderer2.la) answers: refused by that node's name, nothing started.
    os.killpg(net.pid("ca.police"), signal.SIGKILL)
    moved = {**net.ports, "ca.police": net.ports[victim], victim: free_ports(1)[0]}
    other = net.directory / "moved.toml"
    other.write_text(network_toml(moved))
    before = sorted(net.nodes_dir.glob("*/node.pid"))
    result = subprocess.run(
        [PYTHON, "-m", "cctvchain", "network", "up", *UP, "--config", str(other)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert one_line_error(result) == (
        f"cctvchain: error: port {net.ports[victim]} of ca.police "
        f"(127.0.0.1:{net.ports[victim]}) is in use by node {victim}; nothing started"
    )
    assert "started " not in result.stdout
    after = sorted(net.nodes_dir.glob("*/node.pid"))
    assert after == [path for path in before if path.parent.name != "ca.police"]

    # A node that ignores SIGTERM (stopped with SIGSTOP) is killed after the timeout.
    frozen = net.pid("ca.la")
    os.kill(frozen, signal.SIGSTOP)
    result = net.cli("down", "--timeout", "1")
    assert result.returncode == 0, result.stderr
    assert (
        f"warning: ca.la (pid {frozen}) did not stop within 1 s; sending SIGKILL" in result.stderr
    )
    assert f"stopped ca.la (pid {frozen}) by SIGKILL" in result.stdout
    assert "stopped ca.city (pid " in result.stdout and not alive(frozen)
    assert not list(net.nodes_dir.glob("*/node.pid"))
    assert impostor.poll() is None  # down signalled the new node, never the stale pid


# -- a port someone else holds ------------------------------------------------------------


def test_port_held_by_a_foreign_listener_starts_nothing(net: Net) -> None:
    taken = ORDERERS[1]
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", net.ports[taken]))
    listener.settimeout(0.1)

    def serve() -> None:  # a program that is not a node: accepts and hangs up at once
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nnot a cctvchain node\r\n")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        result = net.cli("up", *UP)
        error = one_line_error(result)
        assert result.returncode == 1
        assert error == (
            f"cctvchain: error: port {net.ports[taken]} of {taken} "
            f"(127.0.0.1:{net.ports[taken]}) is in use by another program; nothing started"
        )
        assert "started " not in result.stdout
        assert not list(net.nodes_dir.glob("*/node.pid"))
        assert all(port_free(port) for name, port in net.ports.items() if name != taken)
        code, status = net.status()
        assert code == 3 and status["running"] == 0
        assert by_name(status)[taken]["state"] == "port taken"
    finally:
        stop.set()
        thread.join()
        listener.close()

    # The same node run by hand (no pid file): up leaves it alone and starts the rest;
    # down stops the rest and says the hand-started node still runs.
    manual = subprocess.Popen(
        [PYTHON, "-m", "cctvchain", "node", "start", "--config", str(net.config), "--name", taken],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    net.extra.append(manual)
    deadline = time.monotonic() + 30
    while port_free(net.ports[taken]):  # until it listens
        assert manual.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    output = net.ok("up", *UP)
    assert f"{taken}: already answering at {net.url(taken)}, not started by network up" in output
    assert f"started {taken}" not in output and not net.pid_file(taken).exists()
    assert set(ready_lines(output)) == set(STARTED)
    status = by_name(net.status()[1])
    assert status[taken]["state"] == "running" and not status[taken]["managed"]
    assert "not started by network up" in status[taken]["detail"]
    result = net.cli("down")
    assert result.returncode == 0, result.stderr
    assert f"warning: {taken} still answers at {net.url(taken)}" in result.stderr
    assert f"stopped {taken}" not in result.stdout
    assert manual.poll() is None
    manual.send_signal(signal.SIGTERM)
    assert manual.wait(timeout=20) == 0
    assert all(port_free(port) for port in net.ports.values())


def test_user_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    for action in ("up", "status", "down"):
        result = subprocess.run(
            [PYTHON, "-m", "cctvchain", "network", action, "--config", str(missing)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert one_line_error(result) == (
            f"cctvchain: error: configuration file {missing} does not exist"
        )
    # No --config, and no configs/local.toml where the command runs.
    result = subprocess.run(
        [PYTHON, "-m", "cctvchain", "network", "status"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert "no configs/local.toml here" in one_line_error(result)
