"""``--target ssh://user@host[:port]``: benchmark on a Linux board (Raspberry Pi, Jetson, any aarch64 box).

The artifact (with its ``<file>.json`` sidecar) and the self-contained runner files are copied
with scp into a fresh ``mktemp -d`` directory on the board, ``runner.py`` runs there with the
board's ``python3`` (or ``--remote-python``), optionally pinned with ``taskset -c``, and its
JSON line comes back; the directory is removed afterwards. The board needs python3 with numpy
and a runtime for the file type (``tflite-runtime`` or ``ai-edge-litert`` for .tflite,
``onnxruntime`` for .onnx).

The system's OpenSSH client does the work, always with ``BatchMode=yes`` (nothing prompts: use a
key, not a password) and ``StrictHostKeyChecking=yes`` (the board's host key must already be in
known_hosts: connect once with plain ``ssh`` to check and add it). Your ssh settings:

* ``$EDGE_SSH_CONFIG``: an ssh config file, passed as ``ssh -F`` (then ~/.ssh/config is not read);
  use it for ``IdentityFile``, ``UserKnownHostsFile``, ``ProxyJump``, host aliases ...
* ``$EDGE_SSH_IDENTITY``: a private key file, passed as ``ssh -i`` with ``IdentitiesOnly=yes``.
* ``$EDGE_SSH_TIMEOUT``: seconds to wait for the connection (``ConnectTimeout``, default 10).

Without them ssh reads ~/.ssh/config and offers your default keys and agent as usual.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from ...errors import UsageError
from .base import RunSpec, Target, TargetError, parse_cpu_list, parse_runner_output, register_target, runner_args, runner_files

_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\Z")
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\Z")  # a name, alias or IPv4 address, never an option
_IPV6 = re.compile(r"[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?\Z")
_REMOTE_DIR = re.compile(r"/[A-Za-z0-9_./-]*edge-bench\.[A-Za-z0-9]+\Z")
# a fixed script (no user input): the remote shell picks $TMPDIR, the template marks our directories
_MKTEMP = 'mktemp -d "${TMPDIR:-/tmp}/edge-bench.XXXXXXXX"'


def parse_ssh_url(url: str) -> tuple[str | None, str, int | None]:
    """``ssh://user@host[:port]`` -> (user, host, port); a one-line UsageError for anything else."""
    bad = f"bad ssh target '{url}': use ssh://user@host or ssh://user@host:port"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UsageError(bad) from None
    if parts.scheme != "ssh" or parts.path not in ("", "/") or parts.query or parts.fragment or not parts.hostname:
        raise UsageError(bad)
    if parts.password is not None:
        raise UsageError(f"ssh target '{parts.hostname}': passwords in the URL are not supported; "
                         "log in with a key (ssh-copy-id, or $EDGE_SSH_IDENTITY)")
    user = parts.username
    host = parts.hostname
    if user is not None and not _USER.match(user):
        raise UsageError(f"{bad} (bad user name '{user}')")
    if not (_HOST.match(host) or ("[" in parts.netloc and _IPV6.match(host))):
        raise UsageError(f"{bad} (bad host name '{host}')")
    return user, host, port


def signal_words(sig: int) -> str:
    """A remote process's death by signal ``sig`` in words, with the likely cause."""
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    hint = {"SIGSEGV": "the runtime crashed: a corrupt or truncated file, or one this runtime version cannot read",
            "SIGBUS": "the runtime crashed: a corrupt or truncated file?",
            "SIGILL": "the runtime uses instructions this CPU lacks (a wheel built for a newer CPU)",
            "SIGKILL": "out of memory?"}.get(name, "")
    return f"was killed by {name}" + (f" ({hint})" if hint else "")


