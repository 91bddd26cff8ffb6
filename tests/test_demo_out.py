"""``fastgan demo --out DIR`` starts over in its own folders only: never a user's run."""

from fastgan.cli import main
from fastgan.demo import DEMO_MARKER, _start_over


def test_a_users_run_is_never_removed(tmp_path, capsys):
    run = tmp_path / "my-run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "step-00001000.pt").write_bytes(b"weeks of training")
    assert main(["demo", "--out", str(run), "--steps", "1"]) == 2
    assert "did not write" in capsys.readouterr().err
    assert (run / "checkpoints" / "step-00001000.pt").read_bytes() == b"weeks of training"


def test_an_earlier_demo_is_cleared(tmp_path):
    out = tmp_path / "demo"
    _start_over(out)                  # a new folder: marked as the demo's
    assert (out / DEMO_MARKER).is_file()
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "step-00000600.pt").write_bytes(b"old demo")
    _start_over(out)
    assert not (out / "checkpoints").exists() and (out / DEMO_MARKER).is_file()
