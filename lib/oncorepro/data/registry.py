"""The dataset catalogue (what each dataset is, where it comes from, how it lies on disk) and the shape
every loader returns: a LoadedDataset of Records plus the files it set aside, each with its reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import DataError
from ..records import Record, header_size

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif"})
DATA_ROOT_ORDER = ("the data_root argument, then $ONCOREPRO_DATA, then ../shared/data beside the repo, "
                   "then the repo's data/ folder")


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, where it comes from and how it is laid out inside its folder of the data root."""

    name: str
    folder: str
    title: str
    citation: str
    licence: str
    source: str
    obtain: str
    classes: dict[str, str]
    layout: str
    checksum_files: tuple[str, ...]
    modality: str


@dataclass(frozen=True)
class Exclusion:
    """A file found in a dataset folder that is not used, and why."""

    path: Path
    reason: str


@dataclass
class LoadedDataset:
    """The records of one dataset and every file that was set aside while reading it."""

    name: str
    root: Path
    records: list[Record]
    exclusions: list[Exclusion] = field(default_factory=list)

    def by_label(self) -> dict[str, int]:
        """Number of records per label, labels sorted."""
        return dict(sorted(Counter(record.label for record in self.records).items()))

    def validate(self) -> None:
        """Check from the file headers only (cheap) that every image can be opened and every mask has
        the size of its image; ids must be unique. Raises DataError naming the first offending file."""
        seen: set[str] = set()
        for record in self.records:
            if record.id in seen:
                raise DataError(record.path, f"record id {record.id!r} occurs twice in {self.name}")
            seen.add(record.id)
            size = header_size(record.path)
            for mask_path in record.mask_paths:
                mask_size = header_size(mask_path)
                if mask_size != size:
                    raise DataError(mask_path, f"mask is {mask_size[0]}x{mask_size[1]} but its image "
                                               f"{record.path.name} is {size[0]}x{size[1]}")


def sub_folders(folder: Path, expected: Sequence[str], info: DatasetInfo, exclusions: list[Exclusion],
                kind: str = "class") -> list[Path]:
    """``folder``'s expected sub-folders, in the given order: DataError for a missing or an unexpected one;
    plain files there are appended to ``exclusions``."""
    unexpected = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in expected)
    for name in expected:
        if not (folder / name).is_dir():
            extra = f"; unexpected folders there: {', '.join(unexpected)}" if unexpected else ""
            raise DataError(folder / name, f"{kind} folder missing{extra}", fix=info.obtain)
    if unexpected:
        raise DataError(folder / unexpected[0], f"unexpected folder; {folder.name}/ holds only the {kind} folders "
                                                f"{', '.join(expected)}")
    exclusions += [Exclusion(p, f"not a {kind} folder") for p in sorted(folder.iterdir()) if not p.is_dir()]
    return [folder / name for name in expected]


def image_files(folder: Path, exclusions: list[Exclusion]) -> list[Path]:
    """The image-like files of ``folder``, sorted by name. Other files (.DS_Store, Thumbs.db, notes) are
    appended to ``exclusions``; a sub-folder means an unexpected layout and raises DataError."""
    images = []
    for path in sorted(folder.iterdir()):
        if path.is_dir():
            raise DataError(path, f"unexpected folder inside {folder.name}/ (expected image files only)")
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("._"):
            images.append(path)
        else:
            exclusions.append(Exclusion(path, "not an image file"))
    return images


def require_folder(path: Path, info: DatasetInfo) -> Path:
    """``path`` if it is a folder, else DataError saying how to obtain the dataset and where to put it."""
    if not path.is_dir():
        found = sorted(p.name for p in path.parent.iterdir()) if path.parent.is_dir() else []
        more = f" and {len(found) - 10} more" if len(found) > 10 else ""
        seen = f"; {path.parent} holds: {', '.join(found[:10])}{more}" if found else ""
        raise DataError(path, f"folder not found (expected layout: {info.layout}){seen}",
                        fix=f"{info.obtain} Data root order: {DATA_ROOT_ORDER}")
    return path


