"""A full disk, a read-only output folder and checkpoints that are not this run's: the
command stops with one line on stderr (status 2) naming the file, and the last checkpoint
still loads. Loading never runs pickled code."""

import errno
import os
import shutil
import subprocess

import pytest
import torch

from conftest import TINY_TRAIN, one_line_error
from fastgan.cli import main
from fastgan.train.checkpoint import CheckpointError, load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def train(out, *extra):
    return main(["train", "pix2pix", *TINY_TRAIN, "--out", str(out), *extra])


@pytest.fixture
def run_dir(tiny_run):
    return tiny_run     # its checkpoint is the size the disk-full test needs


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs: mount(options) -> its folder; unmounted afterwards."""
    mounted = []

    def mount(options: str):
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("mounting a tmpfs needs root and mount(8); the monkeypatched test covers the handling")
        point = tmp_path / f"fs{len(mounted)}"
        point.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if proc.returncode != 0:
            pytest.skip(f"mount -t tmpfs is not allowed here ({proc.stderr.decode().strip()}); "
                        "the monkeypatched test covers the handling")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def assert_last_checkpoint_loads(out, step: int):
    files = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert f"step-{step:08d}.pt" in files and not any(".tmp-" in f for f in files)
    assert load_checkpoint(out / "checkpoints")["step"] == step


def test_disk_full_on_a_real_small_file_system(run_dir, tmpfs, capsys):
    size = (run_dir / "checkpoints" / "step-00000001.pt").stat().st_size
    fs = tmpfs(f"size={int(size * 1.6) + 64 * 1024}")   # room for one checkpoint and the log, not two
    out = fs / "run"
    assert train(out, "--steps", "3", "--save-every", "1", "--keep-last", "5") == 2
    line = one_line_error(capsys)
    assert "No space left on device" in line and "step-00000001.pt still loads" in line
    assert_last_checkpoint_loads(out, 1)


def test_disk_full_while_a_checkpoint_is_renamed_into_place(tmp_path, monkeypatch, capsys):
    real = os.replace

    def full(src, dst, *a, **k):
        if "step-00000002" in str(dst):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", full)
    out = tmp_path / "run"
    assert train(out, "--steps", "3", "--save-every", "1") == 2
    line = one_line_error(capsys)
    assert "No space left on device" in line and "step-00000001.pt still loads" in line and "--resume" in line
    monkeypatch.undo()
    assert_last_checkpoint_loads(out, 1)


def test_a_read_only_output_folder_on_a_real_file_system(tmpfs, capsys):
    fs = tmpfs("size=1m,ro")
    assert train(fs / "run", "--steps", "1") == 2
    line = one_line_error(capsys)
    assert "Read-only file system" in line and str(fs / "run") in line


def test_a_read_only_output_folder(tmp_path, monkeypatch, capsys):
    def refuse(self, *a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(type(tmp_path), "mkdir", refuse)
    assert train(tmp_path / "run", "--steps", "1") == 2
    line = one_line_error(capsys)
    assert "Read-only file system" in line and "run" in line


# -- checkpoints that are not this run's -------------------------------------------------------

def test_a_truncated_checkpoint_is_named(run_dir, tmp_path, capsys):
    cut = tmp_path / "cut.pt"
    data = (run_dir / "checkpoints" / "step-00000001.pt").read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt is not a loadable checkpoint"):
        load_checkpoint(cut)
    assert main(["infer", str(cut), str(tmp_path), str(tmp_path / "o")]) == 2
    assert "cut.pt is not a loadable checkpoint" in one_line_error(capsys)
    assert main(["eval", str(cut), "--data", "synthetic", "--out", str(tmp_path / "e"), "--no-fid"]) == 2
    assert "cut.pt" in one_line_error(capsys)


@pytest.mark.parametrize("content", [b"not a checkpoint at all\n", None])
def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path, capsys, content):
    path = tmp_path / "weights.pt"
    if content is None:
        torch.save({"w": torch.zeros(2)}, path)    # loads, but is no fastgan checkpoint
    else:
        path.write_bytes(content)
    assert main(["infer", str(path), str(tmp_path), str(tmp_path / "o")]) == 2
    assert "weights.pt is not a" in one_line_error(capsys)


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('FASTGAN_PAYLOAD_MARK', '/nonexistent/x')}",))


def test_loading_never_runs_pickled_code(tmp_path, monkeypatch):
    mark = tmp_path / "ran"
    monkeypatch.setenv("FASTGAN_PAYLOAD_MARK", str(mark))
    path = tmp_path / "evil.pt"
    torch.save({"format": "fastgan-train/1", "config": {}, "models": {"G": _Payload()}}, path)
    with pytest.raises(CheckpointError, match="evil.pt is not a loadable checkpoint"):
        load_checkpoint(path)
    assert not mark.exists()


def test_another_recipes_checkpoint_is_refused_naming_the_file(run_dir, tmp_path, capsys):
    simgan = tmp_path / "simgan"
    assert main(["train", "simgan", *TINY_TRAIN, "--steps", "1", "--out", str(simgan)]) == 0
    capsys.readouterr()
    # resumed into a pix2pix run: the recipe differs
    mine = tmp_path / "mine"
    shutil.copytree(simgan / "checkpoints", mine / "checkpoints")
    assert train(mine, "--steps", "2", "--resume") == 2
    line = one_line_error(capsys)
    assert "step-00000001.pt" in line and "recipe" in line
    # simgan weights under a pix2pix configuration: they do not fit, and the message says where
    state = torch.load(run_dir / "checkpoints" / "step-00000001.pt", weights_only=True)
    simgan_g = torch.load(simgan / "checkpoints" / "step-00000001.pt", weights_only=True)["models"]["G"]
    for name in [n for n in state["models"] if n.startswith("G")]:  # G and its EMA, which infer prefers
        state["models"][name] = simgan_g
    mixed = tmp_path / "mixed.pt"
    torch.save(state, mixed)
    assert main(["infer", str(mixed), str(tmp_path), str(tmp_path / "o")]) == 2
    line = one_line_error(capsys)
    assert "mixed.pt" in line and "do not fit" in line
