import pytest

from iclsam.atomic import write_atomic, write_text_atomic


def test_a_failed_write_leaves_the_destination_as_it_was_and_no_partial_file(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")

    def failing(partial):
        partial.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(target, failing)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_the_writer_sees_the_destinations_suffixes_and_the_folder_is_created(tmp_path):
    seen = []
    target = tmp_path / "new" / "mask.nii.gz"
    write_atomic(target, lambda p: (seen.append(p), p.write_bytes(b"x")))
    assert seen[0].name.endswith(".nii.gz") and seen[0].parent == target.parent and seen[0] != target
    assert target.read_bytes() == b"x" and sorted(p.name for p in target.parent.iterdir()) == ["mask.nii.gz"]
    assert write_text_atomic(target, "y").read_text() == "y"