_BUSI = DatasetInfo(
    name="busi",
    folder="busi",
    title="BUSI: Dataset of breast ultrasound images",
    citation=("Al-Dhabyani W, Gomaa M, Khaled H, Fahmy A. Dataset of breast ultrasound images. "
              "Data in Brief 28 (2020) 104863. doi:10.1016/j.dib.2019.104863"),
    licence=("Article CC BY 4.0 (Data in Brief); the Kaggle mirror is commonly reported as CC0 (not "
             "confirmed offline). Cite the article."),
    source=("Authors' page https://scholar.cu.edu.eg/?q=afahmy/pages/dataset; copy used here from "
            "github.com/yirutsai/Breast-ultrasound-dataset @6c0fac8, byte-checked, greyscale images "
            "re-encoded losslessly (pixel-identical in RGB)."),
    obtain=("Download Dataset_BUSI_with_GT from https://scholar.cu.edu.eg/?q=afahmy/pages/dataset or the "
            "Kaggle mirror 'Breast Ultrasound Images Dataset' (aryashah2k) and unzip it into <data root>/busi/ "
            "so that busi/Dataset_BUSI_with_GT/{benign,malignant,normal}/ exist; check it with "
            "`oncorepro data verify busi` (ORIGINAL_SHA256SUMS for the original download)."),
    classes={"benign": "benign", "malignant": "malignant", "normal": "normal"},
    layout=("Dataset_BUSI_with_GT/{benign,malignant,normal}/'<class> (N).png' with mask "
            "'<class> (N)_mask.png' and optional extra masks '<class> (N)_mask_K.png'; images RGB or "
            "greyscale PNG"),
    checksum_files=("SHA256SUMS", "ORIGINAL_SHA256SUMS", "PIXEL_SHA256SUMS"),
    modality="breast ultrasound (2D B-mode)",
)

_BREAST_MRI = DatasetInfo(
    name="breast_mri",
    folder="breast_mri",
    title="Breast Cancer Patients MRI's (Kaggle, Uzair Khan)",
    citation=("Khan U. Breast Cancer Patients MRI's. Kaggle dataset, "
              "https://www.kaggle.com/datasets/uzairkhan45/breast-cancer-patients-mris"),
    licence="CC0 1.0 per the Kaggle listing (not checked offline; one third-party README says N/A).",
    source=("Kaggle (uzairkhan45/breast-cancer-patients-mris); copy used here from "
            "github.com/mohamedsafi7/medi_scan_irm @e4fbb8d data/, packed losslessly as "
            "breast-cancer-patients-mris.tar.xz."),
    obtain=("Download https://www.kaggle.com/datasets/uzairkhan45/breast-cancer-patients-mris and put its "
            "\"Breast Cancer Patients MRI's\" folder (and \"mri's\" if present) into <data root>/breast_mri/, "
            "or put breast-cancer-patients-mris.tar.xz there (unpacked into the cache on first use)."),
    classes={"Healthy": "healthy", "Sick": "sick"},
    layout=("breast-cancer-patients-mris.tar.xz (or its extracted content) holding \"Breast Cancer Patients "
            "MRI's/{train,validation}/{Healthy,Sick}/[HS]_N.jpg\" (files are BMP, 8-bit greyscale 540x250, "
            "despite .jpg) and \"mri's/{healthy,sick}/P<n>/\" per-patient copies of the train images; those "
            "patient folders are unreliable (20 duplicate groups span two patients) and no validation image "
            "has one; validation/Healthy files are all named S_N"),
    checksum_files=("SHA256SUMS", "CONTENTS.sha256"),
    modality="breast MRI (2D slices)",
)

_ISIC = DatasetInfo(
    name="isic_binary",
    folder="isic_binary",
    title="Skin Cancer: Malignant vs. Benign (ISIC Archive subset, Kaggle, Claudio Fanconi)",
    citation=("ISIC Archive, https://www.isic-archive.com; subset 'Skin Cancer: Malignant vs. Benign' by "
              "C. Fanconi, https://www.kaggle.com/datasets/fanconic/skin-cancer-malignant-vs-benign"),
    licence=("ISIC Archive images are Creative Commons licensed per image (mostly CC BY-NC or CC0); the "
             "Kaggle listing's licence was not checked offline. Cite the ISIC Archive."),
    source=("Kaggle (fanconic/skin-cancer-malignant-vs-benign); identical files under data/ in "
            "github.com/elena-cabrera/skin-cancer-detection @734017f27f9111b91cb58561596e7af80b9cf8ae."),
    obtain=("Download https://www.kaggle.com/datasets/fanconic/skin-cancer-malignant-vs-benign into "
            "<data root>/isic_binary/ (train/ and test/, or data/train and data/test), or copy the images "
            "out of github.com/elena-cabrera/skin-cancer-detection @734017f with "
            "`git -C <snapshot> archive HEAD data | tar -x -C <data root>/isic_binary`; then run "
            "`oncorepro data verify isic_binary`."),
    classes={"benign": "benign", "malignant": "malignant"},
    layout=("{train,test}/{benign,malignant}/N.jpg, either directly in the dataset folder or under data/ "
            "(224x224 RGB JPEG, no masks)"),
    checksum_files=("SHA256SUMS",),
    modality="dermoscopy",
)

