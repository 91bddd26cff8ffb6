"""Bad input raises ValueError/TypeError naming the argument, before any kernel runs."""

import pytest
import torch

import fastgan as fg

LOSSES = [fg.masked_l1, fg.masked_mse, fg.masked_charbonnier, fg.cosine_similarity_loss]


def _xy(shape=(2, 3, 8, 8), dtype=torch.float32):
    return torch.rand(shape, dtype=dtype), torch.rand(shape, dtype=dtype)


@pytest.mark.parametrize("fn", LOSSES)
def test_shape_mismatch(fn):
    x, _ = _xy()
    with pytest.raises(ValueError, match=r"x and y must have the same shape, got \(2, 3, 8, 8\) and \(2, 3, 4, 8\)"):
        fn(x, torch.rand(2, 3, 4, 8))


@pytest.mark.parametrize("fn", LOSSES)
@pytest.mark.parametrize("shape", [(2, 1, 8, 4), (2, 2, 8, 8), (1, 1, 8, 8), (2, 8, 8)])
def test_wrong_mask_shape(fn, shape):
    x, y = _xy()
    with pytest.raises(ValueError, match="mask must have shape"):
        fn(x, y, torch.ones(shape))


@pytest.mark.parametrize("fn", LOSSES)
def test_integer_dtype(fn):
    x = torch.randint(0, 255, (2, 3, 8, 8), dtype=torch.uint8)
    with pytest.raises(TypeError, match="x must be float16, bfloat16, float32 or float64, got torch.uint8"):
        fn(x, x)


def test_mixed_dtypes():
    x, y = _xy()
    with pytest.raises(TypeError, match="same dtype"):
        fg.masked_l1(x, y.double())


def test_uint8_mask_is_rejected_with_a_hint():
    x, y = _xy()
    with pytest.raises(TypeError, match="mask > 127"):
        fg.masked_l1(x, y, torch.full((2, 1, 8, 8), 255, dtype=torch.uint8))


def test_mask_out_of_range():
    x, y = _xy()
    with pytest.raises(ValueError, match=r"mask weights must lie in \[0, 1\]"):
        fg.masked_mse(x, y, torch.full((2, 1, 8, 8), 255.0))


@pytest.mark.parametrize("fn", LOSSES + [fg.self_regularization_loss])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("which", ["x", "y"])
@pytest.mark.parametrize("reduction", ["default", "none"])
def test_nan_inf_inputs_are_named(fn, bad, which, reduction):
    """A scalar loss and a per-image one (reduction "none") take different checks."""
    if reduction == "none" and fn is fg.self_regularization_loss:
        pytest.skip("self-regularisation has no reduction argument")
    x, y = _xy()
    (x if which == "x" else y)[1, 2, 3, 4] = bad
    name = {"x": "x", "y": "y"}[which]
    if fn is fg.self_regularization_loss:
        name = {"x": "refined", "y": "synthetic"}[which]
    kwargs = {} if reduction == "default" else {"reduction": "none"}
    with pytest.raises(ValueError, match=f"{name} contains NaN or Inf"):
        fn(x, y, **kwargs)


def test_nan_in_mask_is_named():
    x, y = _xy()
    mask = torch.ones(2, 1, 8, 8)
    mask[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="mask"):
        fg.masked_l1(x, y, mask)


def test_nan_checks_can_be_disabled(monkeypatch):
    monkeypatch.setenv("FASTGAN_CHECKS", "0")
    x, y = _xy()
    x[0, 0, 0, 0] = float("nan")
    assert torch.isnan(fg.masked_l1(x, y))


@pytest.mark.parametrize("fn", LOSSES)
def test_empty_batch(fn):
    with pytest.raises(ValueError, match="empty batch"):
        fn(torch.rand(0, 3, 8, 8), torch.rand(0, 3, 8, 8))


@pytest.mark.parametrize("fn", LOSSES)
def test_unknown_reduction(fn):
    x, y = _xy()
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        fn(x, y, reduction="avg")


def test_not_a_tensor():
    x, _ = _xy()
    with pytest.raises(TypeError, match="y must be a torch.Tensor, got ndarray"):
        fg.masked_l1(x, x.numpy())


def test_three_dimensional_input():
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\)"):
        fg.masked_l1(torch.rand(3, 8, 8), torch.rand(3, 8, 8))


def test_bad_eps_and_dim():
    x, y = _xy()
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        fg.masked_charbonnier(x, y, eps=0)
    with pytest.raises(ValueError, match="dim must be None"):
        fg.cosine_similarity_loss(x, y, dim=2)


def test_direct_op_call_cannot_reach_the_kernel_with_garbage():
    if not fg.build_info()["cpu_kernels"]:
        pytest.skip("the compiled extension fastgan._C is not built")
    x, y = _xy()
    with pytest.raises(RuntimeError, match="same shape"):
        torch.ops.fastgan.masked_loss_forward(x, y[:, :, :4], None, 0, 0.0, 1)
    with pytest.raises(RuntimeError, match="kind code"):
        torch.ops.fastgan.masked_loss_forward(x, y, None, 7, 0.0, 1)
    with pytest.raises(RuntimeError, match="reduction code"):
        torch.ops.fastgan.cosine_loss_forward(x, y, None, 0, 1e-8, 5)
