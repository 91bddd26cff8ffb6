"""Bad input to the SSIM family raises ValueError/TypeError naming the argument, before
any kernel runs."""

import pytest
import torch

import fastgan as fg
from fastgan.losses import MSSSIMLoss, SSIML1Loss, SSIMLoss

FUNCTIONS = {
    "ssim": fg.ssim,
    "ssim_loss": fg.ssim_loss,
    "ssim_map": fg.ssim_map,
    "ms_ssim": fg.ms_ssim,
    "ssim_l1_loss": fg.ssim_l1_loss,
}
MASKED = ["ssim", "ssim_loss", "ssim_l1_loss"]


def _xy(shape=(2, 3, 16, 16), dtype=torch.float32):
    return torch.rand(shape, dtype=dtype), torch.rand(shape, dtype=dtype)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_image_smaller_than_window(name):
    x, y = _xy((2, 3, 8, 30))
    with pytest.raises(ValueError, match=rf"{name}: images of 8x30 are smaller than the 11x11 window"):
        FUNCTIONS[name](x, y)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_mismatched_shapes(name):
    x, _ = _xy()
    with pytest.raises(ValueError, match=r"x and y must have the same shape, got \(2, 3, 16, 16\) and \(2, 3, 16, 15\)"):
        FUNCTIONS[name](x, torch.rand(2, 3, 16, 15))


@pytest.mark.parametrize("name", MASKED + ["psnr"])
@pytest.mark.parametrize("shape", [(2, 2, 16, 16), (1, 1, 16, 16), (2, 1, 16, 15), (2, 16, 16)])
def test_wrong_mask_shape(name, shape):
    x, y = _xy()
    fn = fg.psnr if name == "psnr" else FUNCTIONS[name]
    with pytest.raises(ValueError, match="mask must have shape"):
        fn(x, y, mask=torch.ones(shape))


@pytest.mark.parametrize("name", list(FUNCTIONS) + ["psnr"])
@pytest.mark.parametrize("value", [0, -1.0, float("inf"), float("nan")])
def test_data_range_must_be_positive(name, value):
    x, y = _xy()
    fn = fg.psnr if name == "psnr" else FUNCTIONS[name]
    with pytest.raises(ValueError, match="data_range must be a finite number > 0"):
        fn(x, y, data_range=value)


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("window_size", [10, 1, 17, 0, -3])
def test_window_size_must_be_odd_3_to_15(name, window_size):
    x, y = _xy()
    with pytest.raises(ValueError, match=rf"window_size must be odd, from 3 to 15, got {window_size}"):
        FUNCTIONS[name](x, y, window_size=window_size)


def test_window_size_must_be_an_int():
    x, y = _xy()
    with pytest.raises(TypeError, match="window_size must be an int, got float"):
        fg.ssim(x, y, window_size=11.0)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_unknown_padding(name):
    x, y = _xy()
    with pytest.raises(ValueError, match="padding must be 'valid', 'same' or 'reflect', got 'zeros'"):
        FUNCTIONS[name](x, y, padding="zeros")


@pytest.mark.parametrize("option", ["sigma", "k1", "k2"])
def test_other_constants_must_be_positive(option):
    x, y = _xy()
    with pytest.raises(ValueError, match=f"{option} must be a finite number > 0"):
        fg.ssim(x, y, **{option: 0.0})


def test_unknown_reduction():
    x, y = _xy()
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none'"):
        fg.ssim(x, y, reduction="batchmean")


@pytest.mark.parametrize("name", list(FUNCTIONS) + ["psnr"])
@pytest.mark.parametrize("which", ["x", "y"])
def test_nan_inputs_are_named(name, which):
    x, y = _xy((1, 3, 161, 161) if name == "ms_ssim" else (2, 3, 16, 16))
    (x if which == "x" else y)[0, 1, 5, 6] = float("nan")
    fn = fg.psnr if name == "psnr" else FUNCTIONS[name]
    with pytest.raises(ValueError, match=f"{which} contains NaN or Inf"):
        fn(x, y)


