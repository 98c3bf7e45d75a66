"""Quality and memorisation metrics: SWD (no downloads), nearest neighbours, FID/KID.

Written for Atelier from the papers:
- Karras et al. 2018 (ProGAN), Sec. 5 / App. D: sliced Wasserstein distance between 7x7
  neighbourhoods sampled from Laplacian-pyramid levels (16 px up to full resolution).
- Heusel et al. 2017 (FID) and Binkowski et al. 2018 (KID, unbiased MMD^2 with the cubic
  polynomial kernel), on features from a user-supplied Inception network.

Images: uint8 arrays or tensors in NCHW or NHWC (numpy or torch), or floats in [-1, 1]
(the generator's range; converted with x * 127.5 + 128, clamped, as the official code does).
Everything runs on CPU in a vectorised way; no weights are downloaded.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["to_uint8_nchw", "laplacian_pyramid", "swd", "nearest_neighbours",
           "memorisation_flags", "MemorisationReport", "feature_stats", "fid_from_stats",
           "fid_from_features", "kid_from_features", "InceptionFeatureExtractor"]


def to_uint8_nchw(images) -> Tensor:
    """Any accepted image batch -> uint8 CPU tensor [N, C, H, W] with C in (1, 3)."""
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, Tensor) else images
    x = x.detach().cpu()
    if x.ndim != 4:
        raise ValueError(f"expected a batch [N, C, H, W] or [N, H, W, C], got {tuple(x.shape)}")
    if x.shape[1] not in (1, 3):
        if x.shape[3] not in (1, 3):
            raise ValueError(f"cannot find a 1- or 3-channel axis in {tuple(x.shape)}")
        x = x.permute(0, 3, 1, 2)
    if x.dtype != torch.uint8:
        x = (x.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return x.contiguous()


# ---------------------------------------------------------------------------------------------
# Sliced Wasserstein distance (ProGAN).

_BINOMIAL5 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: Tensor, gain: float = 1.0) -> Tensor:  # depthwise 5x5 binomial, mirror padding
    c = x.shape[1]
    k = (torch.outer(_BINOMIAL5, _BINOMIAL5) * gain).to(x)[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(F.pad(x, [2, 2, 2, 2], mode="reflect"), k, groups=c)


def _pyr_down(x: Tensor) -> Tensor:
    return _blur(x)[:, :, ::2, ::2]


def _pyr_up(x: Tensor) -> Tensor:
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, h * 2, w * 2)
    up[:, :, ::2, ::2] = x
    return _blur(up, gain=4.0)


def laplacian_pyramid(x: Tensor, min_res: int = 16) -> dict[int, Tensor]:
    """{resolution: level} from full resolution down to min_res; the last level is Gaussian."""
    levels: dict[int, Tensor] = {}
    while min(x.shape[2:]) > min_res and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0:
        down = _pyr_down(x)
        levels[x.shape[2]] = x - _pyr_up(down)
        x = down
    levels[x.shape[2]] = x
    return levels


def _patches(level: Tensor, n_per_image: int, size: int, gen: torch.Generator) -> Tensor:
    """[N*P, C, size, size] random neighbourhoods, centres drawn inside the image."""
    n, _, h, w = level.shape
    r = size // 2
    ys = torch.randint(r, h - size + r + 1, (n, n_per_image), generator=gen)
    xs = torch.randint(r, w - size + r + 1, (n, n_per_image), generator=gen)
    d = torch.arange(size) - r
    rows = (ys[:, :, None, None] + d[:, None]).expand(n, n_per_image, size, size)
    cols = (xs[:, :, None, None] + d[None, :]).expand(n, n_per_image, size, size)
    batch = torch.arange(n)[:, None, None, None]
    out = level.permute(0, 2, 3, 1)[batch, rows, cols]  # [N, P, size, size, C]
    return out.permute(0, 1, 4, 2, 3).reshape(n * n_per_image, -1, size, size)


def _normalise(desc: Tensor, ref: Tensor) -> Tensor:
    """Per-channel standardisation of [M, C, k, k] descriptors with the stats of `ref`."""
    mean = ref.mean(dim=(0, 2, 3), keepdim=True)
    std = ref.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)
    return ((desc - mean) / std).flatten(1)


def _sliced_wasserstein(a: Tensor, b: Tensor, n_directions: int, n_repeats: int,
                        gen: torch.Generator) -> float:
    """Mean |sorted projection difference| over random unit directions; a, b: [M, D]."""
    per_repeat = max(n_directions // n_repeats, 1)
    results = []
    for _ in range(n_repeats):
        dirs = torch.randn(a.shape[1], per_repeat, generator=gen)
        dirs = dirs / dirs.norm(dim=0, keepdim=True)
        # numpy's SIMD sort is ~3x faster than torch.sort on CPU; rows = directions
        pa = np.sort((dirs.T @ a.T).numpy(), axis=1)
        pb = np.sort((dirs.T @ b.T).numpy(), axis=1)
        results.append(float(np.abs(pa - pb).mean()))
    return float(np.mean(results))


def swd(images_a, images_b, *, n_patches_per_image: int = 128, patch_size: int = 7,
        n_directions: int = 512, n_repeats: int = 4, seed: int = 0, min_res: int = 16,
        normalise: str = "per_set") -> dict[str, float]:
    """Sliced Wasserstein distance x1e3 per Laplacian level ('64', '32', '16', ...) and 'mean'.

    normalise='per_set' standardises each set's descriptors per channel with its own stats, as
    ProGAN does; 'joint' uses the stats of both sets together (also sees global colour shifts).
    Symmetric and deterministic for a seed: both sets use the same patch positions.
    """
    if normalise not in ("per_set", "joint"):
        raise ValueError("normalise must be 'per_set' or 'joint'")
    a = to_uint8_nchw(images_a).float()
    b = to_uint8_nchw(images_b).float()
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"image shapes differ: {tuple(a.shape[1:])} vs {tuple(b.shape[1:])}")
    pyr_a, pyr_b = laplacian_pyramid(a, min_res), laplacian_pyramid(b, min_res)
    out: dict[str, float] = {}
    for i, res in enumerate(pyr_a):
        size = min(patch_size, *pyr_a[res].shape[2:])
        da = _patches(pyr_a[res], n_patches_per_image, size,
                      torch.Generator().manual_seed(seed + i))
        db = _patches(pyr_b[res], n_patches_per_image, size,
                      torch.Generator().manual_seed(seed + i))
        m = min(len(da), len(db))
        if len(da) != len(db):  # subsample the larger set (the same way whichever side it is)
            pick = torch.randperm(max(len(da), len(db)),
                                  generator=torch.Generator().manual_seed(seed + 7919))[:m]
            da, db = (da[pick], db) if len(da) > m else (da, db[pick])
        if normalise == "per_set":
            fa, fb = _normalise(da, da), _normalise(db, db)
        else:
            both = torch.cat([da, db])
            fa, fb = _normalise(da, both), _normalise(db, both)
        gen = torch.Generator().manual_seed(seed + 104729 + i)
        out[str(res)] = 1e3 * _sliced_wasserstein(fa, fb, n_directions, n_repeats, gen)
    out["mean"] = float(np.mean(list(out.values())))
    return out


# ---------------------------------------------------------------------------------------------
# Nearest neighbours in a downsampled pixel space, and memorisation flags.

def _embed(images, size: int, chunk: int = 512) -> Tensor:
    """[N, 3*size*size] float32 in [0, 1]: area-downsampled, grey expanded to RGB."""
    x = to_uint8_nchw(images)
    parts = []
    for i in range(0, len(x), chunk):
        c = x[i:i + chunk].float() / 255.0
        c = F.adaptive_avg_pool2d(c, (size, size)).expand(-1, 3, -1, -1)
        parts.append(c.reshape(len(c), -1))
    return torch.cat(parts)


def _knn(q: Tensor, ref: Tensor, k: int, chunk: int = 4096) -> tuple[Tensor, Tensor]:
    """Top-k smallest RMS distances from each q to ref (float64 for exact-copy accuracy)."""
    qd = q.double()
    q2 = qd.square().sum(1, keepdim=True)
    best_d = torch.full((len(q), 0), float("inf"), dtype=torch.float64)
    best_i = torch.zeros((len(q), 0), dtype=torch.int64)
    for s in range(0, len(ref), chunk):
        r = ref[s:s + chunk].double()
        d2 = (q2 + r.square().sum(1)[None] - 2 * qd @ r.T).clamp_min(0)  # [Nq, chunk]
        idx = torch.arange(s, s + len(r))[None].expand(len(q), -1)
        d_all, i_all = torch.cat([best_d, d2], 1), torch.cat([best_i, idx], 1)
        best_d, pos = d_all.topk(min(k, d_all.shape[1]), dim=1, largest=False)
        best_i = i_all.gather(1, pos)
    return best_i, (best_d / q.shape[1]).sqrt()


def nearest_neighbours(samples, dataset_images, k: int = 1, *,
                       size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(indices [N, k] int64, distances [N, k] float64) of each sample's nearest dataset images.

    Distance: RMS pixel difference in [0, 1] units after area-downsampling both to size x size
    (0 = identical, 1/255 ~ 0.004 = one grey level everywhere).
    """
    q, ref = _embed(samples, size), _embed(dataset_images, size)
    idx, dist = _knn(q, ref, k)
    return idx.numpy(), dist.numpy()


