"""``fastgan eval --pred DIR --target DIR [--mask DIR]`` end to end, and its bad-input errors."""

import base64
import json
import re
import shutil
import warnings

import pytest
import torch

from fastgan.cli import main
from fastgan.data import write_png
from fastgan.metrics import Evaluator, evaluate_pairs, fid, kid
from fastgan.metrics.frechet import SmallSampleWarning
from fastgan.metrics.image import image_metrics
from fastgan.metrics.pairs import load_batch, pair_files


@pytest.fixture(scope="module")
def occluded(tmp_path_factory):
    """A folder written by ``fastgan occlude`` (occluded/, mask/, target/), 12 synthetic faces."""
    root = tmp_path_factory.mktemp("occ")
    assert main(["occlude", "synthetic", str(root), "--kind", "square", "--size", "48", "--limit", "12"]) == 0
    return root


def strict_json(path):
    def refuse(name):
        raise AssertionError(f"{path} holds {name}, which is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


def run_eval(occ, out, *extra):
    return main(["eval", "--pred", str(occ / "occluded"), "--target", str(occ / "target"), "--mask",
                 str(occ / "mask"), "--out", str(out), "--no-fid", *extra])


def test_pairs_end_to_end(occluded, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_eval(occluded, out, "--occlusion", "square") == 0
    m = strict_json(out / "metrics.json")
    for key in ("ssim", "psnr", "masked_ssim", "masked_psnr", "l1", "masked_l1", "ms_ssim", "groups", "count"):
        assert key in m, key
    assert m["count"] == 12 and list(m["groups"]["kind"]) == ["square"]
    assert sum(g["count"] for g in m["groups"]["area"].values()) == 12
    for g in m["groups"]["area"].values():
        assert "masked_ssim" in g and "ssim" in g
    # the numbers are those of the metric functions on the same files
    p, t, k = load_batch(pair_files(occluded / "occluded", occluded / "target", occluded / "mask"))
    direct = image_metrics(p, t, k)
    assert m["ssim"] == pytest.approx(float(direct["ssim"].mean()), rel=1e-6)
    assert m["masked_psnr"] == pytest.approx(float(direct["masked_psnr"].nanmean()), rel=1e-6)
    # outside the mask the occluded image is the target: the full-image error is all in the mask
    assert m["masked_l1"] > m["l1"] > 0
    # the report stands alone: every image is a data URI holding a PNG, also written beside it
    html = (out / "report.html").read_text()
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in sources}
    assert all(b.startswith(b"\x89PNG\r\n\x1a\n") for b in embedded)
    beside = sorted(out.glob("plots/*.png")) + [out / "examples_best.png", out / "examples_worst.png"]
    assert len(beside) >= 4 and all(f.read_bytes() in embedded for f in beside)
    assert "<table>" in html and "masked_ssim" in html and "http" not in html.replace("https://github.com", "")
    rows = (out / "per_image.csv").read_text().splitlines()
    assert len(rows) == 13 and rows[0].startswith("name,kind,ssim")
    assert "report.html" in capsys.readouterr().out


def test_the_evaluator_with_a_feature_network_reports_fid_and_kid(occluded):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 5, stride=3), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    ev = Evaluator(feature_net=net, examples=2, kid_subset_size=8)
    with pytest.warns(SmallSampleWarning):
        result, examples, _ = evaluate_pairs(ev, occluded / "occluded", occluded / "target", occluded / "mask",
                                             batch=5, log=lambda *a: None)
    p, t, _ = load_batch(pair_files(occluded / "occluded", occluded / "target"))
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", SmallSampleWarning)
        expected = fid(net(p), net(t))
        expected_kid = kid(net(p), net(t), subset_size=8)[0]
    assert result["fid"] == pytest.approx(expected, rel=1e-9)
    assert result["kid"] == pytest.approx(expected_kid, rel=1e-9)
    assert result["fid_images"] == 12 and any("fewer than 2048" in n for n in result["notes"])
    assert examples["best_scores"][0] >= examples["worst_scores"][0]


