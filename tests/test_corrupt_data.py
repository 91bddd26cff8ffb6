"""Folders of images that fastgan did not make, through every command: unreadable files are
skipped, counted and named (training, occlude, eval, infer), or the command stops with one
line on stderr and status 2; never a traceback, never another image under a bad file's name.
The files are made on the fly (tests/corrupt_files.py)."""

import builtins
import json
import os
import re

import pytest
import torch
from PIL import Image

import corrupt_files as cf
from conftest import one_line_error
import fastgan.metrics.cli as eval_cli
from fastgan.cli import main
from fastgan.data import SkippedFilesWarning
from fastgan.data.io import decode, list_files, read_pixels

TINY = ["--size", "32", "--batch", "2", "--ngf", "8", "--ndf", "8", "--workers", "0", "--val-images", "4",
        "--samples", "2", "--no-compile", "--no-progress", "--steps", "1"]

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def messy(tmp_path):
    """8 good faces, two with spaces and non-ASCII in their names, odd but readable modes, one
    file of every unreadable kind and a symlink loop."""
    root = tmp_path / "messy"
    cf.good(root, 6)
    cf.good(root, 2, prefix="visage ü ")
    odd = [cf.sixteen_bit(root), cf.palette(root), cf.grey(root), cf.rgba(root), cf.cmyk_jpeg(root),
           cf.exif_rotated(root)]
    bad = cf.every_bad_kind(root)
    cf.symlink_loop(root)
    return root, 8 + len(odd), bad


def skipped_counts(text: str) -> int:
    return sum(int(n) for n in re.findall(r"skipped (\d+)", text))


# -- decoding: odd modes read as what they show -------------------------------------------

def test_a_16_bit_png_is_scaled_not_clipped(tmp_path):
    img, _ = decode(cf.sixteen_bit(tmp_path, value=32896), None)   # 32896 / 257 = 128
    assert int(img.min()) == int(img.max()) == 128


@pytest.mark.parametrize("make, rgb", [(cf.grey, (77, 77, 77)), (cf.rgba, (10, 200, 30)),
                                       (cf.cmyk_jpeg, (255, 0, 255)), (cf.palette, (200, 30, 60))])
def test_grey_rgba_cmyk_and_palette_images_read_as_rgb(tmp_path, make, rgb):
    path = make(tmp_path)
    img, _ = decode(path, 16)
    assert img.shape == (3, 16, 16) and img.dtype == torch.uint8
    assert (img.int() - torch.tensor(rgb).view(3, 1, 1)).abs().max() <= 3


def test_the_exif_orientation_is_applied(tmp_path):
    path = cf.exif_rotated(tmp_path)
    upright = read_pixels(path)
    assert upright.shape == (3, 60, 40)          # stored 60 x 40, shown 40 wide x 60 high
    assert upright[2, :10].float().mean() > 200 and upright[0, -10:].float().mean() > 200   # blue top, red bottom
    square, _ = decode(path, None)                # the centre 40 x 40 of the upright image
    assert square[2, :4].float().mean() > 200 and square[0, -4:].float().mean() > 200


def test_a_symlink_loop_is_walked_once(tmp_path):
    cf.good(tmp_path / "loop", 2)
    cf.symlink_loop(tmp_path)
    files = [p.relative_to(tmp_path).as_posix() for p in list_files(tmp_path)]
    assert files == ["loop/face00.png", "loop/face01.png"]


# -- every command on a messy folder ---------------------------------------------------------

def warned(record) -> str:
    return " ".join(str(w.message) for w in record if issubclass(w.category, SkippedFilesWarning))


def test_train_skips_counts_and_names_the_bad_files(messy, tmp_path, capsys):
    root, readable, bad = messy
    with pytest.warns(SkippedFilesWarning) as record:
        assert main(["train", "pix2pix", "--data", str(root), *TINY, "--out", str(tmp_path / "run")]) == 0
    assert "Traceback" not in capsys.readouterr().err
    text = warned(record)
    assert skipped_counts(text) == len(bad) and "cut.jpg" in text and "truncated" in text


