"""StyleGAN2 in plain PyTorch: networks, checkpoint formats, training. Knows nothing of the UI."""
from __future__ import annotations

import importlib

# Checkpoint layer (loaded on first use so that `import core.stylegan` stays cheap).
_LAZY = {
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "read_native_metadata": "checkpoint",
    "copy_native_keeping": "native",
    "Checkpoint": "checkpoint",
    "CheckpointError": "safe_pickle",
    "Generator": "networks",
    "Discriminator": "networks",
    "TrainConfig": "train_config",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
