"""Fixtures that build tiny data-set trees in each real distribution format.

Every tree copies the real layout: file and variable names, headers, CRLF line endings for
TID2013, mixed-case names, .mat files written with scipy.io.savemat, .xlsx with pandas. Images
are a few 8x8 pixels; label values are chosen so that direction and drops can be asserted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.io import savemat

LIVE_FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))
LIVE_REFS = ["bikes", "building2", "buildings", "caps", "carnivaldolls", "cemetry",
             "churchandcapitol", "coinsinfountain", "dancers", "flowersonih35", "house",
             "lighthouse", "lighthouse2", "manfishing", "monarch", "ocean", "paintedhouse",
             "parrots", "plane", "rapids", "sailing1", "sailing2", "sailing3", "sailing4",
             "statue", "stream", "studentsculpture", "woman", "womanhat"]


def tiny_image(path: Path, seed: int = 0, size=(8, 8), fmt: str | None = None) -> Path:
    """Write a small random RGB image (format from the suffix unless ``fmt``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt)
    return path


def _cell(strings) -> np.ndarray:
    # a MATLAB cell array of strings, as savemat writes it
    cell = np.empty((len(strings), 1), dtype=object)
    for i, s in enumerate(strings):
        cell[i, 0] = np.array([s])
    return cell


def cell_row(strings) -> np.ndarray:
    """A 1xN MATLAB cell of strings."""
    return _cell(strings).reshape(1, -1)


@pytest.fixture
def live_root(tmp_path) -> Path:
    """LIVE Release 2: 982-long dmos.mat/refnames_all.mat; 203 rows flagged by orgs."""
    root = tmp_path / "live"
    root.mkdir()
    n = sum(c for _, c in LIVE_FOLDERS)
    orgs = np.zeros(n)
    orgs[np.arange(0, n, 4)[:203]] = 1  # the real release flags 203 reference copies
    dmos = np.linspace(0.0, 100.0, n)
    dmos[orgs == 1] = 0.0
    savemat(root / "dmos.mat", {"dmos": dmos.reshape(1, -1), "orgs": orgs.reshape(1, -1)})
    refs = [f"{LIVE_REFS[i % 29]}.bmp" for i in range(n)]
    savemat(root / "refnames_all.mat", {"refnames_all": cell_row(refs)})
    for d, _ in LIVE_FOLDERS:
        tiny_image(root / d / "img2.bmp", 1)
    tiny_image(root / "jp2k" / "img1.bmp", 2)  # index 0: a reference copy (orgs = 1)
    tiny_image(root / "refimgs" / "parrots.bmp", 3)
    return root


@pytest.fixture
def csiq_root(tmp_path) -> Path:
    """CSIQ: csiq.DMOS.xlsx whose header sits below a title row and right of a blank column."""
    root = tmp_path / "csiq"
    rows = []
    for ref in (1600, "aerial_city", "boston"):
        for typ, folder, token in (("noise", "awgn", "AWGN"), ("jpeg 2000", "jpeg2000",
                                                                "jpeg2000"),
                                   ("blur", "blur", "BLUR")):
            for lev in (1, 2):
                rows.append({"image": ref, "dst_idx": 1, "dst_type": typ, "dst_lev": lev,
                             "dmos_std": 0.05, "dmos": 0.1 * lev + 0.3 * (typ == "blur")})
                tiny_image(root / "dst_imgs" / folder / f"{ref}.{token}.{lev}.png", lev)
        tiny_image(root / "src_imgs" / f"{ref}.png", 9)
    with pd.ExcelWriter(root / "csiq.DMOS.xlsx") as xw:
        pd.DataFrame([["CSIQ DMOS by image"]]).to_excel(xw, sheet_name="all_by_image",
                                                          header=False, index=False)
        pd.DataFrame(rows).to_excel(xw, sheet_name="all_by_image", startrow=2, startcol=1,
                                    index=False)
        pd.DataFrame(rows).to_excel(xw, sheet_name="all_by_distortion", index=False)
    return root


