"""An allow-list unpickler for checkpoint files: data comes out, code never runs.

Official StyleGAN2 pickles hold networks as ``torch_utils.persistence`` objects (their
reconstruct hook would exec the embedded source code) and TF-era pickles hold
``dnnlib.tflib.network.Network`` objects. Here every global a pickle names is looked up in
``_ALLOWED``: the persistence hook, ``EasyDict`` and ``Network`` become inert stand-ins that only
record their state; tensors are rebuilt from storages that ``torch.load(weights_only=True)``
decodes; numpy arrays and scalars through numpy's own rebuild functions. Any other global
(``os.system``, ``builtins.eval``, ...) raises ``CheckpointError`` before anything is called.
"""
from __future__ import annotations

import collections
import io
import pickle
from typing import Any

import numpy as np
import torch


class CheckpointError(ValueError):
    """A checkpoint file that cannot (or must not) be loaded; the message says why."""


class PersistentStub:
    """What a ``torch_utils.persistence`` object turns into: its class name and ``__dict__``."""

    def __init__(self, class_name: str, state: dict):
        self.class_name = class_name
        self.state = state

    def __repr__(self) -> str:
        return f"PersistentStub({self.class_name})"


class EasyDictStub(dict):
    """Stand-in for ``dnnlib.EasyDict``: a plain dict (pickle fills it with SETITEMS)."""


class TFNetworkStub:
    """Stand-in for a TF-era ``dnnlib.tflib.network.Network``: keeps the pickled state dict."""

    def __init__(self, *args, **kwargs):
        self.state: dict = {}

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise CheckpointError("refused: a TF network pickle with an unexpected state")
        self.state = state


_STUB_CLASSES = (EasyDictStub, TFNetworkStub)


def _reconstruct_persistent_obj(meta):
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise CheckpointError("refused: a persistent object of an unknown kind")
    state = meta.get("state")
    if not isinstance(state, dict):
        raise CheckpointError("refused: a persistent object without a state dict")
    return PersistentStub(str(meta.get("class_name")), dict(state))


def _load_storage_from_bytes(data):
    """Storages in plain-pickled tensors are legacy ``torch.save`` blobs: decode them safely."""
    if not isinstance(data, (bytes, bytearray)):
        raise CheckpointError("refused: a storage that is not bytes")
    try:
        storage = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any decoding failure means a bad file
        raise CheckpointError(f"a tensor storage could not be read: {e}") from None
    if not isinstance(storage, (torch.storage.TypedStorage, torch.UntypedStorage)):
        raise CheckpointError("refused: a storage blob that holds something else")
    return storage


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    # Hooks and metadata are dropped on purpose: a hook is code.
    if not isinstance(storage, torch.storage.TypedStorage):  # an untyped storage has no dtype to rebuild with
        raise CheckpointError("refused: a tensor rebuilt from something other than a typed storage")
    return torch._utils._rebuild_tensor(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    if not isinstance(data, torch.Tensor):
        raise CheckpointError("refused: a parameter rebuilt from something other than a tensor")
    return data  # a plain tensor is all a state dict needs


def _rebuild_from_type_v2(func, new_type, args, state):
    if func not in (_rebuild_tensor, _rebuild_parameter) or new_type not in (torch.Tensor, torch.nn.Parameter):
        raise CheckpointError("refused: a tensor subclass rebuild")
    return func(*args)


def _reconstructor(cls, base, state=None):
    # Protocol 0/1 pickles build objects through copyreg._reconstructor: only our stand-ins.
    if cls not in _STUB_CLASSES or base not in (object, dict):
        raise CheckpointError(f"refused: the pickle asks to construct {getattr(cls, '__name__', cls)!r}")
    return cls() if base is object else cls(state or {})


def _codecs_encode(text, encoding="utf-8"):
    # Protocol 2 pickles written by Python 3 store bytes as _codecs.encode(str, 'latin1').
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise CheckpointError("refused: an unexpected _codecs.encode call")
    return text.encode("latin1")


def _np(module: str, name: str):
    try:
        return getattr(np._core.multiarray, name) if module.endswith("multiarray") else getattr(np, name)
    except AttributeError:  # numpy < 2
        return getattr(np.core.multiarray, name)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): EasyDictStub,
    ("dnnlib", "EasyDict"): EasyDictStub,
    ("dnnlib.tflib.network", "Network"): TFNetworkStub,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch", "Tensor"): torch.Tensor,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("builtins", "object"): object,
    ("builtins", "dict"): dict,
    ("_codecs", "encode"): _codecs_encode,
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    for _name in ("scalar", "_reconstruct"):
        _ALLOWED[(_mod, _name)] = _np(_mod, _name)
_ALLOWED[("numpy", "dtype")] = np.dtype
_ALLOWED[("numpy", "ndarray")] = np.ndarray


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals in ``_ALLOWED`` (plus torch dtypes)."""

    def find_class(self, module: str, name: str):
        found = _ALLOWED.get((module, name))
        if found is not None:
            return found
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise CheckpointError(f"refused: the pickle asks for {module}.{name}")

    def persistent_load(self, pid):
        raise CheckpointError("refused: the pickle uses persistent ids outside a torch archive")


def safe_load(data: bytes):
    """Unpickle ``data`` with the allow-list; any failure becomes a ``CheckpointError``."""
    try:
        return SafeUnpickler(io.BytesIO(data)).load()
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError("the pickle is nested too deeply") from None
    except Exception as e:  # noqa: BLE001 - truncated or corrupt streams raise many kinds
        raise CheckpointError(f"the pickle is damaged or truncated ({type(e).__name__}: {e})") from None