def test_empty_batch_and_bad_types():
    x, y = _xy((0, 3, 16, 16))
    with pytest.raises(ValueError, match="empty batch"):
        fg.ssim(x, y)
    with pytest.raises(TypeError, match="x must be float16, bfloat16, float32 or float64"):
        fg.ssim(torch.zeros(1, 3, 16, 16, dtype=torch.uint8), torch.zeros(1, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(TypeError, match="y must be a torch.Tensor"):
        fg.ssim(torch.rand(1, 3, 16, 16), [[1.0]])
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\)"):
        fg.ssim(torch.rand(3, 16, 16), torch.rand(3, 16, 16))


def test_mask_out_of_range():
    x, y = _xy()
    with pytest.raises(ValueError, match=r"mask weights must lie in \[0, 1\]"):
        fg.ssim(x, y, mask=torch.full((2, 1, 16, 16), 2.0))


def test_ms_ssim_too_small_states_the_minimum_size():
    x, y = _xy((1, 3, 160, 300))
    with pytest.raises(ValueError, match="the smaller side must be at least 161"):
        fg.ms_ssim(x, y)
    x, y = _xy((1, 3, 40, 40))
    with pytest.raises(ValueError, match="at least 65"):
        fg.ms_ssim(x, y, window_size=5, weights=[0.2] * 5)


@pytest.mark.parametrize("weights", [[], [0.5, -0.1], "abc", [True, 1.0]])
def test_ms_ssim_bad_weights(weights):
    x, y = _xy((1, 1, 200, 200))
    with pytest.raises(ValueError, match="weights must be a non-empty sequence of numbers >= 0"):
        fg.ms_ssim(x, y, weights=weights)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, "0.5"])
def test_ssim_l1_alpha_range(alpha):
    x, y = _xy()
    with pytest.raises(ValueError, match="alpha must be a number in"):
        fg.ssim_l1_loss(x, y, alpha=alpha)


def test_modules_check_their_options_at_construction():
    with pytest.raises(ValueError, match="SSIMLoss: window_size must be odd"):
        SSIMLoss(window_size=8)
    with pytest.raises(ValueError, match="MSSSIMLoss: padding must be"):
        MSSSIMLoss(padding="full")
    with pytest.raises(ValueError, match="SSIML1Loss: data_range must be"):
        SSIML1Loss(data_range=-1)
    with pytest.raises(ValueError, match="SSIML1Loss: alpha must be"):
        SSIML1Loss(alpha=2)
    with pytest.raises(ValueError, match="SSIMLoss: reduction must be"):
        SSIMLoss(reduction="avg")


def test_direct_op_calls_are_checked_in_cpp():
    x, y = _xy()
    F = torch.ops.fastgan
    with pytest.raises(RuntimeError, match="window_size must be odd"):
        F.ssim_forward(x, y, None, 4, 1.5, 0.01, 0.03, 1.0, 0, 0, 0.0)
    with pytest.raises(RuntimeError, match="smaller than the 11x11 window"):
        F.ssim_forward(x[..., :8], y[..., :8], None, 11, 1.5, 0.01, 0.03, 1.0, 0, 0, 0.0)
    with pytest.raises(RuntimeError, match="mask must have shape"):
        F.ssim_forward(x, y, torch.ones(2, 2, 16, 16), 11, 1.5, 0.01, 0.03, 1.0, 0, 0, 0.0)
    with pytest.raises(RuntimeError, match="padding code"):
        F.ssim_forward(x, y, None, 11, 1.5, 0.01, 0.03, 1.0, 5, 0, 0.0)
    with pytest.raises(RuntimeError, match="grad must have N \\* C elements"):
        F.ssim_backward(torch.ones(3), x, y, None, 11, 1.5, 0.01, 0.03, 1.0, 0, 0, 0.0, True, True)
    with pytest.raises(RuntimeError, match="grad must have the map's shape"):
        F.ssim_map_backward(torch.ones(2, 3, 16, 16), x, y, 11, 1.5, 0.01, 0.03, 1.0, 0, 0, 0.0, True, True)
