"""The built-in networks: upstream-compatible state dicts, shapes, size errors, init, registry.

The expected layouts are written out from upstream's models/networks.py
(junyanz/pytorch-CycleGAN-and-pix2pix), independently of i2i's code, so a checkpoint trained
there keeps loading here with ``strict=True``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import i2i
from i2i.core.errors import InputSizeError, InvalidArgumentError
from i2i.nets.init import init_weights
from i2i.nets.patchgan import nlayer, patchgan, pixel
from i2i.nets.resnet import ResnetGenerator, resnet6, resnet9
from i2i.nets.timm_disc import timm_backbone
from i2i.nets.unet import UnetGenerator, unet128, unet256

Layout = dict[str, list[int]]

# fmt: off
RESNET9_KEYS: list[tuple[str, list[int]]] = [
    ("model.1.weight", [64, 3, 7, 7]), ("model.1.bias", [64]),
    ("model.4.weight", [128, 64, 3, 3]), ("model.4.bias", [128]),
    ("model.7.weight", [256, 128, 3, 3]), ("model.7.bias", [256]),
    ("model.10.conv_block.1.weight", [256, 256, 3, 3]), ("model.10.conv_block.1.bias", [256]),
    ("model.10.conv_block.5.weight", [256, 256, 3, 3]), ("model.10.conv_block.5.bias", [256]),
    ("model.11.conv_block.1.weight", [256, 256, 3, 3]), ("model.11.conv_block.1.bias", [256]),
    ("model.11.conv_block.5.weight", [256, 256, 3, 3]), ("model.11.conv_block.5.bias", [256]),
    ("model.12.conv_block.1.weight", [256, 256, 3, 3]), ("model.12.conv_block.1.bias", [256]),
    ("model.12.conv_block.5.weight", [256, 256, 3, 3]), ("model.12.conv_block.5.bias", [256]),
    ("model.13.conv_block.1.weight", [256, 256, 3, 3]), ("model.13.conv_block.1.bias", [256]),
    ("model.13.conv_block.5.weight", [256, 256, 3, 3]), ("model.13.conv_block.5.bias", [256]),
    ("model.14.conv_block.1.weight", [256, 256, 3, 3]), ("model.14.conv_block.1.bias", [256]),
    ("model.14.conv_block.5.weight", [256, 256, 3, 3]), ("model.14.conv_block.5.bias", [256]),
    ("model.15.conv_block.1.weight", [256, 256, 3, 3]), ("model.15.conv_block.1.bias", [256]),
    ("model.15.conv_block.5.weight", [256, 256, 3, 3]), ("model.15.conv_block.5.bias", [256]),
    ("model.16.conv_block.1.weight", [256, 256, 3, 3]), ("model.16.conv_block.1.bias", [256]),
    ("model.16.conv_block.5.weight", [256, 256, 3, 3]), ("model.16.conv_block.5.bias", [256]),
    ("model.17.conv_block.1.weight", [256, 256, 3, 3]), ("model.17.conv_block.1.bias", [256]),
    ("model.17.conv_block.5.weight", [256, 256, 3, 3]), ("model.17.conv_block.5.bias", [256]),
    ("model.18.conv_block.1.weight", [256, 256, 3, 3]), ("model.18.conv_block.1.bias", [256]),
    ("model.18.conv_block.5.weight", [256, 256, 3, 3]), ("model.18.conv_block.5.bias", [256]),
    ("model.19.weight", [256, 128, 3, 3]), ("model.19.bias", [128]),  # ConvTranspose: [in, out]
    ("model.22.weight", [128, 64, 3, 3]), ("model.22.bias", [64]),
    ("model.26.weight", [3, 64, 7, 7]), ("model.26.bias", [3]),
]

PATCHGAN_KEYS: list[tuple[str, list[int]]] = [
    ("model.0.weight", [64, 3, 4, 4]), ("model.0.bias", [64]),
    ("model.2.weight", [128, 64, 4, 4]), ("model.2.bias", [128]),
    ("model.5.weight", [256, 128, 4, 4]), ("model.5.bias", [256]),
    ("model.8.weight", [512, 256, 4, 4]), ("model.8.bias", [512]),
    ("model.11.weight", [1, 512, 4, 4]), ("model.11.bias", [1]),
]
# fmt: on


# -- upstream layouts, written from models/networks.py -----------------------------------------
def conv(cin: int, cout: int, k: int, bias: bool = True) -> list[tuple[str, list[int]]]:
    return [("weight", [cout, cin, k, k])] + ([("bias", [cout])] if bias else [])


def conv_t(cin: int, cout: int, k: int, bias: bool = True) -> list[tuple[str, list[int]]]:
    return [("weight", [cin, cout, k, k])] + ([("bias", [cout])] if bias else [])


def norm_keys(norm: str, c: int) -> list[tuple[str, list[int]]]:
    if norm != "batch":  # instance norm has neither affine parameters nor running stats
        return []
    stats = [(name, [c]) for name in ("weight", "bias", "running_mean", "running_var")]
    return [*stats, ("num_batches_tracked", [])]


def sequential(layers: list[list[tuple[str, list[int]]]], prefix: str = "") -> Layout:
    return {f"{prefix}{i}.{name}": shape for i, layer in enumerate(layers) for name, shape in layer}


def upstream_resnet(
    n_blocks: int, ngf: int = 64, norm: str = "instance", dropout: bool = False, padding="reflect"
) -> Layout:
    bias = norm == "instance"
    pad: list[list[tuple[str, list[int]]]] = [] if padding == "zero" else [[]]
    c = ngf * 4
    half = [*pad, conv(c, c, 3, bias), norm_keys(norm, c)]
    block = sequential([*half, [], *([[]] if dropout else []), *half], "conv_block.")
    layers = [[], conv(3, ngf, 7, bias), norm_keys(norm, ngf), []]
    layers += [conv(ngf, ngf * 2, 3, bias), norm_keys(norm, ngf * 2), []]
    layers += [conv(ngf * 2, c, 3, bias), norm_keys(norm, c), []]
    layers += [list(block.items()) for _ in range(n_blocks)]
    layers += [conv_t(c, ngf * 2, 3, bias), norm_keys(norm, ngf * 2), []]
    layers += [conv_t(ngf * 2, ngf, 3, bias), norm_keys(norm, ngf), []]
    layers += [[], conv(ngf, 3, 7), []]
    return sequential(layers, "model.")


def upstream_unet_block(outer, inner, sub, norm, outermost=False, cin=None) -> Layout:
    bias = norm == "instance"
    down = conv(cin or outer, inner, 4, bias)
    if outermost:  # no norm; the last upconv always has a bias, the first conv follows the rule
        layers = [down, list(sub.items()), [], conv_t(inner * 2, outer, 4), []]
    elif sub is None:  # innermost: no norm after the down conv
        layers = [[], down, [], conv_t(inner, outer, 4, bias), norm_keys(norm, outer)]
    else:
        layers = [[], down, norm_keys(norm, inner), list(sub.items())]
        layers += [[], conv_t(inner * 2, outer, 4, bias), norm_keys(norm, outer)]
    return sequential(layers, "model.")


def upstream_unet(num_downs: int, ngf: int = 64, norm: str = "batch") -> Layout:
    block = upstream_unet_block(ngf * 8, ngf * 8, None, norm)
    for _ in range(num_downs - 5):
        block = upstream_unet_block(ngf * 8, ngf * 8, block, norm)
    for mult in (4, 2, 1):
        block = upstream_unet_block(ngf * mult, ngf * mult * 2, block, norm)
    outermost = upstream_unet_block(3, ngf, block, norm, outermost=True, cin=3)
    return {f"model.{key}": shape for key, shape in outermost.items()}


def upstream_nlayer(n_layers: int, ndf: int = 64, norm: str = "instance") -> Layout:
    bias = norm == "instance"
    layers = [conv(3, ndf, 4), []]
    mult = 1
    for n in range(1, n_layers + 1):
        prev, mult = mult, min(2**n, 8)
        layers += [conv(ndf * prev, ndf * mult, 4, bias), norm_keys(norm, ndf * mult), []]
    layers.append(conv(ndf * mult, 1, 4))
    return sequential(layers, "model.")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def layout(net: nn.Module) -> Layout:
    return {key: list(value.shape) for key, value in net.state_dict().items()}


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def layout_params(expected: Layout) -> int:
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    return sum(math.prod(s) for k, s in expected.items() if not k.endswith(buffers))


# -- state-dict layouts and parameter counts ---------------------------------------------------
def test_resnet9_keys_match_upstream_exactly():
    net = resnet9()
    assert list(layout(net).items()) == RESNET9_KEYS
    assert upstream_resnet(9) == dict(RESNET9_KEYS)
    assert n_params(net) == 11_378_179


def test_resnet6_keys_and_count():
    net = resnet6()
    assert layout(net) == upstream_resnet(6)
    assert "model.23.bias" in layout(net) and "model.16.weight" in layout(net)
    assert n_params(net) == 7_837_699


@pytest.mark.parametrize(
    ("norm", "dropout", "padding"),
    [("batch", False, "reflect"), ("none", True, "replicate"), ("instance", True, "zero")],
)
def test_resnet_variants_match_upstream(norm, dropout, padding):
    net = resnet9(ngf=8, norm=norm, dropout=dropout, padding=padding)
    assert layout(net) == upstream_resnet(9, 8, norm, dropout, padding)


def test_resnet_dropout_and_zero_padding_shift_block_indices():
    assert "model.10.conv_block.6.weight" in layout(resnet9(ngf=8, dropout=True))
    zero = layout(resnet9(ngf=8, padding="zero"))
    assert "model.10.conv_block.0.weight" in zero and "model.10.conv_block.3.weight" in zero


def test_unet256_keys_and_count():
    net = unet256()
    expected = upstream_unet(8)
    assert layout(net) == expected
    innermost = "model.model.1" + ".model.3" * 6 + ".model."
    assert layout(net)[innermost + "1.weight"] == [512, 512, 4, 4]
    assert layout(net)[innermost + "3.weight"] == [512, 512, 4, 4]  # ConvTranspose [in, out]
    assert layout(net)["model.model.0.weight"] == [64, 3, 4, 4]
    assert "model.model.0.bias" not in layout(net)  # bias rule follows the norm, even here
    assert layout(net)["model.model.3.bias"] == [3]  # the last upconv always has one
    assert layout(net)["model.model.1.model.2.running_var"] == [128]
    # 54,414,016 is sometimes quoted; that count gives the outermost down conv a bias (+64) and
    # takes the outermost up conv's away (-3), the opposite of upstream. Upstream's is:
    assert layout_params(expected) == n_params(net) == 54_413_955


def test_unet_other_variants():
    assert layout(unet128()) == upstream_unet(7)
    assert n_params(unet128()) == 41_828_995
    instance = unet256(ngf=8, norm="instance")
    assert layout(instance) == upstream_unet(8, ngf=8, norm="instance")


@pytest.mark.parametrize(("factory", "count"), [(unet256, 3), (unet128, 2)])
def test_unet_dropout_only_in_the_ngf8_middle_levels(factory, count):
    def n_dropout(net):
        return sum(isinstance(m, nn.Dropout) for m in net.modules())

    assert n_dropout(factory(ngf=4)) == count
    assert n_dropout(factory(ngf=4, dropout=False)) == 0


def test_unet_skip_carries_the_activated_input_like_upstream():
    block = unet128(ngf=4, norm="instance").model.model[1]
    x = torch.randn(1, 4, 64, 64)
    out = block(x.clone())
    assert torch.equal(out[:, :4], F.leaky_relu(x, 0.2))


def test_patchgan_keys_and_count():
    net = patchgan()
    assert list(layout(net).items()) == PATCHGAN_KEYS
    assert n_params(net) == 2_764_737
    assert layout(nlayer()) == dict(PATCHGAN_KEYS)


@pytest.mark.parametrize("n_layers", [1, 2, 4, 5])
def test_nlayer_matches_upstream(n_layers):
    net = nlayer(ndf=8, n_layers=n_layers, norm="batch")
    assert layout(net) == upstream_nlayer(n_layers, 8, "batch")


def test_pixel_keys_and_count():
    assert layout(pixel()) == {
        "net.0.weight": [64, 3, 1, 1],
        "net.0.bias": [64],
        "net.2.weight": [128, 64, 1, 1],
        "net.2.bias": [128],
        "net.5.weight": [1, 128, 1, 1],
        "net.5.bias": [1],
    }
    assert n_params(pixel()) == 8_705
    batch = layout(pixel(norm="batch"))
    assert "net.2.bias" not in batch and "net.5.bias" not in batch
    assert batch["net.3.running_mean"] == [128]


@pytest.mark.parametrize(
    "make",
    [
        lambda: resnet9(ngf=8, norm="batch"),
        lambda: unet128(ngf=4),
        lambda: nlayer(ndf=8, n_layers=2, norm="batch"),
        lambda: pixel(ndf=8),
    ],
)
def test_state_dict_round_trip_strict(make):
    torch.manual_seed(0)
    source = make().eval()
    torch.manual_seed(1)
    target = make().eval()
    target.load_state_dict(source.state_dict(), strict=True)
    size = 128 if isinstance(source, UnetGenerator) else 32
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        assert torch.equal(source(x), target(x))


# -- forward shapes and input sizes ------------------------------------------------------------
@pytest.mark.parametrize("size", [(32, 32), (64, 48), (8, 8)])
@pytest.mark.parametrize("factory", [resnet9, resnet6])
def test_resnet_keeps_the_input_size(factory, size):
    net = factory(ngf=8, out_channels=1)
    out = net(torch.randn(2, 3, *size))
    assert out.shape == (2, 1, *size)
    assert out.abs().max() <= 1  # tanh


def test_resnet_channels_last():
    net = resnet9(ngf=8).to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 32, 32).to(memory_format=torch.channels_last)
    assert net(x).shape == (2, 3, 32, 32)


def test_unet256_at_256():
    net = unet256(ngf=4)
    assert net(torch.randn(1, 3, 256, 256)).shape == (1, 3, 256, 256)


def test_unet128_non_square():
    net = unet128(ngf=4, in_channels=1, out_channels=2).eval()
    assert net(torch.randn(1, 1, 128, 256)).shape == (1, 2, 128, 256)


@pytest.mark.parametrize(
    ("make", "multiple"),
    [(resnet9, 4), (resnet6, 4), (unet256, 256), (unet128, 128)],
)
def test_size_multiple(make, multiple):
    assert make(ngf=4).size_multiple == multiple


def test_input_size_errors():
    with pytest.raises(InputSizeError, match=r"^unet256 needs .* by 256, got 100x100; resize"):
        unet256(ngf=4)(torch.randn(1, 3, 100, 100))
    with pytest.raises(InputSizeError, match=r"^resnet9 needs .* by 4.*got 30x30"):
        resnet9(ngf=8)(torch.randn(1, 3, 30, 30))
    for padding in ("reflect", "zero"):  # a 1x1 bottleneck breaks padding or normalisation
        with pytest.raises(InputSizeError, match=r"at least 8, got 4x4"):
            resnet9(ngf=8, padding=padding)(torch.randn(1, 3, 4, 4))
    with pytest.raises(InputSizeError, match=r"^unet128 .* got 128x64"):
        unet128(ngf=4)(torch.randn(1, 3, 128, 64))


@pytest.mark.parametrize("make", [lambda: resnet6(ngf=8), lambda: unet128(ngf=4)])
def test_generators_trace_without_graph_breaks(make):
    net = make()
    size = net.size_multiple * (1 if net.size_multiple > 4 else 8)
    x = torch.randn(1, 3, size, size)
    compiled = torch.compile(net, backend="eager", fullgraph=True)
    assert compiled(x).shape == x.shape


@pytest.mark.parametrize(
    ("make", "channels", "size", "out"),
    [
        (lambda: patchgan(ndf=8), 3, 32, 2),
        (lambda: patchgan(ndf=8), 3, 64, 6),
        (lambda: nlayer(ndf=8, n_layers=1), 3, 32, 14),
        (lambda: nlayer(ndf=8, n_layers=2, in_channels=6), 6, 64, 14),
        (lambda: pixel(ndf=8, norm="batch"), 3, 32, 32),
    ],
)
def test_discriminator_shapes(make, channels, size, out):
    assert make()(torch.randn(2, channels, size, size)).shape == (2, 1, out, out)


def test_timm_discriminator_returns_patch_maps_per_level():
    net = timm_backbone("mobilenetv3_small_050", in_channels=6, ndf=8)
    out = net(torch.randn(2, 6, 64, 64))
    assert isinstance(out, list)
    assert [tuple(o.shape) for o in out] == [(2, 1, 16, 16), (2, 1, 8, 8), (2, 1, 4, 4)]
    sum(o.mean() for o in out).backward()
    assert all(p.grad is not None for p in net.heads.parameters())
    head = net.heads[0][0].weight
    assert head.std().item() == pytest.approx(0.02, rel=0.1)  # heads get the GAN init


def test_timm_discriminator_errors():
    with pytest.raises(InvalidArgumentError, match=r"unknown timm backbone 'resnet81'.*resnet18"):
        timm_backbone("resnet81")
    with pytest.raises(InvalidArgumentError, match=r"out_indices \(9,\) is out of range"):
        timm_backbone("mobilenetv3_small_050", out_indices=(9,))
    with pytest.raises(InvalidArgumentError, match="at least one"):
        timm_backbone("mobilenetv3_small_050", out_indices=())


# -- initialisation ----------------------------------------------------------------------------
def conv2(init: str, gain: float = 0.02) -> torch.Tensor:
    """The 128x64x4x4 conv of a PatchGAN: fan_in 1024, fan_out 2048, 131k weights."""
    return patchgan(norm="batch", init=init, init_gain=gain).model[2].weight.detach()


@pytest.mark.parametrize(
    ("init", "gain", "std"),
    [
        ("normal", 0.02, 0.02),
        ("normal", 0.1, 0.1),
        ("xavier", 0.02, 0.02 * math.sqrt(2 / (1024 + 2048))),
        ("kaiming", 0.02, math.sqrt(2 / 1024)),  # upstream ignores the gain for kaiming
    ],
)
def test_init_weight_statistics(init, gain, std):
    weight = conv2(init, gain)
    assert weight.std().item() == pytest.approx(std, rel=0.03)
    assert abs(weight.mean().item()) < std / 50


def test_orthogonal_init():
    rows = conv2("orthogonal", 0.5).reshape(128, -1)
    assert torch.allclose(rows @ rows.T, 0.25 * torch.eye(128), atol=1e-4)


def test_init_biases_and_batchnorm():
    net = patchgan(norm="batch")
    assert torch.count_nonzero(net.model[0].bias) == 0
    assert torch.count_nonzero(net.model[11].bias) == 0
    bn = net.model[3]
    assert bn.weight.mean().item() == pytest.approx(1.0, abs=0.01)
    assert 0.01 < bn.weight.std().item() < 0.03
    assert torch.count_nonzero(bn.bias) == 0


def test_init_weights_covers_linear_and_returns_the_net():
    net = nn.Sequential(nn.Linear(512, 512), nn.ReLU())
    assert init_weights(net, "normal", 0.05) is net
    assert net[0].weight.std().item() == pytest.approx(0.05, rel=0.03)


# -- options and registry ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: resnet9(norm="foo"),
            "norm must be one of 'instance', 'batch', 'layer', 'none'; got 'foo'",
        ),
        (lambda: resnet9(padding="x"), "padding must be one of 'reflect', 'replicate', 'zero'"),
        (lambda: unet256(init="he"), "init must be one of 'normal', 'xavier', 'kaiming', 'orth"),
        (lambda: nlayer(n_layers=0), "n_layers must be an integer >= 1; got 0"),
        (lambda: pixel(norm="group"), "norm must be one of"),
        (lambda: i2i.create_generator("resnet9", ngf2=8), "takes no argument 'ngf2'"),
    ],
)
def test_invalid_options(call, message):
    with pytest.raises(InvalidArgumentError) as info:
        call()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_registry():
    net = i2i.create_generator("resnet9", ngf=8)
    assert isinstance(net, ResnetGenerator)
    assert layout(net)["model.1.weight"] == [8, 3, 7, 7]
    assert i2i.list_generators("resnet*") == ["resnet6", "resnet9"]
    assert {"resnet9", "resnet6", "unet256", "unet128"} <= set(i2i.list_generators())
    assert {"patchgan", "nlayer", "pixel", "timm"} <= set(i2i.list_discriminators())
    assert isinstance(i2i.create_discriminator("pixel", ndf=4), nn.Module)
    for registry, names in [
        (i2i.core.registry.generators, ["resnet9", "resnet6", "unet256", "unet128"]),
        (i2i.core.registry.discriminators, ["patchgan", "nlayer", "pixel", "timm"]),
    ]:
        for name in names:
            component = registry.get(name)
            assert component.plugin == "i2i"
            assert component.summary and not component.accepts_any_kwargs
    unet = {p.name: p.default for p in i2i.core.registry.generators.get("unet256").parameters}
    assert unet["norm"] == "batch" and unet["dropout"] is True
    timm = {p.name: p.default for p in i2i.core.registry.discriminators.get("timm").parameters}
    assert timm["backbone"] == "resnet18" and timm["pretrained"] is False
