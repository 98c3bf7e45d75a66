"""Upscaling with the resampler and with user-supplied networks; weights files read as data only."""
from __future__ import annotations

import pickle

import numpy as np
import pytest


def picture(size=24):
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.zeros((size, size, 3), np.uint8)
    img[..., 0] = (xx * 255 // size)
    img[..., 1] = ((xx + yy) % 8 < 4) * 200
    img[..., 2] = 90
    return img


def test_lanczos_x2_x4():
    from core.playground import PlaygroundError, upscale
    img = picture()
    assert upscale(img, 2).shape == (48, 48, 3) and upscale(img, 4).shape == (96, 96, 3)
    for bad in (3, True, "2"):
        with pytest.raises(PlaygroundError, match="x2 or x4"):
            upscale(img, bad)
    with pytest.raises(PlaygroundError, match="RGB"):
        upscale(img[..., 0], 2)


def _save(sd, path):
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path


@pytest.mark.parametrize("fold,factor", [(1, 4), (2, 2), (1, 2)])
def test_rrdbnet_weights_load_and_run(tmp_path, fold, factor):
    import torch

    from core.playground import upscale
    from core.playground.srnets import RRDBNet
    from core.playground.upscale import load_sr_network
    torch.manual_seed(0)
    net = RRDBNet(num_feat=8, num_block=2, num_grow_ch=4, fold=fold)
    path = _save({f"params_ema.{k}": v for k, v in net.state_dict().items()}, tmp_path / f"rrdb{fold}.safetensors")
    loaded, scale = load_sr_network(path)
    assert scale == 4 // fold and sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in net.parameters())
    out = upscale(picture(), factor, weights=path)
    assert out.shape == (24 * factor, 24 * factor, 3) and out.dtype == np.uint8
    x = torch.rand(1, 3, 10, 10)
    assert torch.allclose(loaded(x), net(x), atol=1e-5)


def test_srvgg_from_a_torch_file(tmp_path):
    import torch

    from core.playground import upscale
    from core.playground.srnets import SRVGGNetCompact
    from core.playground.upscale import load_sr_network
    net = SRVGGNetCompact(num_feat=8, num_conv=3, upscale=4)
    torch.save({"params": net.state_dict()}, tmp_path / "compact.pth")
    loaded, scale = load_sr_network(tmp_path / "compact.pth")
    assert scale == 4 and len(loaded.body) == len(net.body)
    assert upscale(picture(), 4, weights=tmp_path / "compact.pth").shape == (96, 96, 3)


class Boom:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned > /dev/null",))


def test_weights_that_are_not_plain_tensors_are_refused(tmp_path):
    import torch

    from core.playground import PlaygroundError, upscale
    (tmp_path / "code.pkl").write_bytes(pickle.dumps({"conv_first.weight": Boom()}))
    torch.save({"conv_first.weight": torch.zeros(1), "evil": Boom()}, tmp_path / "code.pth")
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    _save({"foo.weight": torch.zeros(3)}, tmp_path / "other.safetensors")
    _save({"conv_first.weight": torch.zeros(8, 5, 3, 3)}, tmp_path / "gray.safetensors")
    for name, needle in (("code.pkl", "plain pickles"), ("code.pth", "refused"), ("junk.safetensors", "damaged"),
                         ("other.safetensors", "Unknown"), ("gray.safetensors", "RGB"), ("missing.pth", "cannot be read")):
        with pytest.raises(PlaygroundError, match=needle):
            upscale(picture(), 2, weights=tmp_path / name)


def test_lpips_weights_from_the_user(tmp_path):
    import torch

    from core.playground import PlaygroundError
    from core.playground.vgg import VGG16_CONVS, VGGPerceptual
    convs = {f"features.{i}.weight": torch.randn(o, c, 3, 3) * 0.05 for i, (c, o) in VGG16_CONVS.items()}
    convs.update({f"features.{i}.bias": torch.zeros(o) for i, (c, o) in VGG16_CONVS.items()})
    lins = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate((64, 128, 256, 512, 512))}
    _save(convs, tmp_path / "vgg.safetensors")
    torch.save(lins, tmp_path / "lpips.pth")
    vgg = VGGPerceptual.load([tmp_path / "vgg.safetensors", tmp_path / "lpips.pth"])
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    assert vgg.distance(vgg(a), vgg(a)).item() == 0 and vgg.distance(vgg(a), vgg(b)).item() > 0
    with pytest.raises(PlaygroundError, match="VGG16"):
        VGGPerceptual.load(tmp_path / "lpips.pth")
