"""A real OpenSSH server on 127.0.0.1 playing a Linux board, and a board-like Python for it.

``ssh_board``: sshd on a free port with its own host key and sshd_config, key login only (as
the current user: root in CI), an authorized key made here, a known_hosts file written here and
an ssh config for ``$EDGE_SSH_CONFIG``. ``board_python``: a separate venv holding only what a
Raspberry Pi image has (numpy<2 and tflite-runtime 2.14.0, no onnxruntime), built once and kept
under the cache directory, so runner.py runs on the "board" exactly as it would on a Pi.
"""
from __future__ import annotations

import contextlib
import fcntl
import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
SFTP_SERVER = next((p for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
                                "/usr/libexec/sftp-server") if os.path.exists(p)), "internal-sftp")
BOARD_PACKAGES = ("numpy<2", "tflite-runtime==2.14.0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True)
    return (path.with_suffix(".pub")).read_text().strip()


@dataclass
class SshBoard:
    dir: Path
    port: int
    user: str
    key: Path  # the authorized client key
    wrong_key: Path  # a key the board does not know
    host_key_line: str  # known_hosts line for the real host key
    known_hosts: Path
    config: Path  # ssh config with IdentityFile and UserKnownHostsFile: what $EDGE_SSH_CONFIG gets
    log: Path
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}"

    def client_config(self, name: str, identity: bool = True, known_hosts: str | None = None) -> Path:
        """Another ssh config for the same board: without the key, or with other known_hosts content."""
        kh = self.known_hosts
        if known_hosts is not None:
            kh = self.dir / f"{name}.known_hosts"
            kh.write_text(known_hosts)
        lines = ["Host 127.0.0.1", f"    UserKnownHostsFile {kh}", "    GlobalKnownHostsFile /dev/null",
                 "    LogLevel ERROR"]
        if identity:
            lines += [f"    IdentityFile {self.key}", "    IdentitiesOnly yes"]
        path = self.dir / f"{name}.ssh_config"
        path.write_text("\n".join(lines) + "\n")
        return path

    def connection_of(self, pid: int) -> int | None:
        """The sshd process serving the connection that ``pid`` runs under (a child of the listening sshd)."""
        while pid > 1:
            parent = ppid(pid)
            if parent == self.proc.pid:
                return pid
            pid = parent
        return None


def ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _start_sshd(root: Path) -> SshBoard:
    if not os.path.exists(SSHD) or not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        pytest.skip("openssh-server/openssh-client are not installed (scripts/setup.sh --system installs them)")
    try:
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
    except PermissionError:
        pytest.skip("cannot create /run/sshd (sshd needs it; run as root)")
    user = getpass.getuser()
    host_pub = _keygen(root / "host_ed25519")
    key_pub = _keygen(root / "id_ed25519")
    _keygen(root / "wrong_ed25519")
    (root / "authorized_keys").write_text(key_pub + "\n")
    port = free_port()
    config = root / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {root / 'host_ed25519'}",
        f"PidFile {root / 'sshd.pid'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",  # pytest's temp directories are not owned the way sshd insists on
        f"Subsystem sftp {SFTP_SERVER}",
        "LogLevel VERBOSE",
    ]) + "\n")
    check = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, f"sshd rejects its config: {check.stderr}"
    log = root / "sshd.log"
    proc = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(log)], stdin=subprocess.DEVNULL)
    deadline = time.time() + 20
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise AssertionError(f"sshd did not start: {log.read_text() if log.exists() else ''}")
        time.sleep(0.1)
    host_line = f"[127.0.0.1]:{port} {' '.join(host_pub.split()[:2])}"
    known_hosts = root / "known_hosts"
    known_hosts.write_text(host_line + "\n")
    board = SshBoard(dir=root, port=port, user=user, key=root / "id_ed25519", wrong_key=root / "wrong_ed25519",
                     host_key_line=host_line, known_hosts=known_hosts, config=root / "ssh_config", log=log, proc=proc)
    board.config = board.client_config("ssh")
    return board


@pytest.fixture(scope="session")
def ssh_board(tmp_path_factory):
    board = _start_sshd(tmp_path_factory.mktemp("sshd"))
    yield board
    board.proc.terminate()
    try:
        board.proc.wait(10)
    except subprocess.TimeoutExpired:
        board.proc.kill()
        board.proc.wait()


@pytest.fixture
def ssh_env(ssh_board, monkeypatch):
    """The user's side: $EDGE_SSH_CONFIG points at the board's config; no agent, no identity override."""
    monkeypatch.setenv("EDGE_SSH_CONFIG", str(ssh_board.config))
    monkeypatch.delenv("EDGE_SSH_IDENTITY", raising=False)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return ssh_board


def board_venv_dir() -> Path:
    from shufflenet_edge.bench.cache import cache_root

    return cache_root() / "test-board-venv"


@pytest.fixture(scope="session")
def board_python() -> str:
    """python3 of the board venv (numpy<2 + tflite-runtime 2.14.0 only), created on first use."""
    venv = board_venv_dir()
    python = venv / "bin" / "python"
    ready = venv / ".ready"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / ".test-board-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs build it once
        if ready.is_file() and ready.read_text() == "\n".join(BOARD_PACKAGES) and python.exists():
            return str(python)
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        res = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                              *BOARD_PACKAGES], capture_output=True, text=True)
        if res.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise AssertionError(f"cannot build the board venv: {res.stderr[-2000:]}")
        ready.write_text("\n".join(BOARD_PACKAGES))
    return str(python)
