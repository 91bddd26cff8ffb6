// Shared conventions of the InstanceNorm + activation kernels (CPU and CUDA):
// activation codes and functions, input checks that guard the kernels, and the
// layout normalisation (dense NCHW or dense NHWC, never a copy of a dense input).
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <optional>

#if defined(__CUDACC__)
#define FASTGAN_NORM_HD __host__ __device__ __forceinline__
#else
#define FASTGAN_NORM_HD inline
#endif

namespace fastgan {

// activation code of the instance_norm_act ops (fastgan/ops/instance_norm_act.py).
enum NormActivation : int64_t { kActIdentity = 0, kActLeakyReLU = 1 };

// The activation of z = gamma * xhat + beta, and its derivative times the upstream
// gradient g. Leaky ReLU with slope 0 is ReLU; at z == 0 the slope applies, as in
// torch's leaky_relu_backward (z > 0 ? g : g * slope) and threshold_backward for ReLU.
// Both are a product with a selected factor, `one` (== 1) or slope: a select of two
// values vectorises on the CPU, whereas `z > 0 ? z : z * slope` becomes a branch under
// -ftrapping-math. CPU loops pass a `one` the compiler cannot see is 1 (else it folds
// z * 1 and branches again); CUDA code passes T(1).
template <int ACT, typename T>
FASTGAN_NORM_HD T norm_activation(T z, T one, T slope) {
  if constexpr (ACT == kActLeakyReLU) {
    return z * (z > T(0) ? one : slope);
  } else {
    return z;
  }
}

template <int ACT, typename T>
FASTGAN_NORM_HD T norm_activation_grad(T z, T g, T one, T slope) {
  if constexpr (ACT == kActLeakyReLU) {
    return g * (z > T(0) ? one : slope);
  } else {
    return g;
  }
}

// x normalised for the kernels plus the optional affine parameters in opmath
// (float32, float64 for float64 inputs), contiguous; undefined when absent.
struct NormInput {
  at::Tensor x, weight, bias;
  int64_t n = 0, c = 0, hw = 0;
  bool nhwc = false;
  at::MemoryFormat format() const {
    return nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  }
  at::ScalarType opmath() const {
    return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  }
};

inline void check_norm_activation(const char* op, int64_t activation) {
  TORCH_CHECK(activation == kActIdentity || activation == kActLeakyReLU, op,
              ": activation code must be 0 (identity) or 1 (leaky ReLU), got ", activation);
}

inline at::Tensor norm_affine_param(const char* op, const char* name,
                                    const std::optional<at::Tensor>& p, const at::Tensor& x,
                                    at::ScalarType opmath) {
  if (!p.has_value() || !p->defined()) return at::Tensor();
  TORCH_CHECK(p->dim() == 1 && p->size(0) == x.size(1), op, ": ", name,
              " must have shape (C,) = (", x.size(1), ",), got ", p->sizes());
  TORCH_CHECK(at::isFloatingType(p->scalar_type()), op, ": ", name, " must be floating");
  TORCH_CHECK(p->device() == x.device(), op, ": ", name, " must be on x's device ", x.device());
  return p->to(opmath).contiguous();
}

// Checks what the Python layer already validated, so that a direct torch.ops call
// cannot feed garbage to a kernel. Copies x only when it is in neither dense layout.
inline NormInput prepare_norm_input(const char* op, const at::Tensor& x,
                                    const std::optional<at::Tensor>& weight,
                                    const std::optional<at::Tensor>& bias) {
  TORCH_CHECK(x.dim() == 4, op, ": x must be 4-D (N, C, H, W), got ", x.dim(), "-D");
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), op, ": x must be a floating tensor, got ",
              x.scalar_type());
  TORCH_CHECK(x.size(2) * x.size(3) > 1, op,
              ": Expected more than 1 spatial element when training, got input size ",
              x.sizes());
  NormInput in;
  in.nhwc = !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
  in.x = x.contiguous(in.format());
  in.n = x.size(0);
  in.c = x.size(1);
  in.hw = x.size(2) * x.size(3);
  in.weight = norm_affine_param(op, "weight", weight, x, in.opmath());
  in.bias = norm_affine_param(op, "bias", bias, x, in.opmath());
  return in;
}

}  // namespace fastgan
