"""--target ssh://: a real sshd on 127.0.0.1 plays the board, a tflite-runtime-only venv its python3."""
import glob
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from shufflenet_edge.bench.targets import RunSpec, TargetError, resolve_target
from shufflenet_edge.bench.targets.ssh import SshTarget, parse_ssh_url
from shufflenet_edge.errors import UsageError
from shufflenet_edge.runtime import timing
from sshd_fixture import board_python, free_port, ssh_board, ssh_env  # noqa: F401  (pytest fixtures)

ROOT = Path(__file__).resolve().parents[1]


def test_url_parsing():
    assert parse_ssh_url("ssh://pi@board:2222") == ("pi", "board", 2222)
    assert parse_ssh_url("ssh://board") == (None, "board", None)
    t = resolve_target("arm", "ssh://pi@board:2222")
    assert isinstance(t, SshTarget) and t.name == "ssh://pi@board:2222" and not t.emulated
    assert SshTarget("ssh://root@[::1]:22").scp_host == "root@[::1]"
    assert t._python_word("~/venv/bin/python3") == '"$HOME"/venv/bin/python3'
    assert t._python_word("/opt/my py/python3; rm -rf x") == "'/opt/my py/python3; rm -rf x'"
    for bad in ("ssh://-oProxyCommand=touch%20x", "ssh://u;id@h", "ssh://u@h/dir", "ssh://u@h:0x1", "ssh://"):
        with pytest.raises(UsageError, match="bad ssh target"):
            SshTarget(bad)
    with pytest.raises(UsageError, match="passwords in the URL"):
        SshTarget("ssh://pi:secret@board")


def test_bad_settings_are_usage_errors(tmp_path, monkeypatch):
    f = tmp_path / "m.tflite"
    f.write_bytes(b"x")
    t = SshTarget("ssh://pi@board")
    with pytest.raises(UsageError, match="a board runs .onnx or .tflite or .param or .pte files"):
        t.run(RunSpec(artifact=tmp_path / "m.pt"))
    with pytest.raises(UsageError, match="torch engine runs only on the host"):
        t.run(RunSpec(artifact=None))
    with pytest.raises(UsageError, match="bad --cpus"):
        t.run(RunSpec(artifact=f, cpus="4-x"))
    monkeypatch.setenv("EDGE_SSH_CONFIG", str(tmp_path / "nope"))
    with pytest.raises(UsageError, match="EDGE_SSH_CONFIG names a missing file"):
        t.run(RunSpec(artifact=f))


@pytest.fixture(scope="module")
def tflite_file():
    from shufflenet_edge.bench.cache import cached_export

    return cached_export("v2_0.5x", format="tflite", input_size=64)


@pytest.fixture(scope="module")
def onnx_file():
    from shufflenet_edge.bench.cache import cached_export

    return cached_export("v2_0.5x", format="onnx", input_size=64)


def remote_dirs():
    return set(glob.glob("/tmp/edge-bench.*"))


def bench(board, artifact, python, **kw):
    spec = RunSpec(artifact=Path(artifact), **{"runs": 12, "warmup": 2, "rounds": 2, **kw})
    return resolve_target("arm", board.url, remote_python=python).run(spec)


@pytest.mark.slow
def test_tflite_runtime_board(ssh_env, board_python, tflite_file):
    before = remote_dirs()
    recs = bench(ssh_env, tflite_file, board_python, threads=[1, 2])
    assert [r["threads"] for r in recs] == [1, 2]
    for r in recs:
        # the project venv would pick ai-edge-litert: tflite-runtime proves the board's python ran it
        assert r["engine"] == "tflite-runtime" and r["runtime_version"] == "2.14.0"
        assert r["device"]["target"] == ssh_env.url and r["device"]["emulated"] is False
        assert r["device"]["cpu"] == timing.cpu_model() and r["device"]["cores"] == os.cpu_count()
        lat = r["latency_ms"]
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] and lat["mean"] > 0 and lat["std"] >= 0
        assert r["runs"] == 12 and r["warmup"] == 2 and r["rounds"]["n"] == 2
        assert r["size_bytes"] == os.path.getsize(tflite_file)
        assert r["cpu_peak_gmacs"] > 0 and r["peak_rss_mb"] > 0
    assert remote_dirs() == before, "the remote temp directory was left behind"
    assert "Accepted publickey" in ssh_env.log.read_text()


@pytest.mark.slow
def test_cpus_pinning(ssh_env, board_python, tflite_file):
    home = os.path.expanduser("~")  # the board is this machine: ~/ on the board is our home
    python = "~/" + os.path.relpath(board_python, home) if board_python.startswith(home + "/") else board_python
    recs = bench(ssh_env, tflite_file, python, cpus="0")
    assert recs[0]["device"]["cores_usable"] == 1 and recs[0]["device"]["cpus"] == "0"
    with pytest.raises(TargetError, match="cannot pin to cpus"):
        bench(ssh_env, tflite_file, board_python, cpus=str(os.cpu_count() + 64))


