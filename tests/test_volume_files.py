"""Volume files under bad input (issue 42): geometry kept from MHA / NRRD, several DICOM series in
one folder, zero voxel sizes, non-integer label values, label options the run cannot honour, label
volumes on another grid in `evaluate-volumes`. Each case failed before its fix."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from iclsam import segment_volume
from iclsam.apps.volumes.evaluate_volumes import read_case
from iclsam.apps.volumes.scan_io import read_scan, write_label_volume
from iclsam.cli import main

sitk = pytest.importorskip("SimpleITK")


def blob(shape=(20, 22, 9)):
    """A scan (x, y, z) with a bright box, and the box as a 0/1 label volume."""
    image = np.full(shape, 10.0, np.float32)
    target = np.zeros(shape, np.uint8)
    target[6:14, 7:15, 2:7] = 1
    image[target > 0] = 200.0
    return image, target


def tilted_image(array: np.ndarray):
    """A SimpleITK image of an (x, y, z) array with an origin and a direction that is not the identity."""
    image = sitk.GetImageFromArray(np.transpose(array))
    image.SetSpacing((0.7, 0.9, 2.5))
    image.SetOrigin((-31.5, 12.25, 40.0))
    angle = np.deg2rad(20)
    rotation = [[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    image.SetDirection([float(v) for v in np.ravel(np.array(rotation) @ np.diag([1, -1, 1]))])
    return image


@pytest.mark.parametrize("suffix", [".mha", ".nrrd"])
def test_labels_from_an_mha_or_nrrd_scan_sit_where_the_scan_is_in_the_world(tmp_path, suffix):
    """Item 4: the NIfTI written for a scan with an origin and a direction maps every voxel to the
    scan's physical point, as SimpleITK computes it for both files."""
    image, target = blob()
    source = tilted_image(image)
    sitk.WriteImage(source, str(tmp_path / f"scan{suffix}"))
    scan = read_scan(tmp_path / f"scan{suffix}")
    write_label_volume(tmp_path / "labels.nii.gz", target, scan)
    written = sitk.ReadImage(str(tmp_path / "labels.nii.gz"))
    for index in [(0, 0, 0), (19, 0, 0), (3, 21, 8), (10, 11, 4)]:
        assert written.TransformIndexToPhysicalPoint(index) == pytest.approx(
            source.TransformIndexToPhysicalPoint(index), abs=1e-3
        )
    back = np.transpose(sitk.GetArrayFromImage(written))
    assert np.array_equal(back, target)


@pytest.fixture
def kept_locale():
    """GDCM's DICOM writer (used here to make the files; iclsam only reads DICOM) sets the process's
    locale to C, after which Python reads text as ASCII: restored for the tests that follow."""
    import locale

    saved = locale.setlocale(locale.LC_ALL)
    yield
    locale.setlocale(locale.LC_ALL, saved)


def test_a_dicom_folder_holding_two_series_is_refused_listing_them(tmp_path, kept_locale):
    """Item 7: two series in one folder are listed (UID, description, files), not read as one of them."""
    image, _ = blob((12, 10, 4))
    for number, (uid, description) in enumerate(
        [("1.2.826.0.1.3680043.2.1125.1", "T1"), ("1.2.826.0.1.3680043.2.1125.2", "T2")]
    ):
        for z in range(image.shape[2]):
            frame = sitk.GetImageFromArray(np.transpose(image[:, :, z : z + 1]).astype(np.int16))
            for tag, value in [
                ("0020|000e", uid),
                ("0008|103e", description),
                ("0020|0013", str(z + 1)),
                ("0020|0032", f"0\\0\\{z * 2.0}"),
                ("0020|0037", "1\\0\\0\\0\\1\\0"),
                ("0008|0060", "MR"),
            ]:
                frame.SetMetaData(tag, value)
            writer = sitk.ImageFileWriter()
            writer.KeepOriginalImageUIDOn()
            writer.SetFileName(str(tmp_path / f"s{number}_{z}.dcm"))
            writer.Execute(frame)
    with pytest.raises(ValueError) as raised:
        read_scan(tmp_path)
    message = str(raised.value)
    assert str(tmp_path) in message and "2 DICOM series" in message
    assert "1.2.826.0.1.3680043.2.1125.1 ('T1', 4 files)" in message and "'T2', 4 files" in message
    for path in tmp_path.glob("s1_*"):
        path.unlink()
    assert read_scan(tmp_path).array.shape == (12, 10, 4)  # one series: read


def test_a_zero_voxel_size_is_refused_naming_the_file_and_the_axis(tmp_path):
    """Item 9: pixdim 0 would give distances in wrong millimetres."""
    image, _ = blob()
    nifti = nib.Nifti1Image(image, np.diag([0.8, 0.8, 2.0, 1.0]))
    nifti.header["pixdim"][3] = 0.0
    nib.save(nifti, str(tmp_path / "flat.nii.gz"))
    with pytest.raises(ValueError, match=r"flat.nii.gz: voxel size 0.0 along axis 2"):
        read_scan(tmp_path / "flat.nii.gz")


