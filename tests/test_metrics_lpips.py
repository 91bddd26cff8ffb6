"""LPIPS (fastgan.metrics.lpips) from one file holding backbone and linear layers."""

import pytest
import torch

from fastgan.metrics.lpips import LPIPS, load_lpips


@pytest.mark.parametrize("kind,first_conv", [("alex", (64, 3, 11, 11)), ("vgg", (64, 3, 3, 3))])
def test_a_combined_file_round_trips_and_scores(kind, first_conv, tmp_path):
    torch.manual_seed(0)
    model = LPIPS(kind)
    for i in range(5):  # the published linear weights are >= 0 (a distance)
        getattr(model, f"lin{i}").model[1].weight.data.abs_()
    state = model.state_dict()
    # the lpips package's key names: torchvision layer indices inside the slices, lin dropout at 0
    assert tuple(state["net.slice1.0.weight"].shape) == first_conv
    assert [tuple(state[f"lin{i}.model.1.weight"].shape)[:2] for i in range(5)] == [
        (1, c) for c in ((64, 192, 384, 256, 256) if kind == "alex" else (64, 128, 256, 512, 512))]
    path = tmp_path / f"lpips_{kind}.pth"
    torch.save({**state, "scaling_layer.shift": torch.zeros(1, 3, 1, 1)}, path)  # as LPIPS().state_dict() has
    loaded = load_lpips(path)
    assert loaded.kind == kind
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    d = loaded(x, y)
    assert d.shape == (2,) and torch.all(d > 0)
    assert torch.all(loaded(x, x) == 0)


def test_a_file_with_only_the_linear_layers_is_refused_with_the_recipe(tmp_path):
    lin_only = {k: v for k, v in LPIPS("alex").state_dict().items() if k.startswith("lin")}
    path = tmp_path / "alex.pth"
    torch.save(lin_only, path)
    with pytest.raises(ValueError, match="only the LPIPS linear layers.*lpips.LPIPS"):
        load_lpips(path)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_lpips(tmp_path / "missing.pth")
