import json


def test_models_json_lists_every_model(cli):
    from shufflenet_edge import list_models

    r = cli("models", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["name"] for row in rows] == list_models()
    by = {row["name"]: row for row in rows}
    for g in (1, 2, 3, 4, 8):
        for s in ("0.25x", "0.5x", "1.5x", "2.0x"):
            assert f"v1_g{g}_{s}" in by
    assert {"v1_g3", "v1_g3_0.5x", "v1_g8_2.0x", "v2_1.0x", "v2_0.5x", "mobilenet_v1_1.0x", "mobilenet_v2", "alexnet"} <= set(by)
    assert isinstance(by["v1_g3"]["macs"], int) and by["v1_g3"]["paper_mflops"] == 137
    assert {"name", "params", "macs", "paper_mflops"} <= set(by["v2_1.0x"])
    assert by["v2_1.0x"]["params"] == 2_278_604


def test_models_table_and_info(cli):
    r = cli("models")
    assert r.returncode == 0 and "v1_g8_2.0x" in r.stdout and "mobilenet_v2" in r.stdout
    r = cli("info", "v1_g3")
    assert r.returncode == 0, r.stderr
    assert "stage2.0.gconv1.0" in r.stdout and "total" in r.stdout and "137.5 M" in r.stdout


def test_info_json_at_small_input(cli):
    r = cli("info", "v2", "--input-size", "32", "--num-classes", "10", "--json")
    info = json.loads(r.stdout)
    assert info["stem"] == "cifar" and "layout" not in info and info["input_size"] == [32, 32] and info["layers"][-1]["out_shape"] == [10]


def test_unknown_model_is_one_line_exit_2(cli):
    r = cli("info", "v1_g5")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: unknown model 'v1_g5' (did you mean v1_g8, v1_g4, v1_g3?)"]
    assert "Traceback" not in r.stderr


def test_bad_input_size_is_rejected(cli):
    r = cli("info", "v1_g3", "--input-size", "big")
    assert r.returncode == 2 and "bad input size" in r.stderr and "Traceback" not in r.stderr
