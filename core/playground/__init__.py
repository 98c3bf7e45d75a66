"""Playground: seeds, vectors, truncation, style mixing, directions, seed grids and interpolation.

The state of a view is one frozen, hashable :class:`RenderArgs`; ``render(args)`` is memoised on
it and never raises: it returns ``{"image", "error", "seed", "w"}`` with the error as one line of
text (the S3 visualizer's renderer). Models are cached by (path, file stamp, device) in a small
LRU. Vectors from users (pasted text or ``.npy``) are data: ``np.load(allow_pickle=False)``,
size-capped, finite, and of exactly the shapes the model takes.

Modules: ``common`` (errors, the model cache, shared checks), ``vectors`` (user vectors),
``directions`` (SeFa, GANSpace), ``preview`` (``RenderArgs``, ``render``), ``grids`` (seed grids,
interpolation walks).
"""
from .common import MODEL_CACHE_SIZE, RENDER_CACHE_SIZE, PlaygroundError, VectorError, clear_caches, load_model
from .directions import apply_direction, ganspace_directions, sefa_directions
from .grids import MAX_FRAMES, MAX_GRID_SEEDS, interpolation_frames, seed_grid, slerp
from .preview import RenderArgs, render
from .vectors import (MAX_ABS_VALUE, MAX_NPY_BYTES, MAX_TEXT_CHARS, MAX_VECTOR_ELEMENTS, Vector, load_vector,
                      random_vector)

__all__ = ["PlaygroundError", "VectorError", "Vector", "RenderArgs", "render", "seed_grid",
           "interpolation_frames", "sefa_directions", "ganspace_directions", "apply_direction",
           "random_vector", "load_vector", "slerp", "load_model", "clear_caches"]
