"""``fastgan eval CHECKPOINT --data DIR``: fixed-seed occlusions -> reconstruction -> metrics, with a
fake reconstructor (the contract of fastgan.train.inference), and once with a real 2-step checkpoint."""

import json

import pytest

import fastgan.metrics.cli as eval_cli
from fastgan.cli import main
from fastgan.metrics.evaluate import ALL_KINDS


class FakeReconstructor:
    """Fills the occluded region with the mean colour of the rest of the image."""

    size, recipe, occlusion, config = 32, "fake", "square", {}

    def __init__(self):
        self.calls = []

    def __call__(self, occluded, mask):
        assert occluded.shape[1:] == (3, 32, 32) and mask.shape[1:] == (1, 32, 32)
        self.calls.append(occluded.shape[0])
        keep = 1 - mask
        mean = (occluded * keep).sum((2, 3), keepdim=True) / keep.sum((2, 3), keepdim=True).clamp_min(1)
        return occluded * keep + mean * mask


@pytest.fixture
def fake(monkeypatch, tmp_path):
    rec = FakeReconstructor()
    monkeypatch.setattr(eval_cli, "_load_reconstructor", lambda path, device: rec)
    ckpt = tmp_path / "fake.pt"
    ckpt.write_bytes(b"")
    return rec, ckpt


def run(ckpt, out, *extra):
    return main(["eval", str(ckpt), "--data", "synthetic", "--limit", "10", "--out", str(out), "--no-fid",
                 "--no-face-detection", "--device", "cpu", *extra])


def test_the_checkpoints_kind_by_default(fake, tmp_path):
    rec, ckpt = fake
    assert run(ckpt, tmp_path / "a", "--batch", "4") == 0
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert list(m["groups"]["kind"]) == ["square"] and m["count"] == 10
    assert m["source"]["mode"] == "checkpoint" and m["source"]["recipe"] == "fake"
    assert rec.calls == [4, 4, 2]
    assert 0 < m["masked_ssim"] < m["ssim"] < 1  # the fill is worse inside the mask than outside


def test_all_kinds_and_runs_that_compare_image_for_image(fake, tmp_path):
    _, ckpt = fake
    assert run(ckpt, tmp_path / "a", "--occlusion", "all", "--batch", "3") == 0
    assert run(ckpt, tmp_path / "b", "--occlusion", "all", "--batch", "16") == 0
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    kinds = a["groups"]["kind"]
    assert list(kinds) == list(ALL_KINDS) and all(g["count"] == 10 for g in kinds.values())
    assert kinds["full"]["mask_area"] > kinds["strokes"]["mask_area"]
    # the same masks whatever the batch size: identical per-image results
    assert (tmp_path / "a" / "per_image.csv").read_text() == (tmp_path / "b" / "per_image.csv").read_text()
    # a single kind sees the same masks as in the all-kinds run
    assert run(ckpt, tmp_path / "c", "--occlusion", "blur") == 0
    c = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert c["masked_ssim"] == pytest.approx(kinds["blur"]["masked_ssim"], rel=1e-12)
    # another seed, other masks
    assert run(ckpt, tmp_path / "d", "--occlusion", "blur", "--seed", "1") == 0
    d = json.loads((tmp_path / "d" / "metrics.json").read_text())
    assert d["masked_ssim"] != c["masked_ssim"]


def test_checkpoint_mode_errors(fake, tmp_path, capsys):
    _, ckpt = fake
    assert main(["eval", str(tmp_path / "missing.pt"), "--data", "synthetic", "--out", str(tmp_path / "o")]) == 2
    assert "missing.pt does not exist" in capsys.readouterr().err
    assert main(["eval", str(ckpt), "--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "o")]) == 2
    assert "--data folder" in capsys.readouterr().err


@pytest.mark.slow
def test_a_trained_checkpoint_end_to_end(tmp_path):
    """2 training steps with ``fastgan train``, then ``fastgan eval`` on its checkpoint."""
    run_dir = tmp_path / "run"
    code = main(["train", "pix2pix", "--data", "synthetic", "--size", "32", "--batch", "4", "--steps", "2",
                 "--out", str(run_dir), "--no-compile", "--synthetic-n", "16", "--val-images", "8", "--ngf", "8",
                 "--ndf", "8", "--no-progress", "--samples", "4", "--device", "cpu"])
    assert code == 0
    out = tmp_path / "eval"
    assert main(["eval", str(run_dir / "checkpoints"), "--data", "synthetic", "--limit", "8", "--out", str(out),
                 "--no-fid", "--no-face-detection", "--device", "cpu"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["source"]["recipe"] == "pix2pix" and m["count"] == 8
    assert list(m["groups"]["kind"]) == ["nose-mask"]  # pix2pix's default occlusion, from the checkpoint
    assert 0 <= m["masked_ssim"] <= 1 and (out / "report.html").is_file()
