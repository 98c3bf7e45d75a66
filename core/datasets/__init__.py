"""Datasets: ingest a folder, zip or video; validate; crop to square; pack for training.

    report = import_dataset(["photos/", "more.zip"], "My paintings", resolution=256)
    ds = open_packed("My paintings", 256)          # PackedDataset, memory-mapped
    batch = sample_batch(ds, [0, 5, 9], np.random.default_rng(0))   # uint8 [3, 3, 256, 256]

Modules: ``common`` (limits, names, report), ``sources`` (folders, zips, videos), ``images``
(decode, validate, normalise, crop), ``packed`` (the packed store), ``store`` (folders and the
name index), ``workers`` (the process pool), ``memory`` (decoding budget, imports at once),
``ingest`` (import), ``catalog`` (list, show, delete, pack, open), ``preview`` (crop previews,
mosaic), ``uploads`` (uploaded files staged as sources).
"""
from .common import (CROP_MODES, MAX_IMAGES, MAX_PIXELS, MAX_TOTAL_BYTES, MIN_SIZE, RESOLUTIONS,
                     DatasetError, DatasetExists, DatasetNotFound, ImportReport, inflated_count,
                     validate_crop, validate_name)
from .catalog import dataset_images, delete_dataset, get_dataset, get_report, list_datasets, open_packed, pack_dataset
from .ingest import import_dataset, import_folder_of_images_for_training
from .packed import PackedDataset, sample_batch
from .preview import crop_previews
from .uploads import stage_uploads
from .workers import DecodingStopped

__all__ = [
    "CROP_MODES", "MAX_IMAGES", "MAX_PIXELS", "MAX_TOTAL_BYTES", "MIN_SIZE", "RESOLUTIONS",
    "DatasetError", "DatasetExists", "DatasetNotFound", "DecodingStopped", "ImportReport", "PackedDataset",
    "crop_previews", "dataset_images", "delete_dataset", "get_dataset", "get_report", "import_dataset",
    "import_folder_of_images_for_training", "inflated_count", "list_datasets", "open_packed",
    "pack_dataset", "sample_batch", "stage_uploads", "validate_crop", "validate_name",
]
