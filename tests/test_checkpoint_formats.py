"""Checkpoint formats: every layout loads to the exact source weights; hostile files are refused."""
from __future__ import annotations

import copy
import pickle
import struct

import numpy as np
import pytest
import torch

from core.stylegan import CheckpointError, load_checkpoint, read_native_metadata, save_checkpoint
from core.stylegan.networks import Discriminator, Generator
from tests.stylegan_fixture_writers import (fill_deterministic, write_malicious_pickle, write_official_pickle,
                                            write_rosinality_pt, write_tf_pickle)

G_KW = dict(z_dim=16, w_dim=16, img_resolution=16, mapping_layers=2, channel_base=128, channel_max=32, conv_clamp=256)
D_KW = dict(img_resolution=16, channel_base=128, channel_max=32, conv_clamp=256)


@pytest.fixture(scope="module")
def nets():
    G = fill_deterministic(Generator(**G_KW), 1).eval()
    G_ema = fill_deterministic(copy.deepcopy(G), 3).eval()
    D = fill_deterministic(Discriminator(**D_KW), 2).eval()
    return G, D, G_ema


def assert_same(a: torch.nn.Module, b: torch.nn.Module, atol: float = 0.0) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and sa[k].shape == sb[k].shape, k
        if atol == 0:
            assert torch.equal(sa[k], sb[k]), k
        else:
            torch.testing.assert_close(sa[k], sb[k], atol=atol, rtol=0, msg=k)


def assert_loaded(ck, G, D, G_ema, atol=0.0):
    assert_same(ck.G_ema, G_ema, atol)
    assert ck.G is not None and ck.D is not None
    assert_same(ck.G, G, atol)
    assert_same(ck.D, D, atol)
    assert (ck.resolution, ck.z_dim, ck.w_dim, ck.num_ws, ck.c_dim) == (16, 16, 16, 6, 0)
    assert not any(p.requires_grad for p in ck.G_ema.parameters()) and not ck.G_ema.training


@pytest.mark.parametrize("flavour", ["ada", "sg3"])
def test_official_pickle_loads_exact_weights(tmp_path, nets, flavour):
    G, D, G_ema = nets
    write_official_pickle(tmp_path / "net.pkl", G=G, D=D, G_ema=G_ema, flavour=flavour)
    ck = load_checkpoint(tmp_path / "net.pkl")
    assert_loaded(ck, G, D, G_ema)
    assert ck.source_format.startswith("stylegan2-ada-pytorch" if flavour == "ada" else "stylegan3-repo")
    assert ck.g_kwargs["conv_clamp"] == 256 and ck.d_kwargs["mbstd_group_size"] == 4
    assert ck.metadata["training_set_kwargs"]["resolution"] == 16


def test_tf_pickle_loads_same_weights(tmp_path, nets):
    G, D, G_ema = nets
    write_tf_pickle(tmp_path / "tf.pkl", G=G, D=D, G_ema=G_ema)
    ck = load_checkpoint(tmp_path / "tf.pkl")
    assert_loaded(ck, G, D, G_ema, atol=1e-6)  # mod_bias - 1 + 1 rounds in float32
    assert ck.source_format.startswith("TF-era")


@pytest.mark.parametrize("latent_avg", [True, False])
def test_rosinality_pt_loads_exact_weights(tmp_path, nets, latent_avg):
    G, D, G_ema = nets
    write_rosinality_pt(tmp_path / "r.pt", G=G, D=D, G_ema=G_ema, with_latent_avg=latent_avg)
    ck = load_checkpoint(tmp_path / "r.pt")
    if latent_avg:  # one latent_avg in the file (G_ema's) serves g as well
        assert_same(ck.G_ema, G_ema)
        assert_same(ck.D, D)
        sd = ck.G.state_dict()
        assert all(torch.equal(sd[k], v) for k, v in G.state_dict().items() if not k.endswith("w_avg"))
    else:  # w_avg is estimated from the mapping network; everything else exact
        assert ck.metadata["w_avg_estimated"] is True
        sd = ck.G_ema.state_dict()
        assert all(torch.equal(sd[k], v) for k, v in G_ema.state_dict().items() if not k.endswith("w_avg"))


def test_native_round_trip_is_bitwise(tmp_path, nets):
    G, D, G_ema = nets
    extra = {"G_opt.exp_avg.0": torch.randn(3, 4), "step": torch.tensor(7)}
    meta = {"provenance": {"source": "unit test"}, "training": {"lr": 0.0025}, "step": 7}
    save_checkpoint(tmp_path / "m.safetensors", G_ema=G_ema, G=G, D=D, metadata=meta, extra_tensors=extra)
    ck = load_checkpoint(tmp_path / "m.safetensors")
    assert_loaded(ck, G, D, G_ema)
    assert ck.g_kwargs == G_ema.init_kwargs and ck.d_kwargs == D.init_kwargs
    assert ck.metadata["provenance"] == {"source": "unit test"} and ck.metadata["step"] == 7
    assert all(torch.equal(ck.extra_tensors[k], v) for k, v in extra.items())
    header = read_native_metadata(tmp_path / "m.safetensors")
    assert header["format_version"] == 1 and header["g_kwargs"] == G_ema.init_kwargs
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temp file
    # Official pickle -> native -> same outputs.
    z = torch.from_numpy(np.random.RandomState(0).randn(2, 16).astype(np.float32))
    with torch.no_grad():
        assert torch.equal(ck.G_ema(z, None, noise_mode="const"), G_ema(z, None, noise_mode="const"))