@pytest.fixture
def tid_root(tmp_path) -> Path:
    """TID2013: CRLF mos_with_names.txt whose names mix I/i; files on disk are lower case."""
    root = tmp_path / "tid2013"
    lines, stds = [], []
    for r in (1, 2, 25):
        for t in (1, 2):
            for lev in (1, 2, 3):
                name = f"{'I' if r != 2 else 'i'}{r:02d}_{t:02d}_{lev}.bmp"
                lines.append(f"{7.0 - lev:.5f} {name}")
                stds.append(f"{0.1 * lev:.5f}")
                tiny_image(root / "distorted_images" / name.lower(), lev)
        tiny_image(root / "reference_images" / f"I{r:02d}.BMP", r)
    (root / "mos_with_names.txt").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    (root / "mos_std.txt").write_bytes(("\r\n".join(stds) + "\r\n").encode())
    return root


def build_kadid(root: Path, refs: int = 10, types: int = 2, levels: int = 2) -> Path:
    """KADID-10k: dmos.csv and images/ holding distorted images and references together."""
    rows = []
    for r in range(1, refs + 1):
        tiny_image(root / "images" / f"I{r:02d}.png", r)
        for t in range(1, types + 1):
            for lev in range(1, levels + 1):
                name = f"I{r:02d}_{t:02d}_{lev:02d}.png"
                tiny_image(root / "images" / name, r * 100 + t * 10 + lev)
                rows.append({"dist_img": name, "ref_img": f"I{r:02d}.png",
                             "dmos": 5.0 - lev, "var": 0.25})
    pd.DataFrame(rows).to_csv(root / "dmos.csv", index=False)
    return root


@pytest.fixture
def kadid_root(tmp_path) -> Path:
    """A 40-image KADID-10k tree (10 references)."""
    return build_kadid(tmp_path / "kadid10k")


@pytest.fixture
def livec_root(tmp_path) -> Path:
    """LIVE Challenge: 7 training images t1-t7 then 5 images (.bmp and .JPG)."""
    root = tmp_path / "livec"
    names = [f"t{i}.bmp" for i in range(1, 8)] + ["10.bmp", "11.bmp", "12.JPG", "13.JPG",
                                                   "14.bmp"]
    mos = np.array([50.0] * 7 + [10.0, 30.0, 50.0, 70.0, 90.0])
    (root / "Data").mkdir(parents=True)
    savemat(root / "Data" / "AllImages_release.mat", {"AllImages_release": _cell(names)})
    savemat(root / "Data" / "AllMOS_release.mat", {"AllMOS_release": mos.reshape(1, -1)})
    savemat(root / "Data" / "AllStdDev_release.mat",
            {"AllStdDev_release": np.full((1, len(names)), 12.5)})
    for i, n in enumerate(names[7:]):
        tiny_image(root / "Images" / n, i, fmt="JPEG" if n.endswith(".JPG") else None)
    for n in names[:7]:
        tiny_image(root / "Images" / "trainingImages" / n, 0)
    return root


KONIQ_SETS = ["training"] * 14 + ["validation"] * 2 + ["test"] * 4


def build_koniq(root: Path, folder: str = "1024x768", sets: bool = True) -> Path:
    """KonIQ-10k: 20 images; the sets file (MOS 0-100, ``set``) or the scores file (MOS 1-5)."""
    names = [f"{1000 + i}.jpg" for i in range(len(KONIQ_SETS))]
    for i, n in enumerate(names):
        tiny_image(root / folder / n, i, size=(16, 12))
    counts = np.tile([[1, 2, 3, 2, 1]], (len(names), 1))
    df = pd.DataFrame({"image_name": names, "c1": counts[:, 0], "c2": counts[:, 1],
                       "c3": counts[:, 2], "c4": counts[:, 3], "c5": counts[:, 4],
                       "c_total": counts.sum(1)})
    mos = np.linspace(10.0, 85.0, len(names))
    if sets:
        df["MOS"], df["SD"], df["set"] = mos, 8.0, KONIQ_SETS
        df.to_csv(root / "koniq10k_distributions_sets.csv", index=False)
    else:
        df["MOS"], df["SD"], df["MOS_zscore"] = 1 + 4 * (mos / 100), 0.5, mos
        df.to_csv(root / "koniq10k_scores_and_distributions.csv", index=False)
    return root