def test_the_command_line_shows_skipped_files_as_one_warning_line(tmp_path):
    """Outside pytest's warning capture: what a user sees on stderr."""
    import subprocess
    import sys

    root = tmp_path / "data"
    cf.good(root, 8)
    cf.zero_bytes(root)
    proc = subprocess.run([sys.executable, "-m", "fastgan", "train", "pix2pix", "--data", str(root), *TINY,
                           "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if "empty.jpg" in ln]
    assert len(lines) == 1 and lines[0].startswith("fastgan train: warning: ") and re.search(r"skipped 1 of \d+ files", lines[0])
    assert "Traceback" not in proc.stderr


def test_occlude_writes_only_the_readable_images_under_their_own_names(messy, tmp_path, capsys):
    root, readable, bad = messy
    out = tmp_path / "out"
    assert main(["occlude", str(root), str(out), "--size", "32", "--kind", "square"]) == 0
    captured = capsys.readouterr()
    names = sorted(p.name for p in (out / "target").iterdir())
    assert len(names) == readable and not any(n.startswith(("cut", "empty", "notes")) for n in names)
    assert "visage ü 00.png" in names
    assert skipped_counts(captured.out + captured.err) == len(bad) and "cut.png" in captured.out + captured.err


class _Identity:
    size, recipe, occlusion, config = 32, "fake", "square", {}

    def __call__(self, occluded, mask):
        return occluded


def test_eval_checkpoint_mode_scores_only_the_readable_images(messy, tmp_path, monkeypatch, capsys):
    root, readable, bad = messy
    monkeypatch.setattr(eval_cli, "_load_reconstructor", lambda path, device: _Identity())
    (tmp_path / "fake.pt").write_bytes(b"")
    out = tmp_path / "eval"
    assert main(["eval", str(tmp_path / "fake.pt"), "--data", str(root), "--out", str(out), "--no-fid",
                 "--no-face-detection", "--device", "cpu"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    names = [row.split(",")[0] for row in (out / "per_image.csv").read_text().splitlines()[1:]]
    assert m["count"] == readable and not any(n.startswith(("cut", "empty", "notes")) for n in names)
    noted = " ".join(m["notes"]) + capsys.readouterr().err
    assert skipped_counts(noted) >= 2 and "cut.png" in noted     # the truncated ones, found when decoded


@pytest.fixture
def checkpoint(tiny_run):
    return tiny_run / "checkpoints" / "step-00000001.pt"


def test_infer_writes_only_the_readable_images(messy, checkpoint, tmp_path, capsys):
    root, readable, bad = messy
    out = tmp_path / "out"
    assert main(["infer", str(checkpoint), str(root), str(out)]) == 0
    captured = capsys.readouterr()
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == readable and not any(n.startswith(("cut", "empty", "notes")) for n in names)
    assert "Traceback" not in captured.err and "cut.jpg" in captured.out + captured.err


# -- folders with nothing to read: one line, status 2 ---------------------------------------

def test_a_folder_without_images_stops_every_command_with_one_line(tmp_path, checkpoint, capsys):
    empty = tmp_path / "empty"
    cf.every_bad_kind(empty)
    assert main(["train", "pix2pix", "--data", str(empty), *TINY, "--out", str(tmp_path / "r")]) == 2
    assert "no readable images" in one_line_error(capsys)
    assert main(["occlude", str(empty), str(tmp_path / "o")]) == 2
    assert "no readable images" in one_line_error(capsys)
    assert main(["infer", str(checkpoint), str(empty), str(tmp_path / "i")]) == 2
    assert "no readable images" in one_line_error(capsys)
    assert main(["eval", "--pred", str(empty), "--target", str(empty), "--out", str(tmp_path / "e")]) == 2
    assert "empty" in one_line_error(capsys)


# -- eval --pred/--target/--mask: a bad file stops it, naming the file -------------------------

@pytest.fixture
def pairs(tmp_path):
    root = tmp_path / "pairs"
    for sub in ("pred", "target"):
        cf.good(root / sub, 3, seed=0 if sub == "pred" else 1)
    (root / "mask").mkdir()
    for i in range(3):
        Image.new("L", cf.SIZE, 255 * (i % 2)).save(root / "mask" / f"face{i:02d}.png")
    return root


def run_pairs(root, out):
    return main(["eval", "--pred", str(root / "pred"), "--target", str(root / "target"), "--mask",
                 str(root / "mask"), "--out", str(out), "--no-fid", "--no-face-detection"])


def test_pairs_with_a_truncated_prediction(pairs, tmp_path, capsys):
    cf.truncated(pairs / "pred", "face01.png")
    assert run_pairs(pairs, tmp_path / "o") == 2
    line = one_line_error(capsys)
    assert "face01.png" in line and "pred" in line


def test_pairs_with_a_decompression_bomb(pairs, tmp_path, monkeypatch, capsys):
    cf.large(pairs / "target", "face02.png", side=200)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)    # 200 x 200 is more than twice that
    assert run_pairs(pairs, tmp_path / "o") == 2
    line = one_line_error(capsys)
    assert "face02.png" in line and "too large" in line


def test_pairs_out_of_memory_names_the_file(pairs, tmp_path, monkeypatch, capsys):
    import fastgan.data.io as io

    real = io._as_mode

    def exhausted(im, mode):
        if im.filename.endswith("face01.png") and "target" in im.filename:
            raise MemoryError
        return real(im, mode)

    monkeypatch.setattr(io, "_as_mode", exhausted)
    assert run_pairs(pairs, tmp_path / "o") == 2
    line = one_line_error(capsys)
    assert "face01.png" in line and "MemoryError" in line


def test_pairs_with_a_mask_of_another_size(pairs, tmp_path, capsys):
    Image.new("L", (20, 20), 255).save(pairs / "mask" / "face00.png")
    assert run_pairs(pairs, tmp_path / "o") == 2
    line = one_line_error(capsys)
    assert "face00.png" in line and "20x20" in line and "mask" in line


def test_pairs_with_mismatched_names(pairs, tmp_path, capsys):
    (pairs / "target" / "face02.png").rename(pairs / "target" / "other.png")
    assert run_pairs(pairs, tmp_path / "o") == 2
    line = one_line_error(capsys)
    assert "face02" in line and "other" in line


# -- unreadable (permission) files ------------------------------------------------------------

def _deny(monkeypatch, fragment: str):
    """open() refuses files whose path holds ``fragment``, as chmod 000 would for a non-root user."""
    real = builtins.open

    def guarded(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and fragment in os.fspath(file):
            raise PermissionError(13, "Permission denied", os.fspath(file))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)


def test_training_skips_a_file_it_may_not_read(tmp_path, monkeypatch, capsys):
    root = tmp_path / "data"
    cf.good(root, 8)
    cf.good(root, 1, prefix="a_locked")      # sorted first: in the training split
    _deny(monkeypatch, "a_locked00")
    with pytest.warns(SkippedFilesWarning) as record:
        assert main(["train", "pix2pix", "--data", str(root), *TINY, "--out", str(tmp_path / "run")]) == 0
    text = warned(record)
    assert "a_locked00.png" in text and "Permission denied" in text and skipped_counts(text) == 1


def test_eval_stops_at_a_prediction_it_may_not_read(pairs, tmp_path, monkeypatch, capsys):
    _deny(monkeypatch, os.path.join("pred", "face01"))
    assert run_pairs(pairs, tmp_path / "o") == 2
    line = one_line_error(capsys)
    assert "face01.png" in line and "Permission denied" in line


def test_a_real_unreadable_file(tmp_path, capsys):
    root = tmp_path / "data"
    cf.good(root, 3)
    locked = root / "face01.png"
    locked.chmod(0)
    try:
        try:
            locked.open("rb").close()
        except PermissionError:
            pass
        else:
            pytest.skip("this user (root) reads a chmod 000 file: the monkeypatched tests above cover it")
        assert main(["occlude", str(root), str(tmp_path / "o"), "--size", "32"]) == 0
        assert "face01.png" in capsys.readouterr().err
    finally:
        locked.chmod(0o644)