@dataclass(frozen=True)
class MemorisationReport:
    flags: np.ndarray        # [N] bool: sample nearly identical to a training image
    indices: np.ndarray      # [N] int64: nearest training image
    distances: np.ndarray    # [N] float64: RMS distance to it (see nearest_neighbours)
    threshold: float         # flags = distances <= threshold
    dataset_nn_median: float | None  # median nearest-other distance inside the dataset


def memorisation_flags(samples, dataset_images, threshold: float | None = None, *,
                       relative: float = 0.5, max_threshold: float = 0.05, size: int = 32,
                       max_reference: int = 512, seed: int = 0) -> MemorisationReport:
    """Flag samples whose nearest training image is (nearly) a copy.

    threshold given: absolute RMS distance (see nearest_neighbours), flag when d <= threshold.
    threshold None: adaptive, min(max_threshold, relative * median over (up to max_reference)
    training images of their distance to the nearest *other* training image). A sample is then
    flagged when it sits much closer to a training image than training images sit to each
    other, and never at a distance above max_threshold (~13/255 RMS at 32 px), which keeps
    merely similar samples of a very diverse dataset unflagged.
    """
    q, ref = _embed(samples, size), _embed(dataset_images, size)
    idx, dist = _knn(q, ref, 1)
    median = None
    if threshold is None:
        if len(ref) < 2:
            raise ValueError("the adaptive threshold needs at least 2 dataset images")
        pick = torch.randperm(len(ref), generator=torch.Generator().manual_seed(seed))
        pick = pick[:max_reference].sort().values
        inner = _knn_excluding(ref, pick)
        median = float(inner.median())
        threshold = min(max_threshold, relative * median)
    d = dist[:, 0].numpy()
    return MemorisationReport(d <= threshold, idx[:, 0].numpy(), d, float(threshold), median)


