"""The data sets edgemed knows by name: every 2-D MedMNIST set (official URL and md5, MedMNIST v3
info) and the SARS-CoV-2 CT set, which has no official .npz and must be provided locally."""

from __future__ import annotations

from dataclasses import dataclass, field

_ZENODO = "https://zenodo.org/records/10519652/files/{name}.npz?download=1"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    task: str  # binary | multiclass | multilabel | ordinal
    class_names: tuple[str, ...]
    channels: int
    image_size: int
    n_samples: dict[str, int] = field(default_factory=dict)
    md5: str | None = None
    url: str | None = None
    license: str = ""
    note: str = ""
    split_method: str = "the official MedMNIST v2 train / val / test split"
    citation: str = "Yang, J. et al. MedMNIST v2. Scientific Data 10, 41 (2023)"

    @property
    def filename(self) -> str:
        return f"{self.name}.npz"

    @property
    def trainable(self) -> bool:
        # edgemed trains single-label classifiers; ordinal grades are trained as classes.
        return self.task in ("binary", "multiclass", "ordinal")


def _medmnist(name, task, labels, channels, n, md5, license="CC BY 4.0"):
    return DatasetInfo(
        name=name,
        task=task,
        class_names=tuple(labels),
        channels=channels,
        image_size=28,
        n_samples=dict(zip(("train", "val", "test"), n)),
        md5=md5,
        url=_ZENODO.format(name=name),
        license=license,
    )


_ORGANS = ("bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right",
           "liver", "lung-left", "lung-right", "pancreas", "spleen")

CATALOG: dict[str, DatasetInfo] = {
    d.name: d
    for d in [
        _medmnist("pathmnist", "multiclass",
                  ["adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle",
                   "normal colon mucosa", "cancer-associated stroma",
                   "colorectal adenocarcinoma epithelium"],
                  3, (89996, 10004, 7180), "a8b06965200029087d5bd730944a56c1"),
        _medmnist("chestmnist", "multilabel",
                  ["atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule",
                   "pneumonia", "pneumothorax", "consolidation", "edema", "emphysema",
                   "fibrosis", "pleural", "hernia"],
                  1, (78468, 11219, 22433), "02c8a6516a18b556561a56cbdd36c4a8"),
        _medmnist("dermamnist", "multiclass",
                  ["actinic keratoses and intraepithelial carcinoma", "basal cell carcinoma",
                   "benign keratosis-like lesions", "dermatofibroma", "melanoma",
                   "melanocytic nevi", "vascular lesions"],
                  3, (7007, 1003, 2005), "0744692d530f8e62ec473284d019b0c7", "CC BY-NC 4.0"),
        _medmnist("octmnist", "multiclass",
                  ["choroidal neovascularization", "diabetic macular edema", "drusen", "normal"],
                  1, (97477, 10832, 1000), "c68d92d5b585d8d81f7112f81e2d0842"),
        _medmnist("pneumoniamnist", "binary", ["normal", "pneumonia"],
                  1, (4708, 524, 624), "28209eda62fecd6e6a2d98b1501bb15f"),
        _medmnist("retinamnist", "ordinal", ["0", "1", "2", "3", "4"],
                  3, (1080, 120, 400), "bd4c0672f1bba3e3a89f0e4e876791e4"),
        _medmnist("breastmnist", "binary", ["malignant", "normal, benign"],
                  1, (546, 78, 156), "750601b1f35ba3300ea97c75c52ff8f6"),
        _medmnist("bloodmnist", "multiclass",
                  ["basophil", "eosinophil", "erythroblast", "immature granulocytes",
                   "lymphocyte", "monocyte", "neutrophil", "platelet"],
                  3, (11959, 1712, 3421), "7053d0359d879ad8a5505303e11de1dc"),
        _medmnist("tissuemnist", "multiclass",
                  ["Collecting Duct, Connecting Tubule", "Distal Convoluted Tubule",
                   "Glomerular endothelial cells", "Interstitial endothelial cells",
                   "Leukocytes", "Podocytes", "Proximal Tubule Segments",
                   "Thick Ascending Limb"],
                  1, (165466, 23640, 47280), "ebe78ee8b05294063de985d821c1c34b"),
        _medmnist("organamnist", "multiclass", _ORGANS,
                  1, (34561, 6491, 17778), "68e3f8846a6bd62f0c9bf841c0d9eacc"),
        _medmnist("organcmnist", "multiclass", _ORGANS,
                  1, (12975, 2392, 8216), "b9ceb9546e10131b32923c5bbeaea2b1"),
        _medmnist("organsmnist", "multiclass", _ORGANS,
                  1, (13932, 2452, 8827), "9ab87b696fb54e2a387ebe992d6ed5f1"),
        DatasetInfo(
            name="sarscov2_ct_224",
            task="binary",
            class_names=("non-COVID", "COVID"),
            channels=1,
            image_size=224,
            n_samples={"train": 1735, "val": 248, "test": 496},
            license="CC BY-NC-SA 4.0",
            split_method="by image, not by patient (70 / 10 / 20 per class, seed 0): slices of one patient can "
                         "sit in both train and test, which flatters test accuracy",
            citation="Soares, E. et al. SARS-CoV-2 CT-scan dataset. medRxiv (2020), doi:10.1101/2020.04.24.20078584",
            note="SARS-CoV-2 CT-scan (Soares et al., 2020), split by image, not patient: "
            "slices of one patient can sit in train and test. No official .npz: place the "
            "file in the data directory.",
        ),
    ]
}
