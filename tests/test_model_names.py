"""Model names as users type them: family names, other separators, torchvision's own names."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from shufflenet_edge import create_model, get_spec
from shufflenet_edge.cli import main
from shufflenet_edge.errors import UsageError
from shufflenet_edge.models.registry import suggestions


@pytest.mark.parametrize("typed,meant", [
    ("shufflenet_v2", "v2_1.0x"), ("shufflenetv2", "v2_1.0x"), ("ShuffleNetV2_x1_0", "v2_1.0x"),
    ("ShuffleNet-V2-x0.5", "v2_0.5x"), ("shufflenet_v1_g3", "v1_g3"), ("shufflenet_v1", "v1_g3"),
    ("ShuffleNetV1_g8_x0_5", "v1_g8_0.5x"), ("v1g3", "v1_g3"), ("mobilenetv2", "mobilenet_v2"),
    ("mobilenet_v1", "mobilenet_v1_1.0x"),
])
def test_suggestion_is_the_one_model_meant(typed, meant):
    assert suggestions(typed) == [meant]
    with pytest.raises(UsageError, match=rf"unknown model '{typed}' \(did you mean {meant}\?\)$"):
        get_spec(typed)


def test_plain_typos_still_get_close_names():
    with pytest.raises(UsageError, match=r"did you mean v1_g8, v1_g4, v1_g3\?"):
        get_spec("v1_g5")
    assert "alexnet" in suggestions("alexnet2")


@pytest.mark.parametrize("tv,ours", [("shufflenet_v2_x0_5", "v2_0.5x"), ("shufflenet_v2_x1_0", "v2_1.0x"),
                                     ("shufflenet_v2_x1_5", "v2_1.5x"), ("shufflenet_v2_x2_0", "v2_2.0x"),
                                     ("mobilenet_v2", "mobilenet_v2"), ("alexnet", "alexnet")])
def test_torchvision_names_are_aliases(tv, ours):
    assert get_spec(tv).name == ours


def test_torchvision_name_loads_torchvision_weights(tmp_path):
    import torch
    import torchvision

    ref = torchvision.models.shufflenet_v2_x0_5().eval()
    torch.save(ref.state_dict(), tmp_path / "tv.pth")
    m = create_model("shufflenet_v2_x0_5", checkpoint=tmp_path / "tv.pth")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(m(x), ref(x), atol=1e-5)
    assert m.edge_meta["name"] == "v2_0.5x"


def test_cli_says_the_suggestion_in_one_line():
    r = CliRunner().invoke(main, ["info", "shufflenet_v2"], prog_name="edge")
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == ["error: unknown model 'shufflenet_v2' (did you mean v2_1.0x?)"]
    r = CliRunner().invoke(main, ["export", "--model", "shufflenetv2", "--format", "onnx"], prog_name="edge")
    assert r.exit_code == 2 and "did you mean v2_1.0x?" in r.stderr and "mobilenet" not in r.stderr
    r = CliRunner().invoke(main, ["info", "shufflenet_v2_x1_0", "--json"], prog_name="edge")
    assert r.exit_code == 0 and '"model": "v2_1.0x"' in r.stdout