def write_pair(folder, image, labels, affine=None, label_affine=None):
    affine = np.diag([0.8, 0.8, 2.0, 1.0]) if affine is None else affine
    nib.save(nib.Nifti1Image(image, affine), str(folder / "scan.nii.gz"))
    nib.save(nib.Nifti1Image(labels, affine if label_affine is None else label_affine), str(folder / "drawn.nii.gz"))


def run_volume(folder, *extra):
    base = ["segment-volume", "--image", str(folder / "scan.nii.gz"), "--annotations", str(folder / "drawn.nii.gz")]
    return main([*base, "--method", "interpolation", *extra, "--out", str(folder / "out.nii.gz")])


def test_non_integer_label_values_are_refused_not_written_as_an_empty_volume(tmp_path, capsys):
    """Item 5: a float annotation holding 0.5 gave an empty volume and exit 0."""
    image, target = blob()
    drawn = np.zeros(target.shape, np.float32)
    drawn[:, :, [3, 5]] = target[:, :, [3, 5]] * 0.5
    write_pair(tmp_path, image, drawn)
    assert run_volume(tmp_path) == 2
    error = capsys.readouterr().err
    assert "drawn.nii.gz: label values must be whole numbers" in error and "0.5" in error
    assert not (tmp_path / "out.nii.gz").exists()
    write_pair(tmp_path, image, drawn * 2)  # 0.0 / 1.0 floats are whole numbers: accepted
    assert run_volume(tmp_path) == 0
    assert np.asarray(nib.load(str(tmp_path / "out.nii.gz")).dataobj)[:, :, 4].any()


def test_label_options_a_binary_run_cannot_honour_are_refused(tmp_path, capsys):
    """Item 10 (segment-volume): --labels / --nested with a binary mask were ignored with exit 0."""
    image, target = blob()
    drawn = np.zeros(target.shape, np.uint8)
    drawn[:, :, [3, 5]] = target[:, :, [3, 5]]
    write_pair(tmp_path, image, drawn)
    for extra, words in [(["--labels", "7"], "--labels given, but"), (["--nested", "2:1"], "--nested given, but")]:
        assert run_volume(tmp_path, *extra) == 2
        error = capsys.readouterr().err
        assert words in error and "drawn.nii.gz" in error and "binary mask" in error, error
    two = drawn.copy()
    two[:, :, 5] *= 2
    write_pair(tmp_path, image, two)
    assert run_volume(tmp_path, "--labels", "7") == 2
    assert "labels [7] given by --labels are absent" in capsys.readouterr().err
    assert run_volume(tmp_path, "--labels", "2", "--label", "1") == 2
    assert "exclude each other" in capsys.readouterr().err
    assert not (tmp_path / "out.nii.gz").exists()


def test_evaluate_volumes_refuses_a_label_volume_mirrored_against_its_image(tmp_path):
    """Item 8: only the shape was compared; segment-volume refuses the same pair."""
    image, target = blob()
    affine = np.diag([0.8, 0.8, 2.0, 1.0])
    mirrored = affine.copy()
    mirrored[0, 0], mirrored[0, 3] = -0.8, 15.2
    nib.save(nib.Nifti1Image(image, affine), str(tmp_path / "a_image.nii.gz"))
    nib.save(nib.Nifti1Image(target, mirrored), str(tmp_path / "a_label.nii.gz"))
    with pytest.raises(ValueError, match=r"a_label.nii.gz: its affine .* differs"):
        read_case(tmp_path / "a_image.nii.gz", tmp_path / "a_label.nii.gz", None, 2)
    nib.save(nib.Nifti1Image(target, affine), str(tmp_path / "a_label.nii.gz"))
    scan, truth = read_case(tmp_path / "a_image.nii.gz", tmp_path / "a_label.nii.gz", None, 2)
    assert truth.sum() == target.sum()


def test_on_a_scan_without_signal_the_target_stays_in_the_annotated_range(features_model):
    """Seen in the probe: an all-zero scan spread the target over every slice. A slice of one
    intensity holds no target outside the annotated range (inside it, the annotations say it does)."""
    from iclsam.apps.volumes.propagation import target_present

    assert target_present(9, [4, 8], [], {8: np.ones((3, 3), bool)}) and not target_present(
        9, [4, 8], [], {8: np.ones((3, 3), bool)}, flat=True
    )
    assert target_present(6, [4, 8], [], {}, flat=True)
    drawn = {z: np.zeros((32, 32), bool) for z in (4, 6, 8)}
    for mask in drawn.values():
        mask[10:20, 12:22] = True
    result = segment_volume(features_model, np.zeros((32, 32, 14), np.float32), drawn, axis=2)
    holding = np.nonzero(result.mask.any(axis=(0, 1)))[0]
    assert holding.min() >= 4 and holding.max() <= 8