def test_bad_inputs_are_clear_errors(occluded, tmp_path, capsys):
    def error(*args):
        assert main(["eval", *args, "--out", str(tmp_path / "o")]) == 2
        return capsys.readouterr().err

    assert "--pred folder" in error("--pred", str(tmp_path / "nope"), "--target", str(occluded / "target"))
    assert "give CHECKPOINT --data DIR, or --pred DIR and --target DIR" in error("--pred", str(occluded / "target"))
    assert "not both" in error("ck.pt", "--pred", "a", "--target", "b")
    assert "needs --data" in error(str(occluded / "mask" / "synthetic_000000.png"))
    # a prediction without its target, named
    pred = tmp_path / "pred"
    shutil.copytree(occluded / "occluded", pred)
    write_png(pred / "extra_face.png", torch.rand(3, 48, 48))
    assert "extra_face" in error("--pred", str(pred), "--target", str(occluded / "target"))
    # a prediction of the wrong size, named
    (pred / "extra_face.png").unlink()
    write_png(pred / "synthetic_000003.png", torch.rand(3, 32, 32))
    msg = error("--pred", str(pred), "--target", str(occluded / "target"), "--no-fid")
    assert "synthetic_000003.png" in msg and "32x32" in msg
    # FID weights asked for but absent: the message names the file
    msg = error("--pred", str(occluded / "occluded"), "--target", str(occluded / "target"),
                "--inception-weights", str(tmp_path / "pt.pth"))
    assert str(tmp_path / "pt.pth") in msg and "pt_inception-2015-12-05-6726825d.pth" in msg
    # a weights file that is not the published one
    torch.save({"x": torch.zeros(1)}, tmp_path / "fake.pth")
    msg = error("--pred", str(occluded / "occluded"), "--target", str(occluded / "target"),
                "--inception-weights", str(tmp_path / "fake.pth"))
    assert "SHA-256" in msg


def test_without_weights_fid_is_skipped_with_a_note(occluded, tmp_path, monkeypatch):
    monkeypatch.delenv("FASTGAN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    out = tmp_path / "out"
    assert main(["eval", "--pred", str(occluded / "occluded"), "--target", str(occluded / "target"),
                 "--out", str(out), "--no-face-detection", "--examples", "0"]) == 0
    m = strict_json(out / "metrics.json")
    assert "fid" not in m and any("pt_inception-2015-12-05-6726825d.pth" in n for n in m["notes"])
    assert "masked_ssim" not in m and list(m["groups"]) == ["kind"]  # no masks: no masked metrics or area bins


def test_fid_through_the_command_with_a_weights_file(occluded, tmp_path, monkeypatch):
    """The --inception-weights path end to end, with a random-weight file standing in for the real
    one (its hash put in place of the published one)."""
    from fastgan.metrics import inception

    torch.manual_seed(0)
    weights = tmp_path / "pt_inception.pth"
    torch.save(inception.FIDInceptionV3().state_dict(), weights)
    monkeypatch.setattr(inception, "INCEPTION_SHA256", inception.sha256_of(weights))
    small = tmp_path / "small"
    for sub in ("occluded", "target"):
        (small / sub).mkdir(parents=True)
        for f in sorted((occluded / sub).glob("*.png"))[:4]:
            shutil.copy(f, small / sub / f.name)
    out = tmp_path / "out"
    with pytest.warns(SmallSampleWarning):
        assert main(["eval", "--pred", str(small / "occluded"), "--target", str(small / "target"), "--out", str(out),
                     "--inception-weights", str(weights), "--no-face-detection", "--kid-subsets", "2"]) == 0
    m = strict_json(out / "metrics.json")
    assert m["fid"] is not None and m["fid"] >= 0 and m["fid_images"] == 4 and "kid" in m
    assert m["settings"]["inception_weights"]["path"] == str(weights)
    assert any("fewer than 2048" in n for n in m["notes"])
