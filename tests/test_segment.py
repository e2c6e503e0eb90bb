import dataclasses
import hashlib
import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from iclsam.cli import main
from iclsam.method.config import ICLSAMConfig
from tests.conftest import ellipse, textured_image

SHAPE = (64, 80)


def write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture(scope="module")
def encoder_cache(tmp_path_factory):
    """One on-disk encoder cache for the module's `segment` runs: every test writes the same images,
    so only the first run encodes them (the cache itself is tested in test_sam)."""
    return tmp_path_factory.mktemp("encoder_cache")


@pytest.fixture
def folders(tmp_path, encoder_cache):
    (tmp_path / "encoder_cache").symlink_to(encoder_cache, target_is_directory=True)
    for i in range(2):
        mask = ellipse(SHAPE, (30 + 3 * i, 40), (12, 18))
        write_png(tmp_path / "support" / f"s{i}.png", textured_image(mask, i))
        write_png(tmp_path / "support_masks" / f"s{i}.png", mask.astype(np.uint8) * 255)
    query_mask = ellipse(SHAPE, (34, 36), (14, 20))
    write_png(tmp_path / "query" / "q0.png", textured_image(query_mask, 7))
    write_png(tmp_path / "query_masks" / "q0.png", query_mask.astype(np.uint8) * 255)
    volume = np.stack([textured_image(query_mask, 8 + k) for k in range(3)], axis=-1).astype(np.int16)
    labels = np.stack([query_mask] * 3, axis=-1).astype(np.uint8)
    affine = np.diag([0.8, 0.8, 2.0, 1.0])
    nib.save(nib.Nifti1Image(volume, affine), str(tmp_path / "query" / "vol.nii.gz"))
    nib.save(nib.Nifti1Image(labels, affine), str(tmp_path / "query_masks" / "vol.nii.gz"))
    return tmp_path


def run(folders, *extra):
    return main(
        [
            "segment",
            "--icl",
            "features",
            "--support-images",
            str(folders / "support"),
            "--support-masks",
            str(folders / "support_masks"),
            "--query",
            str(folders / "query"),
            "--out",
            str(folders / "out"),
            "--cache-dir",
            str(folders / "encoder_cache"),
            *extra,
        ]
    )


def test_segment_writes_masks_nifti_and_dice(folders, capsys):
    assert run(folders, "--query-masks", str(folders / "query_masks")) == 0
    png = np.asarray(Image.open(folders / "out" / "q0.png"))
    assert png.shape == SHAPE and set(np.unique(png)) <= {0, 255}
    volume = nib.load(str(folders / "out" / "vol.nii.gz"))
    assert volume.shape == (*SHAPE, 3) and np.allclose(volume.affine, np.diag([0.8, 0.8, 2.0, 1.0]))
    table = pd.read_csv(folders / "out" / "dice.csv")
    assert list(table["query"]) == ["q0.png", "vol.nii.gz"]
    assert (table["iclsam"] > 0.8).all()
    assert len(list((folders / "encoder_cache").rglob("*.pt"))) >= 6  # --cache-dir: 2 support, 1 + 3 query slices
    assert "mean Dice (iclsam)" in capsys.readouterr().out


def test_segment_bad_folders_are_clear_errors_and_write_nothing(folders, capsys):
    (folders / "support_masks" / "s1.png").unlink()
    assert run(folders) == 2
    error = capsys.readouterr().err
    assert "no mask for" in error and "s1.png" in error
    assert not (folders / "out").exists()
    assert (
        main(
            [
                "segment",
                "--icl",
                "features",
                "--support-images",
                str(folders / "nothing"),
                "--support-masks",
                str(folders / "support_masks"),
                "--query",
                str(folders / "query"),
                "--out",
                str(folders / "out"),
            ]
        )
        == 2
    )
    assert "support images folder not found" in capsys.readouterr().err
    assert not (folders / "out").exists()