def test_native_g_ema_only(tmp_path, nets):
    save_checkpoint(tmp_path / "g.safetensors", G_ema=nets[2])
    ck = load_checkpoint(tmp_path / "g.safetensors")
    assert ck.G is None and ck.D is None and ck.d_kwargs is None
    assert_same(ck.G_ema, nets[2])


def test_golden_outputs_match_the_official_code(nets):
    """Values computed by NVlabs/stylegan2-ada-pytorch (force_fp32) for the same weights and inputs."""
    G = fill_deterministic(Generator(**G_KW), 1).eval()
    D = fill_deterministic(Discriminator(**D_KW), 2).eval()
    z = torch.from_numpy(np.random.RandomState(0).randn(4, 16).astype(np.float32))
    x = torch.from_numpy(np.random.RandomState(1).uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32))
    with torch.no_grad():
        i1 = G(z, None, truncation_psi=1.0, noise_mode="const")
        i7 = G(z, None, truncation_psi=0.7, noise_mode="const")
        logits = D(x, None)
    close = dict(atol=2e-5, rtol=0)
    torch.testing.assert_close(i1[0, :, 5, 7], torch.tensor([1.2611808776855469, -1.7377009391784668, -1.5952084064483643]), **close)
    torch.testing.assert_close(i7[3, :, 11, 2], torch.tensor([-0.08210742473602295, -0.27557235956192017, -0.3507380187511444]), **close)
    assert abs(float(i1.abs().max()) - 3.9925479888916016) < 2e-5 and abs(float(i1.mean()) - 0.5422469973564148) < 2e-6
    assert abs(float(i7.mean()) - 0.5464717745780945) < 2e-6
    torch.testing.assert_close(logits.flatten(), torch.tensor(
        [-0.06092902645468712, 0.047254715114831924, -0.06914833188056946, -0.08919420838356018]), **close)


# ---------------------------------------------------------------------------- hostile and foreign files

@pytest.mark.parametrize("nested", [False, True])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, nested):
    marker = tmp_path / "pwned"
    write_malicious_pickle(tmp_path / "evil.pkl", marker, nested=nested)
    with pytest.raises(CheckpointError, match=r"refused: the pickle asks for (posix|nt|os)\.system"):
        load_checkpoint(tmp_path / "evil.pkl")
    assert not marker.exists()


def test_malicious_torch_zip_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    import tests.stylegan_fixture_writers as w

    torch.save({"g_ema": w._RunsCommand(f"touch {marker}")}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_stylegan3_pickle_is_refused(tmp_path):
    class SynthesisInput(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(4, 2))

    class SynthesisNetwork(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.input = SynthesisInput()
            self.L0_36_512 = torch.nn.Linear(2, 2)

    class Generator3(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.synthesis = SynthesisNetwork()
            self.init_kwargs = dict(z_dim=4, c_dim=0, w_dim=4, img_resolution=16, img_channels=3, mapping_layers=2)
            self.img_resolution = 16

    write_official_pickle(tmp_path / "sg3.pkl", G_ema=Generator3(), flavour="sg3")
    with pytest.raises(CheckpointError, match="StyleGAN3"):
        load_checkpoint(tmp_path / "sg3.pkl")


def test_stylegan1_tf_pickle_is_refused(tmp_path, nets):
    G, D, G_ema = nets
    write_tf_pickle(tmp_path / "old.pkl", G=G, D=D, G_ema=G_ema, version=3)
    with pytest.raises(CheckpointError, match="StyleGAN1"):
        load_checkpoint(tmp_path / "old.pkl")
    sg1_vars = {"4x4/Const/const": np.zeros((1, 32, 4, 4), np.float32),
                "4x4/Const/StyleMod/weight": np.zeros((16, 64), np.float32), "ToRGB_lod2/weight": np.zeros((1, 1, 32, 3), np.float32)}
    write_tf_pickle(tmp_path / "sg1.pkl", G=G, D=D, G_ema=G_ema, raw_vars=sg1_vars)
    with pytest.raises(CheckpointError, match="StyleGAN1"):
        load_checkpoint(tmp_path / "sg1.pkl")


@pytest.mark.parametrize("kind", ["pkl", "pt", "safetensors"])
def test_truncated_files_are_refused(tmp_path, nets, kind):
    G, D, G_ema = nets
    path = tmp_path / f"net.{kind}"
    if kind == "pkl":
        write_official_pickle(path, G=G, D=D, G_ema=G_ema)
    elif kind == "pt":
        write_rosinality_pt(path, G_ema=G_ema)
    else:
        save_checkpoint(path, G_ema=G_ema)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


@pytest.mark.parametrize("content,match", [
    (b"", "empty"),
    (b"GIF89a garbage that is no checkpoint at all", "not a checkpoint"),
    (bytes(range(256)) * 4, "not a checkpoint"),
    (pickle.dumps({"hello": 1}), "unrecognised"),
    (pickle.dumps(list(range(5))), "unrecognised"),
    (struct.pack("<Q", 20) + b'{"a": 1}            ', "not an Atelier native"),
])
def test_garbage_is_refused(tmp_path, content, match):
    (tmp_path / "x.bin").write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(tmp_path / "x.bin")


def test_missing_file_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "nope.pkl")


def test_shape_mismatch_is_refused_not_ignored(tmp_path, nets):
    G, D, G_ema = nets
    bad = copy.deepcopy(G_ema)
    bad.synthesis.b8.conv1.noise_const = torch.zeros(4, 4)  # wrong size for an 8x8 layer
    write_official_pickle(tmp_path / "bad.pkl", G_ema=bad)
    with pytest.raises(CheckpointError, match="noise_const"):
        load_checkpoint(tmp_path / "bad.pkl")
