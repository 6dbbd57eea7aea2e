"""Every problem the `edge` command can meet ends as one `error: ...` line with the right exit code.

Click's own usage errors (bad option value, missing option or argument, unknown option or
command) included: never Click's multi-line Usage/Error block, never a traceback unless
`--debug` / EDGE_DEBUG=1 asks for one.
"""
from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from shufflenet_edge.cli import main
from shufflenet_edge.cli.app import BUG_NOTE, EdgeGroup
from shufflenet_edge.errors import RuntimeFailure, UsageError, error_line, one_line


def _run(args, group=main, env=None):
    return CliRunner().invoke(group, [str(a) for a in args], prog_name="edge", env=env)


def _one_error_line(r) -> str:
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in r.stderr and "Usage:" not in r.stderr, r.stderr
    return lines[0]


@pytest.mark.parametrize("args,words", [
    (["eval", "--artifact", "x.onnx", "--split", "bogus"], ["--split", "bogus", "edge eval --help"]),  # bad value
    (["bench", "--runs", "many"], ["--runs", "many"]),  # not an integer
    (["export", "--model", "v1_g3"], ["--format"]),  # missing option
    (["info"], ["MODEL"]),  # missing argument
    (["models", "--bogus"], ["--bogus", "edge models --help"]),  # unknown option
    (["--bogus"], ["--bogus"]),  # unknown global option
    (["benchh"], ["benchh"]),  # unknown command
    (["reproduce", "v3-table"], ["v3-table"]),  # bad choice of argument
    (["eval", "--threads", "0", "--artifact", "x.onnx"], ["--threads", "0"]),  # out of range
])
def test_click_usage_errors_are_one_line_exit_2(args, words):
    r = _run(args)
    assert r.exit_code == 2, r.output
    line = _one_error_line(r)
    for word in words:
        assert word in line, line


def test_help_and_version_still_exit_0():
    assert _run(["--help"]).exit_code == 0 and "--debug" in _run(["--help"]).output
    r = _run(["--version"])
    assert r.exit_code == 0 and "shufflenet-edge" in r.output


def test_edge_errors_keep_their_exit_codes():
    r = _run(["info", "v1_g5"])
    assert r.exit_code == 2 and _one_error_line(r).startswith("error: unknown model 'v1_g5'")


def _buggy_group():
    """The real group class with commands that fail as a bug, a usage error and a failure would."""

    @click.group(cls=EdgeGroup)
    @click.option("--debug", is_flag=True, expose_value=False, is_eager=True,
                  callback=main.params[[p.name for p in main.params].index("debug")].callback)
    def g():
        pass

    @g.command("bug")
    def bug():
        {}["missing"]

    @g.command("usage")
    def usage():
        raise UsageError("bad --thing 3: use\n  1 or 2")

    @g.command("fail")
    def fail():
        raise RuntimeFailure("the device dropped")

    @g.command("ok")
    def ok():
        click.echo("fine")
        return 7  # a return value is not an exit status

    @g.command("interrupt")
    def interrupt():
        raise KeyboardInterrupt

    @g.command("terminate")
    def terminate():
        from shufflenet_edge.io_utils import Terminated

        raise Terminated

    return g


def test_unexpected_exception_is_one_line_naming_a_bug_exit_1():
    r = _run(["bug"], _buggy_group(), env={"EDGE_DEBUG": ""})
    assert r.exit_code == 1
    line = _one_error_line(r)
    assert line == f"error: KeyError: 'missing' ({BUG_NOTE})"


@pytest.mark.parametrize("args,env", [(["--debug", "bug"], {"EDGE_DEBUG": ""}), (["bug"], {"EDGE_DEBUG": "1"})])
def test_debug_shows_the_traceback(args, env):
    r = _run(args, _buggy_group(), env=env)
    assert r.exit_code == 1
    assert "Traceback (most recent call last)" in r.stderr and "KeyError" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: KeyError")


def test_debug_flag_does_not_stick_to_the_next_invocation():
    g = _buggy_group()
    assert "Traceback" in _run(["--debug", "bug"], g, env={"EDGE_DEBUG": ""}).stderr
    assert "Traceback" not in _run(["bug"], g, env={"EDGE_DEBUG": ""}).stderr


def test_usage_failure_interrupt_and_success_exit_codes():
    g = _buggy_group()
    r = _run(["usage"], g)
    assert r.exit_code == 2 and _one_error_line(r) == "error: bad --thing 3: use 1 or 2"
    r = _run(["fail"], g)
    assert r.exit_code == 1 and _one_error_line(r) == "error: the device dropped"
    r = _run(["interrupt"], g)
    assert r.exit_code == 130 and _one_error_line(r) == "error: interrupted"
    r = _run(["terminate"], g)
    assert r.exit_code == 143 and _one_error_line(r) == "error: terminated"
    r = _run(["ok"], g)
    assert r.exit_code == 0 and r.output.strip() == "fine"


def test_engine_errors_share_the_base():
    from shufflenet_edge.errors import EdgeError
    from shufflenet_edge.runtime.engines import EngineError

    assert issubclass(EngineError, EdgeError) and EngineError("x").exit_code == 1


def test_one_line_helper():
    assert one_line("a\n  b\tc") == "a b c"
    assert one_line(ValueError()) == "ValueError"
    long = one_line("x" * 500, limit=50)
    assert len(long) == 50 and long.endswith("...")
    assert error_line(UsageError("no\nway")) == "error: no way"


def test_console_script_prints_one_line(edge_cli):
    r = edge_cli("models", "--bogus")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: no such option '--bogus' (see `edge models --help`)"]
