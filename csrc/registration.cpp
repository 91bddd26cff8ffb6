// Every fastgan op schema lives here, in one TORCH_LIBRARY block.
// Kernels register implementations per device in cpu/ and cuda/; the
// Python side (fastgan/ops) adds fake tensors and autograd.
//
// Integer codes shared with Python (fastgan/ops/_codes.py):
//   reduction: 0 = none (per image), 1 = mean, 2 = sum
//   kind (masked_loss): 0 = L1, 1 = squared error, 2 = Charbonnier
//   dim  (cosine_loss): 0 = per image over (C, H, W), 1 = per pixel over C
#include <torch/library.h>

TORCH_LIBRARY(fastgan, m) {
  // Masked pointwise reconstruction losses (L1, MSE, Charbonnier).
  // Returns the reduced loss and the per-image sum of broadcast mask weights
  // (float32, shape (N,)), which the backward needs for the mean.
  m.def("masked_loss_forward(Tensor x, Tensor y, Tensor? mask, int kind, float eps, "
        "int reduction) -> (Tensor, Tensor)");
  // Gradient with respect to x; the gradient with respect to y is its negation.
  m.def("masked_loss_backward(Tensor grad, Tensor x, Tensor y, Tensor? mask, "
        "Tensor weight_sum, int kind, float eps, int reduction) -> Tensor");
  // The loss and d loss / d x for an upstream gradient of one, in one pass (CPU only:
  // the backward then scales the stored gradient instead of reading x and y again).
  m.def("masked_loss_forward_with_grad(Tensor x, Tensor y, Tensor? mask, int kind, float eps, "
        "int reduction) -> (Tensor, Tensor)");

  // Cosine-similarity loss 1 - cos(w*x, w*y), per image or per pixel.
  // Per image, also returns (N, 3) float32 statistics [x.y, |x|^2, |y|^2];
  // per pixel they are recomputed in the backward and an empty tensor is returned.
  m.def("cosine_loss_forward(Tensor x, Tensor y, Tensor? mask, int dim, float eps, "
        "int reduction) -> (Tensor, Tensor)");
  // Gradients for x and y; an output not asked for is an empty tensor.
  m.def("cosine_loss_backward(Tensor grad, Tensor x, Tensor y, Tensor? mask, Tensor stats, "
        "int dim, float eps, int reduction, bool need_x, bool need_y) -> (Tensor, Tensor)");
  // The loss and its gradients for an upstream gradient of one, without a second trip
  // to memory: one pass per pixel (dim 1), image by image per image (dim 0). CPU only,
  // as masked_loss_forward_with_grad.
  m.def("cosine_loss_forward_with_grad(Tensor x, Tensor y, Tensor? mask, int dim, float eps, "
        "int reduction, bool need_x, bool need_y) -> (Tensor, Tensor, Tensor)");

  // SSIM family (see csrc/cpu/ssim.cpp; maths in csrc/common/ssim_common.h). x, y: (N, C, H, W)
  // images or (N, C, D, H, W) volumes (the window along all three axes, cpu/ssim_volume.cpp);
  // masks and maps of the same rank; a "plane" is one (image, channel) plane or volume.
  // Codes: padding 0 = valid, 1 = zeros ("same"), 2 = reflect; stat 0 = SSIM,
  // 1 = contrast-structure (MS-SSIM), 2 = alpha (1 - SSIM) + (1 - alpha) G*|x - y| / data_range.
  // Per (image, channel) plane: the sum over the map of mask weight * stat and the sum of
  // the weights (both (N, C), float32, or float64 for float64 inputs).
  m.def("ssim_forward(Tensor x, Tensor y, Tensor? mask, int window_size, float sigma, float k1, "
        "float k2, float data_range, int padding, int stat, float alpha) -> (Tensor, Tensor)");
  // Gradients of sum_{n,c} grad[n, c] * sums[n, c]; an output not asked for is empty.
  m.def("ssim_backward(Tensor grad, Tensor x, Tensor y, Tensor? mask, int window_size, "
        "float sigma, float k1, float k2, float data_range, int padding, int stat, float alpha, "
        "bool need_x, bool need_y) -> (Tensor, Tensor)");
  // The forward's sums and the gradients for grad = grad_scale on every plane, in one
  // sweep (CPU only: the autograd backward then rescales the stored gradients per plane,
  // or hands them over as they are when the upstream gradient is grad_scale).
  m.def("ssim_forward_with_grad(Tensor x, Tensor y, Tensor? mask, int window_size, float sigma, "
        "float k1, float k2, float data_range, int padding, int stat, float alpha, bool need_x, "
        "bool need_y, float grad_scale) -> (Tensor, Tensor, Tensor, Tensor)");
  // The per-pixel map (N, C, [D',] H', W') in x's dtype, and its vector-Jacobian product.
  m.def("ssim_map_forward(Tensor x, Tensor y, int window_size, float sigma, float k1, float k2, "
        "float data_range, int padding, int stat, float alpha) -> Tensor");
  m.def("ssim_map_backward(Tensor grad, Tensor x, Tensor y, int window_size, float sigma, "
        "float k1, float k2, float data_range, int padding, int stat, float alpha, bool need_x, "
        "bool need_y) -> (Tensor, Tensor)");
  // -- end of SSIM family --

  // InstanceNorm + activation family (see csrc/cpu/instance_norm_act.cpp).
  // y = act(weight * (x - mean) * rstd + bias) per (n, c) over H x W (biased variance);
  // activation: 0 = identity, 1 = leaky ReLU with negative_slope (0: ReLU). Returns y in
  // x's layout and mean, rstd: (N, C) float32 (float64 for float64 x).
  m.def("instance_norm_act_forward(Tensor x, Tensor? weight, Tensor? bias, float eps, "
        "float negative_slope, int activation) -> (Tensor, Tensor, Tensor)");
  // Gradients for x (an empty tensor unless need_x), weight and bias (empty when absent),
  // recomputing the pre-activation from x and the saved mean, rstd.
  m.def("instance_norm_act_backward(Tensor grad_y, Tensor x, Tensor? weight, Tensor? bias, "
        "Tensor mean, Tensor rstd, float negative_slope, int activation, bool need_x) "
        "-> (Tensor, Tensor, Tensor)");
  // -- end of InstanceNorm family --
}
