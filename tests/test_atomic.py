import pytest

from iclsam.common.atomic import write_atomic, write_text_atomic


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


def test_a_read_only_folder_is_named_as_the_destination_not_as_the_partial_file(tmp_path, monkeypatch):
    """As in a read-only folder: the write and the clean-up both fail; the error names the destination
    (issue 42, item 13). Simulated, since the tests may run as root, for whom no folder is read-only."""
    import errno
    from pathlib import Path

    target = tmp_path / "labels.nii.gz"

    def refused(partial):
        raise PermissionError(errno.EACCES, "Permission denied", str(partial))

    def unlink(self, missing_ok=False):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", unlink)
    with pytest.raises(OSError) as raised:
        write_atomic(target, refused)
    assert str(raised.value) == f"[Errno {errno.EACCES}] could not write {target}: Permission denied"
    assert ".partial" not in str(raised.value)