@pytest.fixture
def write_image():
    """The tiny-image writer (``write_image(path, seed=0, size=(8, 8), fmt=None)``)."""
    return tiny_image


@pytest.fixture
def make_koniq():
    """The KonIQ-10k tree builder (``make_koniq(root, folder=..., sets=...)``)."""
    return build_koniq


@pytest.fixture
def make_kadid():
    """The KADID-10k tree builder (``make_kadid(root, refs=..., types=..., levels=...)``)."""
    return build_kadid


@pytest.fixture
def koniq_root(tmp_path) -> Path:
    """KonIQ-10k with the official sets file and the 512x384 folder only."""
    return build_koniq(tmp_path / "koniq10k", folder="512x384")


@pytest.fixture
def spaq_root(tmp_path) -> Path:
    """SPAQ: the annotations workbook and 3 photos of different sizes in TestImage/."""
    root = tmp_path / "spaq"
    names, sizes = ["00001.jpg", "00002.jpg", "00003.png"], [(40, 30), (30, 60), (64, 64)]
    for i, (n, s) in enumerate(zip(names, sizes)):
        tiny_image(root / "TestImage" / n, i, size=s)
    (root / "Annotations").mkdir()
    pd.DataFrame({"Image name": names, "MOS": [20.0, 55.0, 90.0], "Brightness": [50] * 3,
                  "Colorfulness": [50] * 3, "Contrast": [50] * 3, "Noisiness": [50] * 3,
                  "Sharpness": [50] * 3}).to_excel(
        root / "Annotations" / "MOS and Image attribute scores.xlsx", index=False)
    return root


@pytest.fixture
def flive_root(tmp_path) -> Path:
    """FLIVE: labels_image.csv with folder-relative names; the official split files."""
    root = tmp_path / "flive"
    names = ([f"voc_emotic_ava/VOC2012__2011_{i:06d}.jpg" for i in range(6)]
             + [f"blur_dataset/motion{i:04d}.jpg" for i in range(4)])
    for i, n in enumerate(names):
        tiny_image(root / n, i)
    pd.DataFrame({"name": names, "mos": np.linspace(0.0, 90.0, len(names))}).to_csv(
        root / "labels_image.csv", index=False)
    small = names[:7]  # <=640 images: 2 of them are the validation part
    pd.DataFrame({"name_image": small, "mos_image": 50.0,
                  "is_valid": [False, True, False, False, True, False, False]}).to_csv(
        root / "labels<=640_padded.csv", index=False)
    pd.DataFrame({"mos_image": 50.0, "name_image": names[7:]}).to_csv(root / "labels640.csv",
                                                                       index=False)
    return root


@pytest.fixture
def kadid_meta_root(tmp_path) -> Path:
    """KADID-10k as pyiqa holds it: meta CSV with names relative to images/."""
    root = build_kadid(tmp_path / "kadid_meta", refs=3)
    df = pd.read_csv(root / "dmos.csv")
    (root / "dmos.csv").unlink()
    pd.DataFrame({"ref_name": df["ref_img"], "dist_name": df["dist_img"], "dmos": df["dmos"],
                  "std": np.sqrt(df["var"])}).to_csv(root / "meta_info_KADID10kDataset.csv",
                                                     index=False)
    return root


@pytest.fixture
def koniq_meta_root(tmp_path) -> Path:
    """KonIQ-10k as pyiqa holds it: img_name,mos,std,split,c1..c_total."""
    root = build_koniq(tmp_path / "koniq_meta")
    df = pd.read_csv(root / "koniq10k_distributions_sets.csv")
    (root / "koniq10k_distributions_sets.csv").unlink()
    split = df["set"].map({"training": "train", "validation": "val", "test": "test"})
    pd.DataFrame({"img_name": "1024x768/" + df["image_name"], "mos": df["MOS"],
                  "std": df["SD"], "split": split}).to_csv(
        root / "meta_info_KonIQ10kDataset.csv", index=False)
    return root
