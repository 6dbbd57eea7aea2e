import pytest
import torch

from shufflenet_edge import create_model, list_models
from shufflenet_edge.errors import UsageError
from shufflenet_edge.models import channel_shuffle, get_spec
from shufflenet_edge.models.shufflenet_v1 import check_plan


def test_channel_shuffle_mixes_groups_as_figure_1():
    g, per = 3, 4
    x = torch.arange(g * per, dtype=torch.float32).view(1, g * per, 1, 1)
    y = channel_shuffle(x, g).flatten().tolist()
    # output group k takes one channel from each input group (Figure 1c)
    for k in range(per):
        chunk = y[k * g:(k + 1) * g]
        assert sorted(int(c) // per for c in chunk) == list(range(g))
    assert y[:3] == [0.0, 4.0, 8.0]


@pytest.mark.parametrize("channels,groups", [(12, 3), (24, 4), (240, 3), (64, 8)])
def test_shuffle_with_g_then_c_over_g_is_identity(channels, groups):
    x = torch.randn(2, channels, 3, 5)
    assert torch.equal(channel_shuffle(channel_shuffle(x, groups), channels // groups), x)
    assert not torch.equal(channel_shuffle(x, groups), x)


@pytest.mark.parametrize("scale", ["0_5", "1_0", "1_5", "2_0"])
def test_v2_loads_torchvision_weights_strictly_and_matches(scale, tmp_path):
    import torchvision

    torch.manual_seed(0)
    tv = getattr(torchvision.models, f"shufflenet_v2_x{scale}")(weights=None).eval()
    # give BN non-trivial statistics so the comparison means something
    for m in tv.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "tv.pth"
    torch.save(tv.state_dict(), path)
    ours = create_model(f"v2_{scale.replace('_', '.')}x", checkpoint=path)
    assert set(ours.state_dict()) == set(tv.state_dict())
    assert all(ours.state_dict()[k].shape == v.shape for k, v in tv.state_dict().items())
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(ours(x), tv(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", list_models())
def test_every_model_runs_at_its_default_size(name):
    model = create_model(name, num_classes=7)
    size = get_spec(name).default_input_size
    with torch.no_grad():
        out = model(torch.randn(1, 3, size, size))
    assert out.shape == (1, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["v1_g3", "v1_g8_0.5x", "v2_1.0x", "mobilenet_v1_1.0x", "mobilenet_v2", "alexnet"])
@pytest.mark.parametrize("size,stem", [(32, "cifar"), (56, "tinyimagenet"), (64, "tinyimagenet")])
def test_small_input_stems(name, size, stem):
    model = create_model(name, num_classes=10, input_size=size)
    assert model.edge_meta["stem"] == stem and "layout" not in model.edge_meta
    feats = []
    last = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    last.register_forward_hook(lambda m, i, o: feats.append(o.shape[-1]))
    with torch.no_grad():
        assert model(torch.randn(2, 3, size, size)).shape == (2, 10)
    if name != "alexnet":  # the ShuffleNets and MobileNets end on a 4x4 map, as the seed recipe
        assert feats[-1] == 4


def test_v1_cifar_layout_is_the_seed_recipe():
    m = create_model("v1_g3", num_classes=10, input_size=32)
    assert m.conv1[0].kernel_size == (1, 1) and m.conv1[0].stride == (1, 1)
    assert isinstance(m.maxpool, torch.nn.Identity)
    assert m.stage2[0].gconv1[0].groups == 1 and m.stage2[1].gconv1[0].groups == 3


def test_aliases_and_unknown_names():
    assert get_spec("v2").name == "v2_1.0x"
    assert get_spec("v1_g3_1.0x").name == "v1_g3"
    with pytest.raises(UsageError, match=r"unknown model 'v1_g5' \(did you mean"):
        get_spec("v1_g5")


def test_impossible_channel_plan_is_rejected_in_one_line():
    with pytest.raises(UsageError, match="not divisible by groups=8"):
        check_plan([24, 200, 400, 800], 8)
    from shufflenet_edge.models.shufflenet_v1 import ShuffleNetV1

    with pytest.raises(UsageError):
        ShuffleNetV1(groups=3, channels=[24, 100, 200, 400])


def test_project_checkpoint_roundtrip_and_contradictions(tmp_path):
    from shufflenet_edge.checkpoint import save_checkpoint

    m = create_model("v1_g3_0.5x", num_classes=10, input_size=32, labels=[str(i) for i in range(10)])
    path = save_checkpoint(tmp_path / "ck.pt", m.edge_meta, m.state_dict())
    loaded = create_model(checkpoint=path)
    assert loaded.edge_meta["name"] == "v1_g3_0.5x" and loaded.edge_meta["input_size"] == [32, 32]
    assert loaded.edge_meta["labels"][3] == "3" and len(loaded.edge_meta["checkpoint_sha256"]) == 64
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), m(x))
    with pytest.raises(UsageError, match="is for model 'v1_g3_0.5x', not 'v2'"):
        create_model("v2", checkpoint=path)
    with pytest.raises(UsageError, match="--num-classes 100 contradicts"):
        create_model(num_classes=100, checkpoint=path)
    with pytest.raises(UsageError, match="--input-size 64x64 contradicts"):
        create_model(input_size=64, checkpoint=path)


def test_bad_checkpoints_give_one_line_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UsageError, match="cannot read checkpoint"):
        create_model("v2", checkpoint=bad)
    with pytest.raises(UsageError, match="checkpoint not found"):
        create_model("v2", checkpoint=tmp_path / "missing.pt")
    wrong = tmp_path / "wrong.pt"
    torch.save(create_model("v1_g3").state_dict(), wrong)
    with pytest.raises(UsageError, match="does not fit model 'v2_1.0x'"):
        create_model("v2", checkpoint=wrong)
