"""`iclsam weights fetch` against a real HTTP server on the loopback interface: a whole file, a
connection cut mid-file, a file that is not the checkpoint, no server at all."""

from __future__ import annotations

import http.server
import threading

import pytest
import torch

from iclsam.apps.fetch import PUBLISHED, fetch
from iclsam.cli import main
from iclsam.method.universeg.network import OFFICIAL_WIDTHS, UniverSeg


class Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = self.files.get(self.path.split("?")[0])
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.path.endswith("?cut")
        self.wfile.write(body[: len(body) // 2] if cut else body)
        if cut:  # the connection drops mid-file
            self.wfile.flush()
            self.connection.shutdown(2)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    torch.manual_seed(0)
    torch.save(UniverSeg(list(OFFICIAL_WIDTHS)).state_dict(), root / "universeg.pt")
    torch.save({"not": torch.zeros(3)}, root / "other.pt")
    Handler.files = {f"/{p.name}": p.read_bytes() for p in root.iterdir()}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()


def test_a_whole_download_is_checked_and_renamed(server, tmp_path):
    url, root = server
    path = fetch("universeg", tmp_path / "checkpoints", url=f"{url}/universeg.pt")
    assert path == tmp_path / "checkpoints" / PUBLISHED["universeg"].file
    assert path.read_bytes() == (root / "universeg.pt").read_bytes()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no partial file left
    assert fetch("universeg", tmp_path / "checkpoints", url=f"{url}/absent.pt") == path  # kept, not fetched again


def test_a_cut_connection_writes_nothing(server, tmp_path, capsys):
    url, _ = server
    dest = tmp_path / "checkpoints"
    dest.mkdir()
    assert main(["weights", "fetch", "universeg", "--dest", str(dest), "--url", f"{url}/universeg.pt?cut"]) == 2
    err = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines() if line.startswith("iclsam")]
    assert len(err) == 1 and "universeg.pt?cut" in err[0] and "nothing written" in err[0]
    assert list(dest.iterdir()) == []


def test_a_file_that_is_not_the_checkpoint_is_refused(server, tmp_path):
    url, _ = server
    with pytest.raises(ValueError, match="not the expected checkpoint"):
        fetch("universeg", tmp_path / "checkpoints", url=f"{url}/other.pt")
    assert not (tmp_path / "checkpoints").exists()


def test_offline_is_one_line_with_the_address_and_destination(tmp_path, capsys):
    dest = tmp_path / "checkpoints"
    assert main(["weights", "fetch", "sam", "--dest", str(dest), "--url", "http://127.0.0.1:9/sam.pth"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        len(err.splitlines()) == 1 and "http://127.0.0.1:9/sam.pth" in err and str(dest / "sam_vit_b_01ec64.pth") in err
    )
    assert main(["weights", "fetch", "medsam", "--dest", str(dest)]) == 2  # a shared folder: where to get it
    err = capsys.readouterr().err
    assert "drive.google.com" in err and str(dest / "medsam_vit_b.pth") in err and not dest.exists()
