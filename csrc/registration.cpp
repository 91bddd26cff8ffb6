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
  // Per pixel (dim 1): the loss and its gradients for an upstream gradient of one, in
  // one pass (CPU only, as masked_loss_forward_with_grad).
  m.def("cosine_loss_forward_with_grad(Tensor x, Tensor y, Tensor? mask, int dim, float eps, "
        "int reduction, bool need_x, bool need_y) -> (Tensor, Tensor, Tensor)");

  // SSIM family (see csrc/cpu/ssim.cpp).
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