def _knn_excluding(ref: Tensor, pick: Tensor) -> Tensor:
    """[len(pick)] RMS distance from ref[pick] to the nearest other image of ref."""
    out = []
    for s in range(0, len(pick), 1024):
        sel = pick[s:s + 1024]
        i, d = _knn(ref[sel], ref, 2)
        self_first = i[:, 0] == sel  # the image itself (distance 0) comes first unless a tie
        out.append(torch.where(self_first, d[:, 1], d[:, 0]))
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------
# FID / KID on features (e.g. Inception pool3, 2048-d).

def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """(mean [D], covariance [D, D]) in float64, covariance with the 1/(N-1) normalisation."""
    f = np.asarray(features, dtype=np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _half_factor(m: np.ndarray) -> np.ndarray:
    """A = V sqrt(W) from m = V W V^T, so that A A^T = m (A = m^(1/2) V)."""
    w, v = np.linalg.eigh((m + m.T) / 2)
    return v * np.sqrt(np.clip(w, 0, None))


def fid_from_stats(mu1, sigma1, mu2, sigma2) -> float:
    """|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)).

    tr((S1 S2)^(1/2)) = sum sqrt(eig(S1^(1/2) S2 S1^(1/2))): the inner matrix is symmetric PSD
    and similar to S1 S2, so a symmetric eigen-solver suffices (no scipy sqrtm). With
    S1 = V W V^T and A = V W^(1/2), A^T S2 A = V^T (S1^(1/2) S2 S1^(1/2)) V has the same
    eigenvalues. Cost: two symmetric eigen-decompositions of D x D (D = 2048: seconds).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    s2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    a = _half_factor(s1)
    inner = a.T @ s2 @ a
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    fid = np.square(mu1 - mu2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean
    return float(max(fid, 0.0))


def fid_from_features(f1, f2) -> float:
    """Frechet distance between Gaussians fitted to two feature sets [N1, D], [N2, D]."""
    return fid_from_stats(*feature_stats(f1), *feature_stats(f2))


def kid_from_features(f1, f2, *, num_subsets: int = 100, max_subset_size: int = 1000,
                      seed: int = 0) -> float:
    """Kernel inception distance: unbiased MMD^2 with k(x, y) = (x.y / D + 1)^3.

    Averaged over `num_subsets` random subsets of m = min(N1, N2, max_subset_size) rows each:
    mean_{i!=j} [k(x_i, x_j) + k(y_i, y_j)] - 2 mean_{i,j} k(x_i, y_j). Can be slightly
    negative when the two sets come from the same distribution.
    """
    x_all, y_all = np.asarray(f1, np.float64), np.asarray(f2, np.float64)
    d = x_all.shape[1]
    m = min(len(x_all), len(y_all), max_subset_size)
    if m < 2:
        raise ValueError("KID needs at least 2 feature rows in each set")
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = x_all[rng.choice(len(x_all), m, replace=False)]
        y = y_all[rng.choice(len(y_all), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        total += within - 2 * kxy.sum() / (m * m)
    return float(total / num_subsets)


# ---------------------------------------------------------------------------------------------

class InceptionFeatureExtractor:
    """Wraps a user-supplied TorchScript Inception (e.g. `inception-2015-12-05.pt` as used by
    stylegan2-ada-pytorch) called as `module(uint8 [N, 3, H, W], return_features=True)`.

    Atelier never downloads or bundles it: the user points at the file. torch.jit.load runs
    TorchScript code from that file, so load only files you trust. The official detector
    resizes to 299x299 itself, so the default passes images at their own resolution (as the
    official metrics do); resize_to=299 pre-resizes (bilinear) for detectors that need it.
    """

    def __init__(self, module: torch.nn.Module, *, device="cpu", resize_to: int | None = None,
                 batch_size: int = 64):
        self.module = module.eval().to(device)
        self.device, self.resize_to, self.batch_size = torch.device(device), resize_to, batch_size

    @classmethod
    def from_file(cls, path, *, device="cpu", **kwargs) -> "InceptionFeatureExtractor":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Inception weights not found: {path} (supply the file)")
        with warnings.catch_warnings():  # TorchScript is deprecated, but it is this file's format
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location=device)
        return cls(module, device=device, **kwargs)

    @torch.no_grad()
    def __call__(self, images) -> np.ndarray:
        """Features [N, F] float64 for a batch of images (any accepted layout/dtype)."""
        x = to_uint8_nchw(images)
        out = []
        for i in range(0, len(x), self.batch_size):
            b = x[i:i + self.batch_size].to(self.device)
            if b.shape[1] == 1:
                b = b.repeat(1, 3, 1, 1)
            if self.resize_to is not None and b.shape[2:] != (self.resize_to, self.resize_to):
                b = F.interpolate(b.float(), size=(self.resize_to, self.resize_to),
                                  mode="bilinear", align_corners=False)
                b = b.round().clamp(0, 255).to(torch.uint8)
            out.append(self.module(b, return_features=True).double().cpu())
        return torch.cat(out).numpy()
