"""Tests for core/stylegan/metrics.py: SWD, nearest neighbours, FID/KID (CPU, tiny)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.stylegan.metrics import (InceptionFeatureExtractor, feature_stats, fid_from_features,
                                   fid_from_stats, kid_from_features, memorisation_flags,
                                   nearest_neighbours, swd, to_uint8_nchw)

SMALL = dict(n_patches_per_image=32, n_directions=64, n_repeats=2)


def smooth_images(n: int, res: int = 32, seed: int = 0) -> torch.Tensor:
    """uint8 NCHW: random 4x4 colour fields upsampled (a smooth 'dataset')."""
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=res, mode="bilinear")
    return (x * 255).round().to(torch.uint8)


def noisy(x: torch.Tensor, sigma: float, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x.float() + torch.randn(x.shape, generator=g) * sigma).clamp(0, 255).to(torch.uint8)


# --- SWD -------------------------------------------------------------------------------------

def test_swd_zero_for_identical_sets_and_levels():
    a = smooth_images(16)
    out = swd(a, a, **SMALL)
    assert set(out) == {"32", "16", "mean"}
    assert all(v == 0.0 for v in out.values())


def test_swd_larger_for_different_distributions_and_grows_with_noise():
    a, b = smooth_images(32, seed=0), smooth_images(32, seed=5)
    same = swd(a, b, **SMALL)["mean"]
    # ProGAN's per-set normalisation saturates once noise dominates a level: stay below that
    values = [swd(a, noisy(b, s), **SMALL)["mean"] for s in (4, 12, 32)]
    assert same < values[0] < values[1] < values[2]
    joint = [swd(a, noisy(b, s), **SMALL, normalise="joint")["mean"] for s in (0, 8, 32, 96)]
    assert joint == sorted(joint)
    rand = torch.randint(0, 256, a.shape, generator=torch.Generator().manual_seed(3))
    assert swd(a, rand.to(torch.uint8), **SMALL)["mean"] > 1.5 * same


def test_swd_symmetric_deterministic_and_layout_agnostic():
    a, b = smooth_images(12, seed=0), noisy(smooth_images(12, seed=1), 20)
    ab = swd(a, b, **SMALL)
    assert ab == swd(b, a, **SMALL)
    assert ab == swd(a, b, **SMALL)
    assert ab != swd(a, b, **SMALL, seed=1)
    nhwc = swd(a.permute(0, 2, 3, 1).numpy(), b.permute(0, 2, 3, 1).numpy(), **SMALL)
    assert nhwc == ab
    as_float = (a.float() - 128) / 127.5  # the generator's [-1, 1] range
    assert swd(as_float, b, **SMALL) == ab


def test_swd_joint_normalisation_sees_a_colour_shift():
    a = smooth_images(16, seed=0)
    shifted = (a.float() * 0.5).to(torch.uint8)  # darker copy, same structure
    assert swd(a, shifted, **SMALL, normalise="joint")["mean"] > \
        5 * swd(a, shifted, **SMALL)["mean"] + 1


def test_swd_unequal_set_sizes():
    out = swd(smooth_images(10), smooth_images(14, seed=2), **SMALL)
    assert np.isfinite(out["mean"]) and out["mean"] > 0


def test_to_uint8_nchw_layouts():
    x = np.zeros((2, 8, 8, 3), np.uint8)
    assert tuple(to_uint8_nchw(x).shape) == (2, 3, 8, 8)
    with pytest.raises(ValueError):
        to_uint8_nchw(np.zeros((2, 8, 8), np.uint8))


# --- nearest neighbours / memorisation --------------------------------------------------------

def test_nearest_neighbours_finds_exact_copies():
    data = torch.randint(0, 256, (40, 3, 24, 24), generator=torch.Generator().manual_seed(0),
                         dtype=torch.uint8)
    picks = [3, 17, 39]
    idx, dist = nearest_neighbours(data[picks], data, k=3)
    assert idx.shape == (3, 3) and dist.shape == (3, 3)
    assert idx[:, 0].tolist() == picks
    assert np.all(dist[:, 0] < 1e-6) and np.all(np.diff(dist, axis=1) >= 0)


def test_memorisation_flags_copies_not_fresh_samples():
    data = smooth_images(30, seed=0)
    fresh = smooth_images(5, seed=9)
    near_copy = noisy(data[[2, 11]], 2.0)  # re-encoded-like copies
    samples = torch.cat([near_copy, fresh])
    rep = memorisation_flags(samples, data)
    assert rep.flags.tolist() == [True, True, False, False, False, False, False]
    assert rep.indices[:2].tolist() == [2, 11]
    assert rep.dataset_nn_median is not None and 0 < rep.threshold <= 0.05
    absolute = memorisation_flags(samples, data, threshold=0.0)
    assert not absolute.flags.any() and absolute.dataset_nn_median is None


# --- FID / KID -------------------------------------------------------------------------------

def test_fid_identical_features_is_zero():
    f = np.random.default_rng(0).normal(size=(200, 16))
    assert fid_from_features(f, f) == pytest.approx(0.0, abs=1e-8)


def test_fid_diagonal_closed_form():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    a, b = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(a + b - 2 * np.sqrt(a * b))
    assert fid_from_stats(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    # commuting, non-diagonal: same eigenbasis
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    got = fid_from_stats(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-8)


def test_fid_features_match_reference_formula():
    rng = np.random.default_rng(2)
    f1 = rng.normal(size=(300, 5)) @ rng.normal(size=(5, 5))
    f2 = rng.normal(size=(250, 5)) @ rng.normal(size=(5, 5)) + 0.3
    mu1, s1 = f1.mean(0), np.cov(f1, rowvar=False)
    mu2, s2 = f2.mean(0), np.cov(f2, rowvar=False)
    # independent route: eigenvalues of the (non-symmetric) product S1 S2
    tr_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert fid_from_features(f1, f2) == pytest.approx(expected, rel=1e-8)
    mu, sigma = feature_stats(f1)
    assert np.allclose(mu, mu1) and np.allclose(sigma, s1)


def test_kid_matches_explicit_unbiased_estimator():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(7, 4)), rng.normal(size=(7, 4)) + 0.5
    k = lambda u, v: (u @ v / 4 + 1) ** 3  # noqa: E731
    m = 7
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    expected = (xx + yy) / (m * (m - 1)) - 2 * xy / m**2
    # one subset of all rows: a permutation, to which the estimator is invariant
    assert kid_from_features(x, y, num_subsets=1) == pytest.approx(expected, rel=1e-10)


def test_kid_near_zero_for_same_distribution_positive_otherwise():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    same = kid_from_features(a, b, num_subsets=20, max_subset_size=200)
    diff = kid_from_features(a, b + 1.0, num_subsets=20, max_subset_size=200)
    assert abs(same) < 0.02 * diff and diff > 0


# --- Inception wrapper (a scripted stand-in for the user-supplied file) ----------------------

class _FakeInception(torch.nn.Module):
    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        assert img.dtype == torch.uint8 and img.shape[1] == 3
        x = img.float()
        feats = torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3)),
                           torch.full_like(x[:, :1, 0, 0], float(img.shape[2]))], dim=1)
        return feats if return_features else feats.softmax(dim=1)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script/save
def test_inception_extractor_from_torchscript_file(tmp_path):
    path = tmp_path / "inception-stand-in.pt"
    torch.jit.save(torch.jit.script(_FakeInception()), str(path))
    ext = InceptionFeatureExtractor.from_file(path, batch_size=5)
    imgs = smooth_images(12)
    f = ext(imgs)
    assert f.shape == (12, 7) and f.dtype == np.float64 and np.all(f[:, 6] == 32)
    assert fid_from_features(f, ext(imgs.permute(0, 2, 3, 1).numpy())) == pytest.approx(0, abs=1e-6)
    grey = ext(imgs[:, :1])  # expanded to 3 channels
    assert np.allclose(grey[:, 0], grey[:, 1])
    resized = InceptionFeatureExtractor.from_file(path, resize_to=299)(imgs[:2])
    assert np.all(resized[:, 6] == 299)
    with pytest.raises(FileNotFoundError):
        InceptionFeatureExtractor.from_file(tmp_path / "missing.pt")
