"""CUT and FastCUT: the objective against the paper's formula, PatchNCE against a direct
computation, official CUT generators, feature extraction, resume, DDP, export and learning."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file
from torch import nn

import i2i
from i2i.core.errors import CheckpointError, InvalidArgumentError
from i2i.models.convert import convert_official
from i2i.models.folder import load_model
from i2i.train.runtime import Runtime
from tests.conftest import TINY
from tests.mean_shift_reference import first_step_shift_loss
from tests.training import resolve_config, train

CUT_TINY = {**TINY, "num_patches": 16}


# -- an independent reference of the official CUT generator (models/networks.py) -------------
class _Blur(nn.Module):
    """Official Downsample (reflect, 3x3 [1,2,1]) or Upsample (replicate, 4x4 [1,3,3,1])."""

    def __init__(self, channels: int, up: bool):
        super().__init__()
        taps = torch.tensor([1.0, 3.0, 3.0, 1.0] if up else [1.0, 2.0, 1.0])
        kernel = taps[:, None] * taps[None, :]
        kernel = kernel / kernel.sum() * (4 if up else 1)
        self.register_buffer("filt", kernel[None, None].repeat(channels, 1, 1, 1))
        self.up = up

    def forward(self, x):
        if self.up:
            y = F.conv_transpose2d(
                F.pad(x, [1, 1, 1, 1], mode="replicate"), self.filt, stride=2, padding=2,
                groups=x.shape[1],
            )  # fmt: skip
            return y[:, :, 1:, 1:][:, :, :-1, :-1]
        return F.conv2d(
            F.pad(x, [1, 1, 1, 1], mode="reflect"), self.filt, stride=2, groups=x.shape[1]
        )


class _Block(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim),
        )  # fmt: skip

    def forward(self, x):
        return x + self.conv_block(x)


class _OfficialCUTGenerator(nn.Module):
    def __init__(self, ngf: int, n_blocks: int):
        super().__init__()
        norm = nn.InstanceNorm2d
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), norm(ngf), nn.ReLU(True)]
        for mult in (1, 2):
            c = ngf * mult
            layers += [
                nn.Conv2d(c, 2 * c, 3, padding=1),
                norm(2 * c),
                nn.ReLU(True),
                _Blur(2 * c, False),
            ]
        layers += [_Block(4 * ngf) for _ in range(n_blocks)]
        for mult in (4, 2):
            c = ngf * mult
            layers += [
                _Blur(c, True),
                nn.Conv2d(c, c // 2, 3, padding=1),
                norm(c // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def _official(ngf=8, n_blocks=9):
    torch.manual_seed(3)
    net = _OfficialCUTGenerator(ngf, n_blocks)
    for p in net.parameters():
        p.data.normal_(0, 0.2)  # far from zero, so a wrong layer cannot hide
    return net.eval()


def test_antialiased_resnet_has_the_official_cut_layout_and_outputs():
    official = _official()
    ours = i2i.create_generator("resnet9", ngf=8, antialias=True)
    assert list(ours.state_dict()) == list(official.state_dict())
    assert [k for k in ours.state_dict() if k.endswith("filt")] == [
        "model.7.filt", "model.11.filt", "model.21.filt", "model.25.filt"
    ]  # fmt: skip
    ours.load_state_dict(official.state_dict(), strict=True)
    x = torch.rand(2, 3, 64, 48) * 2 - 1
    with torch.no_grad():
        assert torch.equal(ours.eval()(x), official(x))
    full = i2i.create_generator("resnet9", antialias=True)
    assert sum(p.numel() for p in full.parameters()) == 11_378_179  # the official "11.378 M"


def test_official_cut_checkpoint_converts_and_plain_resnet_gets_a_hint(tmp_path):
    official = _official(n_blocks=6)
    torch.save(official.state_dict(), tmp_path / "latest_net_G.pth")
    with pytest.raises(CheckpointError, match="antialias=true"):
        convert_official(tmp_path / "latest_net_G.pth", tmp_path / "bad", "resnet6", {"ngf": 8})
    folder = convert_official(
        tmp_path / "latest_net_G.pth", tmp_path / "m", "resnet6", {"ngf": 8, "antialias": True}
    )
    _, nets = load_model(folder)
    x = torch.rand(1, 3, 40, 40) * 2 - 1
    with torch.no_grad():
        assert torch.equal(nets["AtoB"](x), official(x))


# -- extract_features -------------------------------------------------------------------------
def test_extract_features_indexes_the_model_sequence_and_stops_early():
    net = _official(n_blocks=6)
    x = torch.rand(1, 3, 32, 32)
    calls = []
    net.model[-1].register_forward_hook(lambda *a: calls.append(1))
    feats = i2i.extract_features(net, x, [0, 4, 8, 12, 16])
    assert not calls  # stopped after layer 16
    expected, h = [], x
    for index, module in enumerate(net.model):
        h = module(h)
        if index in (0, 4, 8, 12, 16):
            expected.append(h)
    for got, want in zip(feats, expected, strict=True):
        assert torch.equal(got, want)
    named = i2i.extract_features(net, x, ["model.4", "model.12.conv_block.1"])
    assert torch.equal(named[0], feats[1])
    assert named[1].shape == (1, 32, 8, 8)


def test_extract_features_of_a_third_party_generator_by_name():
    class Other(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
            self.decoder = nn.Conv2d(4, 3, 3, padding=1)

        def forward(self, x):
            return self.decoder(self.encoder(x))

    net = Other()
    x = torch.rand(1, 3, 8, 8)
    (feat,) = i2i.extract_features(net, x, ["encoder.0"])
    assert torch.equal(feat, net.encoder[0](x))
    with pytest.raises(InvalidArgumentError, match="no top-level `model`"):
        i2i.extract_features(net, x, [0])
    with pytest.raises(InvalidArgumentError, match="no submodule"):
        i2i.extract_features(net, x, ["encoder.9"])


# -- patchnce ---------------------------------------------------------------------------------
def _direct_patchnce(q, k, temperature, whole_batch):
    """-log softmax of the positive among the negatives, one patch at a time, in float64."""
    q, k = q.double(), k.double()
    batch, patches, _ = q.shape
    out = []
    for b in range(batch):
        for i in range(patches):
            pool = [
                (bb, j) for bb in (range(batch) if whole_batch else [b]) for j in range(patches)
            ]
            logits = [q[b, i] @ k[b, i]]
            for bb, j in pool:
                same = (bb, j) == (b, i)
                logits.append(
                    torch.tensor(-10.0, dtype=torch.float64) if same else q[b, i] @ k[bb, j]
                )
            logits = torch.stack(logits) / temperature
            out.append(-(logits[0] - torch.logsumexp(logits, 0)))
    return torch.stack(out)


@pytest.mark.parametrize("negatives", ["image", "batch"])
def test_patchnce_equals_a_direct_computation(negatives):
    torch.manual_seed(0)
    q = F.normalize(torch.randn(2, 5, 8), dim=-1)
    k = F.normalize(torch.randn(2, 5, 8), dim=-1)
    loss = i2i.create_loss("patchnce", temperature=0.07, negatives=negatives, reduction="none")
    got = loss(q, k)
    want = _direct_patchnce(q, k, 0.07, negatives == "batch")
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-5)
    mean = i2i.create_loss("patchnce")(q.requires_grad_(), k.requires_grad_())
    mean.backward()
    assert q.grad is not None and k.grad is None  # keys get no gradient
    with pytest.raises(InvalidArgumentError, match="batch, patches, channels"):
        loss(q[0], k[0])


def test_patch_projection_of_an_all_zero_patch_has_a_finite_gradient():
    """A thin generator's ReLU features give all-zero patches (UNSB's recipe at --ngf 8 went
    NaN at its second step): the l2 normalisation must not differentiate sqrt at 0."""
    from i2i.nets.heads import PatchProjection

    torch.manual_seed(0)
    head = PatchProjection([4], channels=8)
    patches = torch.randn(1, 3, 4)
    patches[0, 1] = 0.0
    out = head([patches.requires_grad_()])[0]
    torch.testing.assert_close(out[0, 1], torch.zeros(8))
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in head.parameters())
    assert torch.isfinite(patches.grad).all()


# -- the CUT objective ------------------------------------------------------------------------
def _task(data, name="cut", **overrides):
    config = resolve_config(name, {"data": str(data), **CUT_TINY, **overrides})
    torch.manual_seed(0)
    task = i2i.create_task(name, **config)
    task.attach(Runtime("cpu"))
    example = {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1}
    task.build(example)
    return task


def _reference_nce(G, head, src, out, layers, ids, lam, temperature=0.07):
    """The paper's PatchNCE written out: features, shared patch ids, MLP, l2, InfoNCE."""
    total = 0.0
    for number, (layer, idx) in enumerate(zip(layers, ids, strict=True)):
        key_feat, query_feat = src, out
        for module in G.model[: layer + 1]:
            key_feat, query_feat = module(key_feat), module(query_feat)
        mlp = getattr(head, f"mlp_{number}")

        def project(feat, mlp=mlp, idx=idx):
            x = feat.permute(0, 2, 3, 1).reshape(feat.shape[0], -1, feat.shape[1])[:, idx]
            y = mlp(x)
            return y / (y.norm(dim=-1, keepdim=True) + 1e-7)

        q, k = project(query_feat), project(key_feat).detach()
        per_patch = _direct_patchnce(q, k, temperature, False)
        total = total + per_patch.mean() * lam
    return total / len(layers)