def last_line(text: str) -> str:
    """The last non-empty line (a tool's final complaint), at most 300 characters."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


@register_target("ssh")
class SshTarget(Target):
    """A board reached with the system's ssh and scp; see the module docstring for settings.
    ``remote_python``: the board's interpreter (``--remote-python``, default python3)."""

    emulated = False
    until_stable = True
    options = ("remote_python",)
    url_help = "ssh://user@host[:port]"
    # formats: every export format (a multi-file one, ncnn's .param + .bin, travels whole); ncnn
    # and pte run where the board has the ncnn / executorch package, else its runner says which is missing

    def __init__(self, url: str, connect_timeout: int | None = None, remote_python: str | None = None):
        self.remote_python = remote_python or "python3"
        self.user, self.host, self.port = parse_ssh_url(url)
        at = f"{self.user}@" if self.user else ""
        self.login = f"{at}{self.host}"  # ssh's destination (it takes a bare IPv6 address)
        self.scp_host = f"{at}[{self.host}]" if ":" in self.host else self.login  # scp needs IPv6 in brackets
        self.name = f"ssh://{self.scp_host}" + (f":{self.port}" if self.port else "")
        env_timeout = os.environ.get("EDGE_SSH_TIMEOUT")
        try:
            self.connect_timeout = int(connect_timeout or env_timeout or 10)
        except ValueError:
            raise UsageError(f"bad $EDGE_SSH_TIMEOUT '{env_timeout}': use a number of seconds") from None

    @classmethod
    def from_url(cls, url: str, **options) -> SshTarget:
        return cls(url, **options)

    # -- the ssh and scp command lines (argument lists; only the remote command is a shell string)

    def _options(self) -> list[str]:
        opts = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"ConnectTimeout={self.connect_timeout}",
                # a board that vanishes mid-run (power, Wi-Fi) ends the run within ~30 s instead of hanging
                "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3"]
        config = os.environ.get("EDGE_SSH_CONFIG")
        if config:
            if not os.path.isfile(config):
                raise UsageError(f"$EDGE_SSH_CONFIG names a missing file: {config}")
            opts = ["-F", config, *opts]
        identity = os.environ.get("EDGE_SSH_IDENTITY")
        if identity:
            if not os.path.isfile(identity):
                raise UsageError(f"$EDGE_SSH_IDENTITY names a missing file: {identity}")
            opts += ["-i", identity, "-o", "IdentitiesOnly=yes"]
        return opts

    def _ssh(self, command: str, timeout: float | None = None):
        """Run one shell command line on the board (ssh sends a single string: callers quote every word)."""
        tool = shutil.which("ssh")
        if not tool:
            raise UsageError("ssh is not installed (Debian/Ubuntu: apt install openssh-client)")
        port = ["-p", str(self.port)] if self.port else []
        argv = [tool, *self._options(), *port, "-T", "--", self.login, command]
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise TargetError(f"{self.name}: no answer within {timeout:.0f} s") from None

    def _scp(self, sources: list[Path], remote_dir: str, timeout: float) -> None:
        tool = shutil.which("scp")
        if not tool:
            raise UsageError("scp is not installed (Debian/Ubuntu: apt install openssh-client)")
        port = ["-P", str(self.port)] if self.port else []
        argv = [tool, "-q", *self._options(), *port, "--", *map(str, sources), f"{self.scp_host}:{remote_dir}/"]
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise TargetError(f"{self.name}: copying the files took longer than {timeout:.0f} s") from None
        if res.returncode != 0:
            raise TargetError(f"{self.name}: copying the files failed: {self._ssh_failure(res.stderr)}")

    def _ssh_failure(self, stderr: str) -> str:
        """ssh's exit 255 (its own failure, not the remote command's) in words a user can act on."""
        text = stderr or ""
        low = text.lower()
        where = f"{self.host}" + (f" port {self.port}" if self.port else "")
        if "remote host identification has changed" in low or ("host key for" in low and "has changed" in low):
            return (f"the host key of {where} does not match known_hosts (re-installed board, or someone in "
                    f"between); check it, then remove the old entry with ssh-keygen -R")
        if "host key verification failed" in low or "host key is known" in low:
            port = f"-p {self.port} " if self.port else ""
            return (f"{where} is not in known_hosts and host keys are checked: connect once with "
                    f"'ssh {port}{self.login}' to verify and add its key")
        if "permission denied" in low or "too many authentication failures" in low:
            return (f"login as {self.user or 'the default user'} failed ({last_line(text)}): put your public key "
                    "in the board's authorized_keys, or point $EDGE_SSH_IDENTITY at the right key")
        if "could not resolve hostname" in low or "name or service not known" in low:
            return f"unknown host name '{self.host}'"
        if "connection refused" in low:
            return f"cannot reach {where}: connection refused (is sshd running there?)"
        if "timed out" in low and "connect to host" in low:
            return f"cannot reach {where}: connection timed out"
        if "no route to host" in low or "network is unreachable" in low:
            return f"cannot reach {where}: {last_line(text).split(': ')[-1]}"
        if ("closed by remote host" in low or "connection reset" in low or "broken pipe" in low
                or "not responding" in low or "connection closed" in low or "lost connection" in low):
            return f"the connection to {where} dropped ({last_line(text)})"
        return last_line(text) or "ssh ended without a message (the remote command was killed?)"

    def _check(self, res, what: str):
        if res.returncode == 255:
            raise TargetError(f"{self.name}: {self._ssh_failure(res.stderr)}")
        if res.returncode != 0:
            raise TargetError(f"{self.name}: {what} failed: {last_line(res.stderr) or last_line(res.stdout)}")
        return res

    # -- the run

    def _python_word(self, python: str) -> str:
        """The board's interpreter, quoted; ``~/`` still means the remote home directory."""
        if python.startswith("~/"):
            return '"$HOME"/' + shlex.quote(python[2:])
        return shlex.quote(python)

    def _run_failure(self, res, python: str) -> TargetError:
        """The runner produced no JSON: say whether python, numpy, taskset or the link is missing."""
        err = res.stderr or ""
        if res.returncode == 255:
            return TargetError(f"{self.name}: {self._ssh_failure(err)}")
        missing = re.search(r"No module named '([^']+)'", err)
        if missing:
            return TargetError(f"{self.name}: {python} on the board lacks the module '{missing.group(1)}' "
                               f"(pip install {missing.group(1).split('.')[0]} there, or pass --remote-python)")
        if res.returncode == 127 or ("not found" in err.lower() and "command" in err.lower()):
            if re.search(r"taskset: (command )?not found", err):
                return TargetError(f"{self.name}: taskset is not installed on the board (util-linux); "
                                   "install it or drop --cpus")
            return TargetError(f"{self.name}: {python} is not installed on the board "
                               "(install python3 with numpy and a runtime, or pass --remote-python PATH)")
        if 128 < res.returncode < 255:
            return TargetError(f"{self.name}: the runner {signal_words(res.returncode - 128)}")
        if "taskset" in err:
            return TargetError(f"{self.name}: cannot pin to cpus: {last_line(err)}")
        return TargetError(f"{self.name}: the runner failed: {last_line(err) or last_line(res.stdout) or 'no output'}")

    def run(self, spec: RunSpec) -> list[dict]:
        from ...export.formats import SUFFIXES

        if spec.is_file and Path(spec.artifact).suffix.lower() not in SUFFIXES:
            raise UsageError(f"{Path(spec.artifact).name}: a board runs {' or '.join(SUFFIXES)} files")
        art = spec.file("the torch engine runs only on the host; export the model to ONNX or TFLite for a board")
        if spec.cpus:
            parse_cpu_list(spec.cpus)  # a bad list is the user's mistake: say so before connecting
        python = self.remote_python

        remote_dir = self._make_remote_dir()
        try:
            with tempfile.TemporaryDirectory(prefix="edge-ssh-") as stage:
                # fixed safe names on the board: the user's file name never reaches a remote shell
                staged = art.renamed(stage, "model")
                files = [*art.copy_to(staged), *runner_files()]
                size = sum(f.stat().st_size for f in files)
                self._scp(files, remote_dir, timeout=60 + self.connect_timeout + size / 1e6)
            argv = runner_args(spec, f"{remote_dir}/{staged.path.name}", peak=True)
            words = [self._python_word(python), shlex.quote(f"{remote_dir}/runner.py"), *map(shlex.quote, argv)]
            if spec.cpus:
                words = ["taskset", "-c", shlex.quote(spec.cpus), *words]
            # The shell waits for the runner instead of exec'ing it: a crash comes back as exit 128+signal
            # (ssh itself would turn a killed command into its own 255), and the recorded pid lets the
            # clean-up stop a runner orphaned by a dropped connection or Ctrl-C.
            pid_file = shlex.quote(f"{remote_dir}/runner.pid")
            res = self._ssh("sh -c " + shlex.quote(f"{' '.join(words)} & echo $! > {pid_file}; wait $!"))
            try:
                records = parse_runner_output(res.stdout, self.name)
            except TargetError:
                if '"error"' in (res.stdout or ""):
                    raise  # the runner's own one-line reason (no runtime, corrupt file, ...)
                raise self._run_failure(res, python) from None
        finally:
            self._remove_remote_dir(remote_dir)
        for rec in records:
            rec["device"] = {**rec.get("device", {}), "target": self.name, "emulated": False}
            if spec.cpus:
                rec["device"]["cpus"] = spec.cpus
        return records

    def _make_remote_dir(self) -> str:
        res = self._check(self._ssh(_MKTEMP, timeout=self.connect_timeout + 30), "mktemp -d")
        lines = res.stdout.strip().splitlines()
        path = lines[-1].strip() if lines else ""  # the last line: a chatty shell rc file may print first
        if not _REMOTE_DIR.match(path):
            raise TargetError(f"{self.name}: mktemp -d on the board printed '{path[:100]}', not a directory name")
        return path

    def _remove_remote_dir(self, path: str) -> None:
        # best effort: after a dropped connection there is nobody to ask, and the error that matters is already raised
        pid_file = shlex.quote(f"{path}/runner.pid")
        try:
            self._ssh(f"kill $(cat {pid_file} 2>/dev/null) 2>/dev/null; rm -rf -- {shlex.quote(path)}",
                      timeout=self.connect_timeout + 20)
        except TargetError:
            pass
