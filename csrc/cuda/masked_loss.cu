// CUDA kernels of the masked pointwise losses (L1, squared error, Charbonnier);
// the semantics are those of csrc/cpu/masked_loss.cpp.
//
// Memory bound, so the design counts bytes (S = N*C*H*W elements of b bytes):
//   forward:  reads x, y and the mask once (2S b, + S b full mask, + S/C b pixel
//             mask), writes 2 sums per (image, chunk); a one-block kernel then
//             writes the loss and weight_sum.
//   backward: reads x, y, the mask, writes grad_x (3S b + mask), in one pass.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "common/pointwise_loss.h"
#include "cuda/loss_kernels.cuh"

namespace fastgan::cuda {
namespace {

// acc += {w * e(x - y), w}
template <int KIND, typename T>
struct MaskedSums {
  static constexpr int K = 2;
  T eps2;
  __device__ __forceinline__ void operator()(T (&acc)[K], T x, T y, T w) const {
    acc[0] += w * pointwise_error<KIND>(x - y, eps2);
    acc[1] += w;
  }
};

template <typename scalar_t>
struct MaskedFinish {
  using T = opmath_t<scalar_t>;
  static constexpr int kTotals = 2;
  scalar_t* loss;
  T* weight_sum;
  int64_t reduction;
  __device__ void image(int64_t i, const double (&s)[2], double (&tot)[2]) const {
    weight_sum[i] = T(s[1]);
    if (reduction == kNone) loss[i] = to_scalar<scalar_t>(s[1] > 0.0 ? s[0] / s[1] : 0.0);
    tot[0] += s[0];
    tot[1] += s[1];
  }
  __device__ void total(const double (&t)[2]) const {
    if (reduction == kNone) return;
    loss[0] = to_scalar<scalar_t>(reduction == kSum ? t[0] : (t[1] > 0.0 ? t[0] / t[1] : 0.0));
  }
};

// grad_x = scale * w * e'(x - y), scale = d loss / d (w e) for the image.
template <int KIND, typename T>
struct MaskedGrad {
  struct Coef {
    T scale, eps2;
    __device__ __forceinline__ void operator()(T x, T y, T w, T& gx, T& gy) const {
      gx = scale * w * pointwise_error_grad<KIND>(x - y, eps2);
      gy = T(0);  // unused: grad_y = -grad_x is left to the caller
    }
  };
  AnyFloat grad, weight_sum;
  int64_t n, reduction;
  T eps2;
  // Warp 0 of each block; the mean needs the batch's weight total, a short
  // fixed-order sum over N values from L2 rather than another launch.
  __device__ void prepare(uint32_t img, int lane, Coef& c) const {
    double scale;
    if (reduction == kMean) {
      double total = 0.0;
      for (int64_t i = lane; i < n; i += 32) total += weight_sum[i];
      for (int off = 16; off > 0; off /= 2) total += __shfl_xor_sync(0xffffffffu, total, off);
      scale = total > 0.0 ? grad[0] / total : 0.0;
    } else if (reduction == kNone) {
      const double w = weight_sum[img];
      scale = w > 0.0 ? grad[img] / w : 0.0;
    } else {
      scale = grad[0];
    }
    if (lane == 0) c = Coef{T(scale), eps2};
  }
};

template <typename Fn>
void dispatch_kind(int64_t kind, Fn&& fn) {
  switch (kind) {
    case kL1: fn(std::integral_constant<int, kL1>{}); break;
    case kSquared: fn(std::integral_constant<int, kSquared>{}); break;
    case kCharbonnier: fn(std::integral_constant<int, kCharbonnier>{}); break;
    default: TORCH_CHECK(false, "masked_loss: kind code must be 0, 1 or 2, got ", kind);
  }
}

ImageBatch prepare(const char* op, const at::Tensor& x, const at::Tensor& y,
                   const std::optional<at::Tensor>& mask, int64_t reduction) {
  check_reduction(op, reduction);
  return prepare_aligned_images(op, x, y, mask);
}

std::tuple<at::Tensor, at::Tensor> masked_loss_forward(const at::Tensor& x_in,
                                                       const at::Tensor& y_in,
                                                       const std::optional<at::Tensor>& mask,
                                                       int64_t kind, double eps,
                                                       int64_t reduction) {
  constexpr const char* op = "masked_loss_forward";
  const c10::cuda::CUDAGuard guard(x_in.device());
  const ImageBatch b = prepare(op, x_in, y_in, mask, reduction);
  auto loss = empty_loss(b, reduction);
  auto weight_sum = at::empty({b.n}, b.x.options().dtype(opmath_type(b)));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b.x.scalar_type(), op, [&] {
    using T = opmath_t<scalar_t>;
    const FlatShape s = flat_shape<scalar_t>(b, op);
    auto part = at::empty({s.blocks(), 2}, weight_sum.options());
    const scalar_t* m = mask_data<scalar_t>(b);
    if (s.blocks() > 0) {
      dispatch_kind(kind, [&](auto kc) {
        dispatch_flat_mask(b, [&](auto mc) {
          flat_partials_kernel<scalar_t, decltype(mc)::value>
              <<<s.blocks(), kThreads, 0, stream>>>(
                  b.x.const_data_ptr<scalar_t>(), b.y.const_data_ptr<scalar_t>(), m, s,
                  MaskedSums<decltype(kc)::value, T>{T(eps * eps)}, part.mutable_data_ptr<T>());
          C10_CUDA_KERNEL_LAUNCH_CHECK();
        });
      });
    }
    launch_finish<2, T>(part, b.n, s.chunks,
                        MaskedFinish<scalar_t>{loss.mutable_data_ptr<scalar_t>(),
                                               weight_sum.mutable_data_ptr<T>(), reduction},
                        stream);
  });
  return {loss, weight_sum};
}

at::Tensor masked_loss_backward(const at::Tensor& grad, const at::Tensor& x_in,
                                const at::Tensor& y_in, const std::optional<at::Tensor>& mask,
                                const at::Tensor& weight_sum, int64_t kind, double eps,
                                int64_t reduction) {
  constexpr const char* op = "masked_loss_backward";
  const c10::cuda::CUDAGuard guard(x_in.device());
  const ImageBatch b = prepare(op, x_in, y_in, mask, reduction);
  TORCH_CHECK(weight_sum.numel() == b.n, op, ": weight_sum must have N elements");
  check_grad_numel(op, grad, b, reduction);
  const at::Tensor g = grad.reshape({-1}), ws = weight_sum.reshape({-1});
  const AnyFloat gv = any_float(g, b.x, op, "grad"), wv = any_float(ws, b.x, op, "weight_sum");
  auto gx = at::empty_like(b.x);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, b.x.scalar_type(), op, [&] {
    using T = opmath_t<scalar_t>;
    const FlatShape s = flat_shape<scalar_t>(b, op);
    if (gx.numel() == 0) return;
    const scalar_t* m = mask_data<scalar_t>(b);
    dispatch_kind(kind, [&](auto kc) {
      dispatch_flat_mask(b, [&](auto mc) {
        using Op = MaskedGrad<decltype(kc)::value, T>;
        flat_pointwise_kernel<scalar_t, decltype(mc)::value><<<s.blocks(), kThreads, 0, stream>>>(
            b.x.const_data_ptr<scalar_t>(), b.y.const_data_ptr<scalar_t>(), m, s,
            Op{gv, wv, b.n, reduction, T(eps * eps)}, gx.mutable_data_ptr<scalar_t>(),
            static_cast<scalar_t*>(nullptr));
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
    });
  });
  return gx;
}

}  // namespace

TORCH_LIBRARY_IMPL(fastgan, CUDA, m) {
  m.impl("masked_loss_forward", &masked_loss_forward);
  m.impl("masked_loss_backward", &masked_loss_backward);
}

}  // namespace fastgan::cuda
