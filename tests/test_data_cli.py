"""``fastgan occlude``: the three folders, binary masks, identical bytes for the same seed,
the grid of every kind, and clear errors."""

import numpy as np
import pytest
import torch

Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed")

from fastgan.cli import main  # noqa: E402
from fastgan.data import PairedFolder  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def src(tmp_path):
    root = tmp_path / "src"
    (root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.jpg", "b.png", "sub/c.webp"):
        Image.fromarray(rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)).save(root / name)
    (root / "broken.jpg").write_text("not an image")
    return root


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


@pytest.mark.parametrize("kind", ["nose-mask", "mix"])
def test_occlude_writes_three_folders_with_same_bytes(src, tmp_path, kind):
    with pytest.warns(UserWarning, match="skipped 1"):
        assert main(["occlude", str(src), str(tmp_path / "o1"), "--kind", kind, "--size", "32", "--seed", "7"]) == 0
    with pytest.warns(UserWarning):
        assert main(["occlude", str(src), str(tmp_path / "o2"), "--kind", kind, "--size", "32", "--seed", "7"]) == 0
    one, two = _files(tmp_path / "o1"), _files(tmp_path / "o2")
    names = ["a.png", "b.png", "sub/c.png"]
    assert sorted(one) == sorted(f"{d}/{n}" for d in ("mask", "occluded", "target") for n in names)
    assert one == two  # byte-identical
    for n in names:
        mask = np.asarray(Image.open(tmp_path / "o1" / "mask" / n))
        occluded = np.asarray(Image.open(tmp_path / "o1" / "occluded" / n))
        target = np.asarray(Image.open(tmp_path / "o1" / "target" / n))
        assert mask.shape == (32, 32) and set(np.unique(mask)) <= {0, 255} and mask.max() == 255
        assert occluded.shape == target.shape == (32, 32, 3)
        assert (occluded[mask == 0] == target[mask == 0]).all()
    with pytest.warns(UserWarning):
        main(["occlude", str(src), str(tmp_path / "o3"), "--kind", kind, "--size", "32", "--seed", "8"])
    assert _files(tmp_path / "o3") != one
    # the output is the paired layout the datasets read back
    pairs = PairedFolder(tmp_path / "o1", size=32)
    assert len(pairs) == 3 and set(pairs[0]) == {"input", "target", "mask"}
    written = np.asarray(Image.open(tmp_path / "o1" / "mask" / "a.png"))
    assert torch.equal(pairs[0]["mask"][0], torch.from_numpy(written.copy()))


def test_occlude_synthetic_limit_square_size_and_grid(tmp_path, capsys):
    grid = tmp_path / "grid.png"
    assert main(["occlude", "synthetic", str(tmp_path / "out"), "--kind", "square", "--size", "40",
                 "--limit", "5", "--square-size", "0.5", "--grid", str(grid), "--grid-count", "3"]) == 0
    masks = sorted((tmp_path / "out" / "mask").glob("*.png"))
    assert len(masks) == 5
    assert all((np.asarray(Image.open(m)) == 255).sum() == 400 for m in masks)
    img = Image.open(grid)
    # 3 columns; rows: clean + 7 kinds x (occluded, mask); 2-pixel padding
    assert img.size == (3 * 42 + 2, 15 * 42 + 2)
    out = capsys.readouterr().out
    assert "occlude: 5 images" in out and "grid:" in out


def test_occlude_errors(tmp_path, capsys):
    assert main(["occlude", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["occlude", "synthetic", str(tmp_path / "out"), "--kind", "scarf"])
    assert main(["occlude", "synthetic", str(tmp_path / "out"), "--kind", "blur", "--square-size", "0.3"]) == 2
    assert "--square-size applies" in capsys.readouterr().err