@pytest.mark.parametrize("name,shift", [("cut", 0.0), ("fastcut", 0.0), ("cut", 2.0)])
def test_one_step_equals_the_papers_objective(toy_data, name, shift):
    """With the mean-shift term, the paper's objective plus that term (i2i/kit/shift.py)."""
    task = _task(toy_data, name, flip_equivariance=False, lambda_shift=shift)
    # In float64: oneDNN's float32 convolution backward on a batch of two (CUT's G(cat(A, B)))
    # is only ~1e-3 accurate on some CPUs (AVX2), which would hide a wrong term.
    for net in task.nets.values():
        net.double()
    layers = task.layers
    G0, D0, F0 = (copy.deepcopy(task.nets[n]) for n in ("G", "D", "F"))
    rng = torch.Generator().set_state(task.rng.get_state())
    torch.manual_seed(1)
    real_A, real_B = (torch.rand(2, 1, 3, 32, 32) * 2 - 1).double()
    losses = task.train_step({"A": real_A, "B": real_B})

    mse = lambda pred, target: ((pred - target) ** 2).mean()  # noqa: E731
    fake_B = G0(real_A)
    assert torch.allclose(losses["D_fake"], mse(D0(fake_B.detach()), 0.0).float())
    assert torch.allclose(losses["D_real"], mse(D0(real_B), 1.0).float())
    assert torch.allclose(losses["D"], 0.5 * (losses["D_real"] + losses["D_fake"]))
    lam = task.config["lambda_nce"]
    pairs = [(real_A, fake_B)] + ([(real_B, G0(real_B))] if task.config["nce_idt"] else [])
    nce = 0.0
    for src, out in pairs:
        with torch.no_grad():
            feats = i2i.extract_features(G0, src, layers)
        ids = [
            torch.randperm(f.shape[2] * f.shape[3], generator=rng)[:16] for f in feats
        ]  # the same stream the task draws from, in the same order
        nce = nce + _reference_nce(G0, F0, src, out, layers, ids, lam)
    nce = nce / len(pairs)
    g_gan = mse(task.nets["D"](fake_B), 1.0)  # against the updated discriminator
    torch.testing.assert_close(losses["NCE"], nce.detach().float(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(losses["G_GAN"], g_gan.detach().float(), rtol=1e-6, atol=1e-7)
    total = g_gan + nce
    if shift:
        shift_loss = first_step_shift_loss(real_A, fake_B, real_A, real_B, "A") * shift
        torch.testing.assert_close(losses["shift"], shift_loss.detach().float())
        total = total + shift_loss
    else:
        assert "shift" not in losses
    # Sums in a different order: compare each network's gradient at its own scale.
    for name, reference in (("G", G0), ("F", F0)):
        want = torch.autograd.grad(total, list(reference.parameters()), retain_graph=True)
        want = torch.cat([w.flatten() for w in want])
        got = torch.cat([p.grad.flatten() for p in task.nets[name].parameters()])
        torch.testing.assert_close(got, want, rtol=0, atol=1e-9 * float(want.abs().max()))


def test_fastcuts_mean_shift_compares_each_cell_with_its_own_under_a_flip(toy_data):
    """FastCUT's input is flipped half of the time; its output is flipped back before its
    cells are compared with the input's, so the running shift is each cell's own change, not
    that of its mirror image."""
    for seed in range(20):  # until the coin comes up flipped
        task = _task(toy_data, "fastcut", lambda_shift=1.0, seed=seed)
        if torch.rand((), generator=torch.Generator().set_state(task.rng.get_state())) < 0.5:
            break
    else:
        pytest.fail("no seed of 20 flipped the first input")
    G = task.nets["G"]
    G0 = copy.deepcopy(G)
    torch.manual_seed(1)
    real_A, real_B = torch.rand(2, 2, 3, 32, 32) * 2 - 1
    task.train_step({"A": real_A, "B": real_B})
    unflipped = (G0(real_A.flip(3)).flip(3) - real_A).double()
    averaged = 0.02 * F.avg_pool2d(unflipped, 8).mean(0)
    torch.testing.assert_close(task.mean_shift.shifts[0].double(), averaged, atol=1e-6, rtol=1e-4)
    mirrored = 0.02 * F.avg_pool2d((G0(real_A) - real_A).double(), 8).mean(0)
    assert not torch.allclose(task.mean_shift.shifts[0].double(), mirrored, atol=1e-4)


def test_fastcut_defaults_are_the_official_ones():
    cut = resolve_config("cut", {"data": "x"})
    fast = resolve_config("fastcut", {"data": "x"})
    assert (cut["lambda_nce"], cut["nce_idt"], cut["flip_equivariance"]) == (1.0, True, False)
    assert (fast["lambda_nce"], fast["nce_idt"], fast["flip_equivariance"]) == (10.0, False, True)
    assert (cut["epochs"], cut["epochs_decay"], fast["epochs"], fast["epochs_decay"]) == (
        200, 200, 150, 50
    )  # fmt: skip
    for c in (cut, fast):
        assert (c["gen"], c["disc"], c["gan_loss"], c["init"], c["antialias"]) == (
            "resnet9", "patchgan", "lsgan", "xavier", True
        )  # fmt: skip
        assert (c["nce_layers"], c["num_patches"], c["nce_temperature"]) == (
            "0,4,8,12,16",
            256,
            0.07,
        )
        assert (c["lr"], c["beta1"], c["beta2"], c["batch_size"]) == (2e-4, 0.5, 0.999, 1)


def test_head_is_sized_from_the_first_batch_and_flip_equivariance_runs(toy_data):
    task = _task(toy_data, "fastcut", ngf=4)
    widths = [getattr(task.nets["F"], f"mlp_{i}")[0].in_features for i in range(5)]
    assert widths == [3, 8, 16, 16, 16]
    for _ in range(3):  # flips are drawn from the task's stream
        losses = task.train_step({"A": torch.rand(1, 3, 32, 32), "B": torch.rand(1, 3, 32, 32)})
        assert all(torch.isfinite(v) for v in losses.values())


# -- training, resume, DDP, export ------------------------------------------------------------
@pytest.mark.parametrize("name,shift", [("cut", 0.0), ("fastcut", 1.0)])  # its flip coins
def test_resume_is_bit_exact_with_the_head_and_patch_stream(toy_data, tmp_path, name, shift):
    """FastCUT with the mean-shift term: its averages are saved and go on after the resume."""
    common = {"data": str(toy_data), **CUT_TINY, "epochs": 2, "epochs_decay": 1}
    common["lambda_shift"] = shift
    straight = train(name, out=str(tmp_path / "straight"), max_steps=6, **common)
    train(name, out=str(tmp_path / "resumed"), max_steps=3, **common)
    # Resumed from Python: the task object reads the run as `--resume` does.
    resumed = i2i.fit(i2i.create_task(name, resume=str(tmp_path / "resumed"), max_steps=6))
    a = load_file(str(straight.checkpoint / "networks.safetensors"))
    b = load_file(str(resumed.checkpoint / "networks.safetensors"))
    assert a.keys() == b.keys() and any(k.startswith("F.mlp_4") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_create_task_trains_from_python_and_exports_one_direction(toy_data, tmp_path):
    task = i2i.create_task(
        "fastcut", data=str(toy_data), out=str(tmp_path / "run"), max_steps=2, **CUT_TINY
    )
    result = i2i.fit(task)
    assert result.step == 2
    from i2i.models.export import export_run

    model = export_run(result.run_dir, tmp_path / "model")
    translator = i2i.load(model, device="cpu")
    assert translator.directions == ("AtoB",)
    config = json.loads((model / "config.json").read_text())
    assert config["generators"]["AtoB"]["kwargs"]["antialias"] is True
    out = translator(Image.new("RGB", (37, 29), (200, 120, 40)))
    assert out.size == (37, 29)


@pytest.mark.slow
def test_torchrun_two_processes_gloo(toy_data, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "i2i", "train", "cut", "--data", str(toy_data), "--out", str(out), "--gen", "resnet6",
        "--ngf", "8", "--ndf", "8", "--load-size", "36", "--crop-size", "32", "--num-patches", "16",
        "--max-steps", "2", "--log-every", "1", "--device", "cpu", "--workers", "0",
    ]  # fmt: skip
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    state = torch.load(out / "checkpoints" / "step_00000002" / "state.pt", weights_only=True)
    assert len(state["per_rank"]) == 2
    streams = [r["task"]["rng"] for r in state["per_rank"]]
    assert not torch.equal(streams[0], streams[1])  # each rank samples its own patches


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,options", [("cut", {}), ("fastcut", {"lambda_nce": 1.0, "max_steps": 600})]
)
def test_learns_day_to_night_on_the_toy_data(tmp_path, name, options):
    """Without --data: the toy day->night task. After a short run the output of a day scene is
    much darker than the scene (nights are dark). FastCUT runs with its flip equivariance and
    without the identity term, but with lambda_NCE 1: at the official 10 the contrastive term
    holds the colours for longer than a test can train (about 1000 toy steps still give
    blurred days; with 1 they are nights)."""
    settings = {"max_steps": 300, "ngf": 8, "ndf": 8, "num_patches": 64, "seed": 0, **options}
    result = train(name, out=str(tmp_path / "run"), **settings)
    translator = i2i.load(result.run_dir, device="cpu")
    days = i2i.find_images(i2i.toy_dataset_dir() / "testA")[:8]
    drops = []
    for path in days:
        day = Image.open(path).convert("RGB")
        drops.append(np.asarray(day, np.float32).mean() - np.asarray(translator(day)).mean())
    assert np.mean(drops) > 25, drops


@pytest.mark.parametrize("name", ["cut", "fastcut"])
def test_the_quality_recipe_starts_at_the_colour_map_and_resumes(name, toy_data, tmp_path):
    """``--recipe quality``: the generator starts near its input (PatchNCE keeps the content
    from the first step), its colours at the training sets' colour map, EMA on, critics on frozen
    features, NCE weight 0.5; the run resumes with its recipe. FastCUT's adds layer norm in the generator (no instance-norm blobs) and
    keeps NCE weight 1."""
    task = i2i.create_task(name, data=str(toy_data), recipe="quality", **CUT_TINY)
    config = task.config
    assert config["ema_decay"] == 0.999 and config["gen_kw"]["residual"] is True
    assert task.discriminators()["D"]["name"] == "projected"
    task.attach(Runtime("cpu", "fp32", False), seed=0)
    x = torch.rand(1, 3, 32, 32) * 1.8 - 0.9
    task.build({"A": x, "B": x})
    G = task.nets["G"]
    with torch.no_grad():
        start = x if G.colour is None else G.colour(x).clamp(-0.999, 0.999)
        assert torch.allclose(G(x), start, atol=1e-5)
    norms = {type(m) for m in task.nets["G"].modules()} & {nn.GroupNorm, nn.InstanceNorm2d}
    assert config["lambda_nce"] == (0.5 if name == "cut" else 1.0)
    assert config["nce_idt"] is (name == "cut")
    assert norms == ({nn.GroupNorm} if name == "fastcut" else {nn.InstanceNorm2d})
    assert G.colour is not None and G.colour_curve is None
    run = tmp_path / "run"
    train(name, data=str(toy_data), out=str(run), max_steps=1, recipe="quality", **CUT_TINY)
    resumed = train(name, resume=str(run), max_steps=2)
    assert resumed.step == 2
    assert json.loads((run / "config.json").read_text())["options"]["recipe"] == "quality"
    with pytest.raises(InvalidArgumentError, match="unknown recipe 'best'; available: quality"):
        resolve_config(name, {"data": "x", "recipe": "best"})


def test_eval_every_of_a_one_way_unpaired_task_needs_an_extractor(toy_data, tmp_path):
    with pytest.raises(i2i.I2IError, match="--eval-extractor") as error:
        train("cut", data=str(toy_data), out=str(tmp_path / "run"), max_steps=2, eval_every=2,
              **TINY)  # fmt: skip
    assert "cut model (one way, AtoB)" in str(error.value)
    assert not (tmp_path / "run").exists()


def test_a_run_recorded_with_an_eval_that_measured_nothing_resumes_with_a_warning(
    toy_data, tmp_path
):
    from i2i.core.errors import I2IWarning

    run = tmp_path / "run"
    train("cut", data=str(toy_data), out=str(run), max_steps=2, **{**TINY, "save_every": 2})
    config = json.loads((run / "config.json").read_text())
    config["options"]["eval_every"] = 2  # as the versions before the check recorded it
    (run / "config.json").write_text(json.dumps(config))
    with pytest.warns(I2IWarning, match="--eval-every measures cycle PSNR/SSIM"):
        assert train("cut", resume=str(run), max_steps=3).step == 3