def test_segment_warns_that_the_shipped_universeg_weights_are_synthetic(folders, capsys):
    (folders / "one_query").mkdir()  # the PNG alone: the warning needs no volume
    shutil.copy(folders / "query" / "q0.png", folders / "one_query")
    argv = [
        "segment",
        "--support-images",
        str(folders / "support"),
        "--support-masks",
        str(folders / "support_masks"),
        "--query",
        str(folders / "one_query"),
        "--out",
        str(folders / "out"),
        "--variant",
        "universeg",
    ]
    assert main(argv + ["--icl", "universeg"]) == 0
    assert "trained on generated (synthetic) tasks" in capsys.readouterr().err
    assert main(argv[:-2] + ["--variant", "iclsam", "--out", str(folders / "out2")]) == 0  # the default: features
    assert "synthetic" not in capsys.readouterr().err
    assert "training-free" in json.loads((folders / "out2" / "run.json").read_text())["icl_weights"]


def test_output_folder_may_not_be_an_input_folder(folders, capsys):
    before = {p.name: p.read_bytes() for p in (folders / "query").iterdir()}
    argv = [
        "segment",
        "--icl",
        "features",
        "--support-images",
        str(folders / "support"),
        "--support-masks",
        str(folders / "support_masks"),
        "--query",
        str(folders / "query"),
    ]
    assert main(argv + ["--out", str(folders / "query")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "query folder" in error and str(folders / "query") in error
    assert {p.name: p.read_bytes() for p in (folders / "query").iterdir()} == before
    assert main(argv + ["--out", str(folders / "support_masks")]) == 2
    assert "support masks folder" in capsys.readouterr().err


def test_queries_with_one_output_name_are_an_error(folders, capsys):
    np.save(folders / "query" / "q0.npy", np.asarray(Image.open(folders / "query" / "q0.png")))
    assert run(folders) == 2
    error = capsys.readouterr().err
    assert "q0.npy" in error and "q0.png" in error and "rename" in error
    assert not (folders / "out").exists()


def test_a_new_run_records_itself_and_leaves_nothing_stale(folders):
    assert run(folders, "--query-masks", str(folders / "query_masks")) == 0
    first = json.loads((folders / "out" / "run.json").read_text())["outputs"]
    assert sorted(first) == ["dice.csv", "q0.png", "vol.nii.gz"]
    for name, digest in first.items():  # the record verifies what it lists
        assert hashlib.sha256((folders / "out" / name).read_bytes()).hexdigest() == digest
    (folders / "query" / "vol.nii.gz").unlink()
    assert run(folders, "--variant", "sam") == 0
    record = json.loads((folders / "out" / "run.json").read_text())
    assert record["variant"] == "sam" and record["sam"] == "LiteMedSAM" and "training-free" in record["icl_weights"]
    # every setting of the model as it ran, the refinements off by default included ("auto" as resolved on the CPU)
    assert record["config"] == {**dataclasses.asdict(ICLSAMConfig()), "solver": "lbfgs", "batch_queries": False}
    assert list(record["outputs"]) == ["q0.png"] and record["time"]
    assert sorted(p.name for p in (folders / "out").iterdir()) == ["q0.png", "run.json"]


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.exists() else None


def test_a_folder_holding_the_users_files_is_refused_and_kept(folders, capsys):
    out = folders / "out"
    out.mkdir()
    (out / "q0.png").write_bytes(b"the user's own picture")  # the name a mask would take
    assert run(folders) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "q0.png" in error and "no iclsam run recorded" in error
    assert snapshot(out) == {"q0.png": b"the user's own picture"}
    (out / "q0.png").unlink()
    (out / "notes.txt").write_text("mine")
    (out / "run.json").write_text(json.dumps({"tool": "other", "outputs": ["notes.txt"]}))  # another tool's record
    before = snapshot(out)
    assert run(folders) == 2
    error = capsys.readouterr().err
    assert "run.json is not a run record written by iclsam" in error
    assert snapshot(out) == before


def test_a_mask_changed_since_our_run_is_not_replaced(folders, capsys):
    (folders / "query" / "vol.nii.gz").unlink()
    assert run(folders) == 0
    (folders / "out" / "q0.png").write_bytes(b"edited by hand")
    before = snapshot(folders / "out")
    assert run(folders) == 2
    assert "q0.png changed since iclsam wrote it" in capsys.readouterr().err
    assert snapshot(folders / "out") == before


def test_a_failed_run_leaves_nothing_and_a_rerun_mixes_no_runs(folders, monkeypatch, capsys):
    """A run that fails after its first mask (here: the disk fills) writes nothing new; the next
    run, with other queries, leaves only its own masks."""
    import errno

    from iclsam.common import atomic

    (folders / "query" / "vol.nii.gz").unlink()
    write_png(folders / "query" / "c.png", np.asarray(Image.open(folders / "query" / "q0.png")))
    real, calls = atomic.write_atomic, []

    def fills_the_disk(path, write, shown_as=None):
        calls.append(path)
        if len(calls) == 2:  # the second mask: the disk is full
            write = lambda p: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device"))  # noqa: E731
        return real(path, write, shown_as)

    monkeypatch.setattr("iclsam.apps.run_folder.write_atomic", fills_the_disk)
    assert run(folders) == 2
    error = capsys.readouterr().err
    last = error.strip().splitlines()[-1]
    assert "No space left on device" in last and str(folders / "out" / "q0.png") in last
    assert not (folders / "out").exists()
    monkeypatch.undo()
    (folders / "query" / "c.png").unlink()
    assert run(folders) == 0
    assert sorted(p.name for p in (folders / "out").iterdir()) == ["q0.png", "run.json"]


def test_support_images_differing_only_in_extension_are_ambiguous(folders, capsys):
    image = np.asarray(Image.open(folders / "support" / "s0.png"))
    Image.fromarray(image).save(folders / "support" / "s0.tif")
    assert run(folders) == 2
    error = capsys.readouterr().err
    assert "s0.png" in error and "s0.tif" in error and "ambiguous" in error and not (folders / "out").exists()
    (folders / "support" / "s0.tif").unlink()
    Image.open(folders / "support_masks" / "s0.png").save(folders / "support_masks" / "s0.tif")
    assert run(folders) == 2
    error = capsys.readouterr().err
    assert "several masks" in error and "s0.png" in error and "s0.tif" in error


def test_an_unwritable_output_is_one_line_exit_2(folders, capsys):
    (folders / "afile").write_text("x")
    assert run(folders, "--out", str(folders / "afile" / "out")) in (2,)
    error = capsys.readouterr().err
    assert error.startswith("iclsam: error:") and error.count("\n") == 1 and "afile" in error


def test_sample_support_rejects_zero_sizes_and_draws(tmp_path, capsys):
    for flag in (["--m", "0"], ["--draws", "0"]):
        with pytest.raises(SystemExit) as stop:
            main(["sample-support", "--data", str(tmp_path), "--out", str(tmp_path / "d.csv"), *flag])
        assert stop.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_a_nifti_mask_of_a_2d_image_is_read_as_nifti(folders):
    mask = np.asarray(Image.open(folders / "query_masks" / "q0.png")) > 0
    (folders / "query_masks" / "q0.png").unlink()
    nib.save(nib.Nifti1Image(mask.astype(np.uint8), np.eye(4)), str(folders / "query_masks" / "q0.nii.gz"))
    (folders / "query" / "vol.nii.gz").unlink()
    (folders / "query_masks" / "vol.nii.gz").unlink()
    assert run(folders, "--query-masks", str(folders / "query_masks")) == 0
    assert pd.read_csv(folders / "out" / "dice.csv")["iclsam"].item() > 0.8


@pytest.mark.slow  # ~25 s (a second process); whole files after a failure: test_a_failed_run_leaves_nothing_and_a_rerun_mixes_no_runs
def test_sigint_mid_run_exits_130_with_one_line_and_whole_files(folders):
    """A real Ctrl-C: `iclsam segment` in its own process, interrupted once it has written a mask."""
    import os
    import signal
    import subprocess
    import sys
    import time

    image = np.asarray(Image.open(folders / "query" / "q0.png"))
    (folders / "query" / "vol.nii.gz").unlink()
    for k in range(60):
        write_png(folders / "query" / f"q{k + 1:02d}.png", np.roll(image, k, axis=1))
    out = folders / "out"
    command = [
        sys.executable,
        "-c",
        "import sys; from iclsam.cli import main; sys.exit(main())",
        "segment",
        "--icl",
        "features",
        "--support-images",
        str(folders / "support"),
        "--support-masks",
        str(folders / "support_masks"),
        "--query",
        str(folders / "query"),
        "--out",
        str(out),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        # as from a terminal: a shell without job control starts background commands (a test run
        # with `&`) with Ctrl-C ignored, and Python then leaves it ignored in the child
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while not any(out.glob(".iclsam-staging.*/*.png")):  # a mask written (into the run's staging folder)
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no mask written within 300 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, error = process.communicate(timeout=120)
    assert process.returncode == 130, error
    assert "Traceback" not in error and error.strip().splitlines()[-1].startswith("iclsam: interrupted"), error
    assert not out.exists(), "an interrupted run left files behind"


def weak_context_files(folders) -> tuple[list[dict], list[dict], list[str]]:
    """boxes.csv and points.csv for the support masks, and the `segment` arguments without them."""
    from iclsam.method.densify import boxes_from_mask, points_from_mask

    rows_b, rows_p = [], []
    for path in sorted((folders / "support_masks").iterdir()):
        mask = np.asarray(Image.open(path)) > 0
        rows_b += [{"image": path.name, "x0": b[0], "y0": b[1], "x1": b[2], "y1": b[3]} for b in boxes_from_mask(mask)]
        rows_p += [{"image": path.stem, "x": x, "y": y} for x, y in points_from_mask(mask)]
    pd.DataFrame(rows_b).to_csv(folders / "boxes.csv", index=False)
    pd.DataFrame(rows_p).to_csv(folders / "points.csv", index=False)
    base = [
        "segment",
        "--support-images",
        str(folders / "support"),
        "--query",
        str(folders / "query"),
        "--query-masks",
        str(folders / "query_masks"),
    ]
    return rows_b, rows_p, base


@pytest.mark.parametrize(
    "flag, csv",
    [
        ("--support-boxes", "boxes.csv"),
        # 12-27 s here; points densify as boxes do (test_densify checks both)
        pytest.param("--support-points", "points.csv", marks=pytest.mark.slow),
    ],
)
def test_segment_with_boxes_or_points_instead_of_masks(folders, flag, csv):
    _, _, base = weak_context_files(folders)
    out = folders / f"out_{csv}"
    assert main(base + [flag, str(folders / csv), "--out", str(out)]) == 0
    dense = np.asarray(Image.open(out / "densified_s0.png")) > 0
    truth = np.asarray(Image.open(folders / "support_masks" / "s0.png")) > 0
    assert 2 * (dense & truth).sum() / (dense.sum() + truth.sum()) > 0.8
    assert (pd.read_csv(out / "dice.csv")["iclsam"] > 0.7).all()
    assert "densified_s1.png" in json.loads((out / "run.json").read_text())["outputs"]


def test_segment_refuses_bad_box_or_point_files(folders, capsys):
    rows_b, rows_p, base = weak_context_files(folders)
    pd.DataFrame(rows_b[:1]).to_csv(folders / "one.csv", index=False)  # no box for s1
    assert main(base + ["--support-boxes", str(folders / "one.csv"), "--out", str(folders / "bad")]) == 2
    error = capsys.readouterr().err
    assert "one.csv" in error and "s1.png" in error and error.count("\n") == 1
    pd.DataFrame(rows_p).rename(columns={"x": "col"}).to_csv(folders / "cols.csv", index=False)
    assert main(base + ["--support-points", str(folders / "cols.csv"), "--out", str(folders / "bad")]) == 2
    assert "missing column" in capsys.readouterr().err and not (folders / "bad").exists()


def test_segment_with_label_attention_weights(folders, capsys):
    """--icl label-attention runs a given checkpoint (here the untrained network: the ridge reading);
    without one, and none shipped, the command stops with one line saying what to do."""
    import torch

    from iclsam.method.icl import label_attention_backend
    from iclsam.method.icl.label_attention import LabelAttention

    torch.manual_seed(0)
    torch.save(LabelAttention().state_dict(), folders / "net.pt")
    code = run(
        folders, "--icl", "label-attention", "--icl-checkpoint", str(folders / "net.pt"), "--variant", "label-attention"
    )
    assert code == 0
    png = np.asarray(Image.open(folders / "out" / "q0.png"))
    assert png.shape == SHAPE and png.any()
    if not (label_attention_backend.WEIGHTS_DIR / f"{label_attention_backend.SHIPPED_LABEL_ATTENTION}.pt").is_file():
        shutil.rmtree(folders / "out")
        assert run(folders, "--icl", "label-attention") == 2
        assert "train-icl" in capsys.readouterr().err
        assert not (folders / "out").exists()
