"""Tables fit an 80-column terminal and never cut a number (`edge models`, `edge info`, `edge eval`).

Output is piped here, so `COLUMNS=80` is the terminal width the commands must honour.
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from shufflenet_edge.cli import main
from shufflenet_edge.tables import SECTION, Col, fit, si, terminal_width, thousands


def _run(*args, columns=80):
    r = CliRunner().invoke(main, [str(a) for a in args], prog_name="edge", env={"COLUMNS": str(columns)})
    assert r.exit_code == 0, r.output
    return r.stdout


def _fits(text: str, width: int = 80) -> list[str]:
    lines = text.splitlines()
    too_long = [ln for ln in lines if len(ln) > width]
    assert not too_long, f"{len(too_long)} line(s) over {width} columns, e.g. {too_long[0]!r}"
    assert "…" not in text and "..." not in text, "a cut cell"
    return lines


def test_models_table_fits_80_with_whole_numbers():
    out = _run("models")
    lines = _fits(out)
    rows = json.loads(_run("models", "--json"))
    body = "\n".join(lines)
    for r in rows:
        line = next(ln for ln in lines if ln.split() and ln.split()[0] == r["name"])
        assert f"{r['macs'] / 1e6:,.1f}" in line.split() and f"{r['params'] / 1e6:,.1f}" in line.split()
    assert "source" in body and "hidden" in body and "--wide" in body  # what did not fit is named


def test_models_wide_and_wider_terminals_show_every_column():
    for out in (_run("models", "--wide"), _run("models", columns=200)):
        assert "v1 Table 1/2" in out and "hidden" not in out
        assert max(len(ln) for ln in out.splitlines()) > 80


@pytest.mark.parametrize("name,size", [("v1_g3", None), ("mobilenet_v2", None), ("v2_1.0x", "32")])
def test_info_table_fits_80_and_wide_has_exact_counts(name, size):
    from shufflenet_edge import complexity

    extra = ["--input-size", size] if size else []
    c = complexity(name, int(size) if size else None)
    lines = _fits(_run("info", name, *extra))
    total = next(ln for ln in lines if ln.split()[:1] == ["total"])
    assert si(c.macs) in total.split() and si(c.params) in total.split()
    for layer in c.layers:  # every layer is there, numbers whole (compact units, never cut)
        assert any(ln.split()[:1] == [layer.name] and si(layer.macs) in ln.split() for ln in lines), layer.name
    wide = _run("info", name, *extra, "--wide")
    assert f"{c.macs:,}" in wide and f"{c.memory_access:,}" in wide and "activations" in wide


def test_info_at_a_small_input_names_the_papers_size():
    out = _run("info", "v2_1.0x", "--input-size", "32", "--num-classes", "10")
    assert "paper 146 MFLOPs at 224x224, 1000 classes" in " ".join(out.split())
    assert "(cifar stem)" in out


def test_eval_table_fits_80_with_long_class_names(tmp_path):
    import torch

    from shufflenet_edge import create_model
    from shufflenet_edge.checkpoint import save_checkpoint

    labels = [f"class_{i}_" + "with_a_very_long_descriptive_name_" * 3 for i in range(4)]
    model = create_model("v2_0.5x", num_classes=4, input_size=32, labels=labels)
    ckpt = save_checkpoint(tmp_path / "m.pt", model.edge_meta, model.state_dict())
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.standard_normal((12, 3, 32, 32)).astype(np.float32))
    np.save(tmp_path / "y.npy", np.arange(12) % 4)
    out = _run("eval", "--checkpoint", ckpt, "--data", f"npy:{tmp_path}/x.npy,{tmp_path}/y.npy", "--split", "test")
    lines = _fits(out)
    res = json.loads(_run("eval", "--checkpoint", ckpt, "--data", f"npy:{tmp_path}/x.npy,{tmp_path}/y.npy",
                          "--split", "test", "--json"))
    flat = re.sub(r"\s+", "", out)
    for name, v in res["per_class"].items():
        assert name.replace("_", "") and re.sub(r"\s+", "", name) in flat  # folded, never cut
        assert any(f"{v['accuracy']:.2%}" in ln for ln in lines)
    assert torch is not None


# ---------------------------------------------------------------- the helper itself


def _table_text(fitted, width):
    from rich.console import Console

    con = Console(width=width, record=True, file=open("/dev/null", "w"))
    con.print(fitted.table)
    return con.export_text()


def test_fit_goes_compact_then_drops_columns_never_cuts_numbers():
    cols = (Col("name"), Col("a", thousands, si, number=True), Col("b", thousands, si, number=True, drop=1),
            Col("note", drop=2))
    rows = [("x" * 10, 123_456_789, 987_654_321, "n" * 30), SECTION, ("total", 1, 2, "")]
    full = fit(cols, rows, width=200)
    assert not full.hidden and not full.compact and "123,456,789" in _table_text(full, 200)
    narrow = fit(cols, rows, width=40)
    text = _table_text(narrow, 40)
    assert narrow.compact and narrow.hidden == ["note"] and "123M" in text and "988M" in text
    assert max(map(len, text.splitlines())) <= 40
    tiny = fit(cols, rows, width=20)
    assert tiny.hidden == ["b", "note"] and max(map(len, _table_text(tiny, 20).splitlines())) <= 20
    folded = _table_text(fit(cols, rows, width=14), 14)  # the name folds, the number stays whole
    assert max(map(len, folded.splitlines())) <= 14 and "123M" in folded and "…" not in folded
    assert fit(cols, rows, width=20, wide=True).hidden == []


def test_si_units():
    assert [si(v) for v in (0, 7, 999, 1000, 1234, 999_499, 144_907_992, 2.5e9, None)] == \
        ["0", "7", "999", "1K", "1.23K", "999K", "145M", "2.5G", "-"]


def test_columns_is_honoured_when_piped(monkeypatch):
    monkeypatch.setenv("COLUMNS", "93")
    assert terminal_width() == 93
    monkeypatch.delenv("COLUMNS")
    assert terminal_width() == 160
