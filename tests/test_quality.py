"""`fastgan quality`: the rows, their commands, the scores and metrics.json (on the shared
faces: skipped where they are absent), and its one-line errors."""

import json

import pytest
import torch

from fastgan.cli import main
from fastgan.quality import ROWS, TABLES
from fastgan.quality.features import RandomFeatures
from fastgan.quality.run import train_command, train_options
from fastgan.train import TrainConfig
from conftest import one_line_error


def test_every_row_is_a_valid_configuration(tmp_path):
    for name, row in ROWS.items():
        cfg = TrainConfig(**train_options(row, "synthetic", tmp_path / name))
        cfg.resolved("cpu")          # raises naming the option if a row is malformed
        assert name in " ".join(TABLES["all"])


def test_default_rows_pass_no_options():
    for name in ("pix2pix-default-16", "pix2pix-default-8", "mask-removal-default-3"):
        assert ROWS[name].options == {}
        assert "--recon-loss" not in train_command(ROWS[name], "DIR")


def test_lever_rows_change_one_thing_against_their_base():
    for row in ROWS.values():
        if row.against is None:
            continue
        base = ROWS[row.against].options
        changed = {k for k in set(base) | set(row.options) if base.get(k) != row.options.get(k)}
        if changed == {"ngf", "ndf"}:    # the width: one lever, both networks
            changed = {"width"}
        assert len(changed) == 1, (row.name, changed)


def test_list_prints_each_row_with_its_command(capsys):
    assert main(["quality", "--table", "pix2pix", "--list"]) == 0
    out = capsys.readouterr().out
    assert "pix2pix-default-16" in out and "fastgan train pix2pix" in out and "--minutes 16" in out


@pytest.mark.parametrize("argv, message", [
    (["--rows", "nope", "--data", "."], "unknown row(s) nope"),
    (["--data", "/no/such/folder"], "is not a folder"),
    (["--minutes", "1", "--steps", "2", "--data", "."], "--minutes or --steps, not both"),
])
def test_bad_input_is_one_line(capsys, argv, message):
    assert main(["quality", *argv]) == 2
    assert message in one_line_error(capsys)


def test_random_features_are_fixed_and_tell_sets_apart():
    a, b = RandomFeatures(), RandomFeatures()
    x = torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(a(x), b(x))
    assert a(x).shape == (4, 256)
    assert not torch.allclose(a(x), a(x.flip(-1) * 0.5))


def test_quality_rows_train_score_and_resume(faces_dir, tmp_path, capsys, one_thread):
    rows = "completion-default-3,pix2pix-default-8,simgan-default-3,vae-default-3"
    argv = ["quality", "--rows", rows, "--steps", "2", "--limit", "16", "--data", str(faces_dir),
            "--out", str(tmp_path)]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert list(summary["rows"]) == sorted(rows.split(","))
    p2p = summary["rows"]["pix2pix-default-8"]
    assert p2p["steps"] == 2 and p2p["budget"] == "2 steps" and p2p["metrics"]["images"] == 16
    assert p2p["metrics"]["mask_given"] is False     # the default model predicts its mask
    for key in ("ssim", "psnr", "ssim_occluded", "psnr_occluded"):
        assert 0 < p2p["metrics"][key] < 100
    completion = summary["rows"]["completion-default-3"]["metrics"]
    assert completion["mask_given"] is True and "kid_random" in completion and "fid" not in completion
    vae = summary["rows"]["vae-default-3"]["metrics"]
    assert 0 < vae["ssim_face"] <= 1 and 0 < vae["l1_face"] < 1
    sim = summary["rows"]["simgan-default-3"]["metrics"]
    assert sim["images"] == 16 and sim["selfreg_l1"] >= 0 and "kid_unrefined" in sim
    # a second call keeps the scored rows instead of training them again
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().out.count("scored before, kept") == 4
    # and --report prints them as the README's tables
    assert main(["quality", "--report", "--out", str(tmp_path)]) == 0
    report = capsys.readouterr().out
    assert "| defaults (`pix2pix-default-8`) | 2 steps | 2 |" in report and "KID refined" in report
    assert "KID (random features)" in report


def test_report_without_a_run_is_one_line(tmp_path, capsys):
    assert main(["quality", "--report", "--out", str(tmp_path)]) == 2
    assert "metrics.json does not exist" in one_line_error(capsys)