@pytest.mark.slow
def test_identity_from_environment(ssh_board, board_python, tflite_file, monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("EDGE_SSH_CONFIG", str(ssh_board.client_config("nokey", identity=False)))
    monkeypatch.setenv("EDGE_SSH_IDENTITY", str(ssh_board.wrong_key))
    with pytest.raises(TargetError, match=r"login as \w+ failed .*Permission denied.*EDGE_SSH_IDENTITY") as e:
        bench(ssh_board, tflite_file, board_python)
    assert "\n" not in str(e.value)
    monkeypatch.setenv("EDGE_SSH_IDENTITY", str(ssh_board.key))
    assert bench(ssh_board, tflite_file, board_python, runs=3, rounds=1)[0]["engine"] == "tflite-runtime"


@pytest.mark.slow
def test_host_keys_are_checked(ssh_board, board_python, tflite_file, monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("EDGE_SSH_CONFIG", str(ssh_board.client_config("unknown", known_hosts="")))
    with pytest.raises(TargetError, match="is not in known_hosts and host keys are checked"):
        bench(ssh_board, tflite_file, board_python)
    other = (ssh_board.dir / "wrong_ed25519.pub").read_text().split()[:2]
    monkeypatch.setenv("EDGE_SSH_CONFIG", str(ssh_board.client_config(
        "changed", known_hosts=f"[127.0.0.1]:{ssh_board.port} {' '.join(other)}\n")))
    with pytest.raises(TargetError, match="does not match known_hosts"):
        bench(ssh_board, tflite_file, board_python)


@pytest.mark.slow
def test_unreachable_port(ssh_env, tflite_file):
    port = free_port()
    with pytest.raises(TargetError, match=f"cannot reach 127.0.0.1 port {port}: connection refused"):
        SshTarget(f"ssh://{ssh_env.user}@127.0.0.1:{port}").run(RunSpec(artifact=Path(tflite_file)))


@pytest.mark.slow
def test_board_without_a_runtime_or_python(ssh_env, board_python, onnx_file, tflite_file, tmp_path):
    before = remote_dirs()
    with pytest.raises(TargetError, match=r"no runtime for \.onnx files is installed"):
        bench(ssh_env, onnx_file, board_python)
    for cpus in (None, "0"):  # alone, and behind taskset
        with pytest.raises(TargetError, match="/no/python3 is not installed on the board"):
            bench(ssh_env, tflite_file, "/no/python3", cpus=cpus)
    bare = tmp_path / "bare"  # a python without numpy, as on a fresh board image
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    with pytest.raises(TargetError, match="lacks the module 'numpy'"):
        bench(ssh_env, tflite_file, str(bare / "bin" / "python"))
    bad = tmp_path / "corrupt.tflite"
    bad.write_bytes(Path(tflite_file).read_bytes()[:2000])
    # tflite-runtime 2.14 has no flatbuffer verifier: a truncated file crashes it, as on a real Pi
    with pytest.raises(TargetError, match=r"the runner was killed by SIGSEGV \(the runtime crashed: a corrupt"):
        bench(ssh_env, bad, board_python)
    bad.write_bytes(b"TFL3" + bytes(range(256)) * 4)
    with pytest.raises(TargetError, match="tflite-runtime cannot load"):
        bench(ssh_env, bad, board_python)
    assert remote_dirs() == before


@pytest.mark.slow
def test_connection_dropping_mid_run(ssh_env, board_python, tflite_file):
    """The sshd process serving the run is killed while runner.py works: one-line error, no hang."""
    killed = {}

    def drop():
        deadline = time.time() + 60
        while time.time() < deadline:
            for proc in Path("/proc").glob("[0-9]*"):
                argv = _cmdline(proc).split(b"\0")
                if len(argv) > 1 and argv[1].endswith(b"/runner.py") and b"/edge-bench." in argv[1]:
                    conn = ssh_env.connection_of(int(proc.name))
                    if conn:
                        time.sleep(1.0)  # let it get into the timed loop
                        os.kill(conn, signal.SIGKILL)
                        killed.update(conn=conn, runner=int(proc.name))
                        return
            time.sleep(0.1)

    before = remote_dirs()
    t = threading.Thread(target=drop)
    t.start()
    t0 = time.time()
    with pytest.raises(TargetError, match="dropped") as e:
        bench(ssh_env, tflite_file, board_python, runs=200000, warmup=1, rounds=1)
    t.join()
    assert killed and time.time() - t0 < 60
    assert "\n" not in str(e.value)
    # the clean-up connection stopped the orphaned runner and removed its directory
    for _ in range(50):
        if not Path(f"/proc/{killed['runner']}").exists():
            break
        time.sleep(0.1)
    assert not Path(f"/proc/{killed['runner']}").exists() and remote_dirs() == before


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.slow
def test_cli(ssh_env, board_python, tflite_file, edge_cli, tmp_path):
    if not (ROOT / "shufflenet_edge" / "cli" / "bench_cmd.py").is_file():
        pytest.skip("edge bench is not there yet")
    out = tmp_path / "r.json"
    r = edge_cli("bench", "--artifact", tflite_file, "--device", "arm", "--target", ssh_env.url,
                 "--remote-python", board_python, "--runs", "5", "--warmup", "1", "--out", out)
    assert r.returncode == 0, r.stderr
    import json

    recs = json.loads(out.read_text())
    recs = recs if isinstance(recs, list) else recs["records"]
    assert recs[0]["engine"] == "tflite-runtime" and recs[0]["device"]["target"] == ssh_env.url
    r = edge_cli("bench", "--artifact", tflite_file, "--device", "arm", "--target",
                 f"ssh://{ssh_env.user}@127.0.0.1:{free_port()}", "--runs", "5")
    assert r.returncode == 1 and r.stderr.strip().startswith("error: ") and "connection refused" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
