import pytest
import torch
from torch import nn

from shufflenet_edge.complexity import complexity, conv1x1_memory_access, measure

PAPER_MACS = {
    "v1_g1": 143e6, "v1_g2": 140e6, "v1_g3": 137e6, "v1_g4": 133e6, "v1_g8": 137e6,
    "v1_g3_0.5x": 38e6, "v1_g3_2.0x": 524e6, "v1_g3_0.25x": 13e6,  # Table 2: ~13 MFLOPs (within 5% below)
    "v2_0.5x": 41e6, "v2_1.0x": 146e6, "v2_1.5x": 299e6, "v2_2.0x": 591e6,
    "mobilenet_v1_1.0x": 569e6, "alexnet": 720e6,
}


@pytest.mark.parametrize("name,paper", PAPER_MACS.items())
def test_macs_match_papers_within_2_percent(name, paper):
    macs = complexity(name).macs
    # Table 2 gives 0.25x as "about 13": within 5%; every exact figure within 2%
    assert abs(macs - paper) / paper <= (0.05 if name.endswith("0.25x") else 0.02), (name, macs)


@pytest.mark.parametrize("name,params", [("v2_0.5x", 1_366_792), ("v2_1.0x", 2_278_604),
                                         ("v2_1.5x", 3_503_624), ("v2_2.0x", 7_393_996)])
def test_v2_params_equal_torchvision(name, params):
    assert complexity(name).params == params


def test_v1_stem_rule_is_one_rule_for_every_scale():
    from shufflenet_edge.models.shufflenet_v1 import channel_plan

    assert [channel_plan(3, s)[0] for s in (0.25, 0.5, 1.0, 1.5, 2.0)] == [12, 12, 24, 24, 48]
    assert channel_plan(8, 0.25)[0] == 16  # rounded up to a multiple of g


def test_v1_g3_official_channel_table():
    from shufflenet_edge.models import get_spec

    assert get_spec("v1_g3_0.5x").config["channels"] == [12, 120, 240, 480]
    assert get_spec("v1_g3").config["channels"] == [24, 240, 480, 960]
    assert get_spec("v1_g3_1.5x").config["channels"] == [24, 360, 720, 1440]
    assert get_spec("v1_g3_2.0x").config["channels"] == [48, 480, 960, 1920]


def test_memory_access_of_1x1_conv_matches_v2_closed_form():
    for groups in (1, 2, 4, 8):
        conv = nn.Sequential(nn.Conv2d(64, 128, 1, groups=groups, bias=False))
        c = measure(conv, 56, in_channels=64)
        assert c.macs == 56 * 56 * 64 * 128 // groups
        assert c.memory_access == conv1x1_memory_access(64, 128, 56, 56, groups)


def test_per_layer_rows_add_up_and_measure_agrees_with_meta_count():
    from shufflenet_edge import create_model

    c = complexity("v2_0.5x", 32, 10)
    assert sum(layer.macs for layer in c.layers) == c.macs
    assert {"conv1x1", "dwconv", "shuffle", "concat", "fc"} <= set(c.by_kind())
    real = measure(create_model("v2_0.5x", num_classes=10, input_size=32))
    assert (real.macs, real.params) == (c.macs, c.params)


def test_macs_scale_with_input_size():
    small, big = complexity("v1_g3", 224).macs, complexity("v1_g3", "448x448").macs
    assert 3.8 < big / small < 4.05
