"""Data: named MedMNIST/CT sets, image folders, and the PreprocessSpec shared by every stage."""

from edgemed.data.catalog import CATALOG, DatasetInfo
from edgemed.data.datasets import Dataset, load_dataset, search_dirs
from edgemed.data.images import read_image
from edgemed.data.preprocess import PreprocessSpec

__all__ = ["CATALOG", "Dataset", "DatasetInfo", "PreprocessSpec", "load_dataset", "read_image",
           "search_dirs"]
