"""Playground: seeds, vectors, truncation, style mixing, directions, grids, walks, projection, upscaling.

The state of a view is one frozen, hashable :class:`RenderArgs`; ``render(args)`` is memoised on
it and never raises: it returns ``{"image", "error", "seed", "w"}`` with the error as one line of
text (the S3 visualizer's renderer). Models are cached by (path, file stamp, device) in a small
LRU. Vectors from users (pasted text or ``.npy``) are data: ``np.load(allow_pickle=False)``,
size-capped, finite, and of exactly the shapes the model takes.

Modules: ``common`` (errors, the model cache, shared checks), ``vectors`` (user vectors),
``directions`` (SeFa, GANSpace, layer groups), ``preview`` (``RenderArgs``, ``render``), ``grids``
(seed grids, interpolation frames and videos), ``walks`` (keyframe walks, noise loops), ``losses`` / ``vgg``
(projection losses), ``projection`` (photo -> latent), ``tasks`` (the background runner),
``photo`` (reading and cropping photos, projection tasks), ``library`` (each user's vectors and
named directions), ``refs`` (model keys and fingerprints), ``upscale`` / ``srnets`` / ``weights``
(resampling and user-supplied super-resolution networks), ``view`` (one call per page action).
"""
from .common import MODEL_CACHE_SIZE, RENDER_CACHE_SIZE, PlaygroundError, VectorError, clear_caches, load_model
from .directions import apply_direction, found_directions, ganspace_directions, layer_groups, sefa_directions
from .grids import MAX_FRAMES, MAX_GRID_SEEDS, interpolation_frames, interpolation_video, seed_grid, slerp
from .library import NotFound
from .photo import PROJECTIONS, prepare_target, projection_result, projection_view, start_projection
from .preview import Edit, NoiseMaps, RenderArgs, render
from .projection import ProjectionOptions, ProjectionResult, project
from .refs import cli_model, model_choices, model_fingerprint, model_key, resolve_model
from .upscale import upscale
from .vectors import (MAX_ABS_VALUE, MAX_NPY_BYTES, MAX_TEXT_CHARS, MAX_VECTOR_ELEMENTS, Vector, load_vector,
                      random_vector)
from .view import View, keep_view, render_view

__all__ = ["PlaygroundError", "VectorError", "Vector", "RenderArgs", "Edit", "NoiseMaps", "render", "seed_grid",
           "interpolation_frames", "interpolation_video", "sefa_directions", "ganspace_directions", "found_directions", "layer_groups",
           "apply_direction", "random_vector", "load_vector", "slerp", "load_model", "clear_caches",
           "ProjectionOptions", "ProjectionResult", "project", "prepare_target", "start_projection",
           "projection_view", "projection_result", "PROJECTIONS", "upscale", "View", "render_view", "keep_view",
           "model_choices", "model_key", "resolve_model", "cli_model", "model_fingerprint", "NotFound"]