_BREAST_LESIONS_USG = DatasetInfo(
    name="breast_lesions_usg",
    folder="breast_lesions_usg",
    title="BrEaST-Lesions-USG: curated benchmark breast ultrasound dataset",
    citation=("Pawłowska A, Ćwierz-Pieńkowska A, Domalik A, Jaguś D, Kasprzak P, Matkowski R, Fura Ł, "
              "Nowicki A, Żołek N. Curated benchmark dataset for ultrasound based breast lesion analysis. "
              "Scientific Data 11 (2024), doi:10.1038/s41597-024-02984-z; data: The Cancer Imaging Archive, "
              "doi:10.7937/9WKK-Q141 (version 2023-12-15); TCIA: Clark K et al., J Digit Imaging 26(6) "
              "(2013) 1045-1057, doi:10.1007/s10278-013-9622-7"),
    licence="CC BY 4.0 (stated in the Scientific Data article); TCIA: data citation required.",
    source=("TCIA collection Breast-Lesions-USG (doi:10.7937/9WKK-Q141); copies used here: images and masks "
            "from github.com/MASTER-WM/medfair1 @a02f9aa, spreadsheet from github.com/nbayt/CSC-752-Project "
            "@74034d1."),
    obtain=("Download the images-and-masks zip and the clinical-data spreadsheet of the collection "
            "Breast-Lesions-USG from The Cancer Imaging Archive (https://doi.org/10.7937/9WKK-Q141) into "
            "<data root>/breast_lesions_usg/; check it with `oncorepro data verify breast_lesions_usg`."),
    classes={"benign": "benign", "malignant": "malignant", "normal": "normal"},
    layout=("BrEaST-Lesions-USG-clinical-data-Dec-15-2023.xlsx (one row per case; columns Image_filename, "
            "Mask_tumor_filename, Mask_other_filename ('&'-separated), Classification) and "
            "BrEaST-Lesions_USG-images_and_masks/caseNNN.png, caseNNN_tumor.png, caseNNN_otherK.png "
            "(RGBA PNG); one scan per case"),
    checksum_files=("SHA256SUMS",),
    modality="breast ultrasound (2D B-mode)",
)

_MIBUS = DatasetInfo(
    name="mibus",
    folder="mibus",
    title="MIBUS: breast lesion ultrasound video dataset (188 videos) as used by Wei, Zhang & Xie (2024)",
    citation=("Lin Z, Lin J, Zhu L, Fu H, Qin J, Wang L. A new dataset and a baseline model for breast lesion "
              "detection in ultrasound videos. MICCAI 2022, pp. 614-623; named MIBUS and used in Wei J, "
              "Zhang H, Xie J. A novel deep learning model for breast tumor ultrasound image classification "
              "with lesion region perception. Curr. Oncol. 31 (2024) 5057-5079, "
              "doi:10.3390/curroncol31090374 (188 videos: 113 malignant, 75 benign, 25,272 frames, one "
              "lesion box per frame)"),
    licence="Not stated by Wei et al. nor by Lin et al.; unknown.",
    source=("Google Drive link given by Wei et al. (ref. 34): "
            "https://drive.google.com/file/d/1LVXK34OJhC2LkqqyMmVFnXsXQavvZdeF/view; Lin et al.'s "
            "repository github.com/jhl-Det/CVA-Net links a Baidu download. No copy is available here."),
    obtain=("Download the MIBUS videos via the link in Wei et al. 2024 (ref. 34, Google Drive "
            "1LVXK34OJhC2LkqqyMmVFnXsXQavvZdeF) or from github.com/jhl-Det/CVA-Net, and arrange them as "
            "<data root>/mibus/rawframes/{benign,malignant}/<video>/<frame>.png with the COCO box files as "
            "mibus/annotations/train.json and test.json."),
    classes={"benign": "benign", "malignant": "malignant"},
    layout=("rawframes/{benign,malignant}/<video id>/<frame>.png and annotations/{train,test}.json in COCO "
            "form (images[].file_name relative to rawframes/ e.g. 'benign/v001/000000.png', id, width, "
            "height; annotations[].image_id, bbox [x, y, w, h]; categories[]). This is an assumed layout: "
            "the authors' release has rawframes/ beside train.json and val.json, which go into "
            "annotations/ as train.json and test.json"),
    checksum_files=(),
    modality="breast ultrasound video frames",
)

DATASETS: dict[str, DatasetInfo] = {info.name: info for info in
                                    (_BUSI, _BREAST_MRI, _ISIC, _BREAST_LESIONS_USG, _MIBUS)}


def dataset_info(name: str) -> DatasetInfo:
    """The catalogue entry of ``name``; KeyError listing the known names for an unknown one."""
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None
