// Shared conventions of the loss kernels (CPU and CUDA): integer codes,
// input checks that guard the kernels, and layout normalisation.
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <optional>

namespace fastgan {

enum Reduction : int64_t { kNone = 0, kMean = 1, kSum = 2 };
enum LossKind : int64_t { kL1 = 0, kSquared = 1, kCharbonnier = 2 };
enum MaskMode : int { kNoMask = 0, kPixelMask = 1, kFullMask = 2 };

// Images laid out so that each one is a dense block of C*H*W elements,
// either NCHW (channel stride HW) or NHWC (channel stride 1).
struct ImageBatch {
  at::Tensor x, y, mask;  // mask undefined when absent
  int64_t n = 0, c = 0, hw = 0;
  bool nhwc = false;
  int mask_mode = kNoMask;
  at::MemoryFormat format() const {
    return nhwc ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  }
};

inline bool prefers_channels_last(const at::Tensor& t) {
  return !t.is_contiguous() && t.is_contiguous(at::MemoryFormat::ChannelsLast);
}

// Checks what the Python layer already validated (so a direct torch.ops call
// cannot feed garbage to a kernel) and copies only tensors whose layout is
// neither dense NCHW nor dense NHWC, following x's layout.
inline ImageBatch prepare_images(const char* op, const at::Tensor& x, const at::Tensor& y,
                                 const std::optional<at::Tensor>& mask) {
  TORCH_CHECK(x.dim() == 4, op, ": x must be 4-D (N, C, H, W), got ", x.dim(), "-D");
  TORCH_CHECK(x.sizes() == y.sizes(), op, ": x and y must have the same shape, got ",
              x.sizes(), " and ", y.sizes());
  TORCH_CHECK(x.scalar_type() == y.scalar_type(), op, ": x and y must have the same dtype");
  TORCH_CHECK(at::isFloatingType(x.scalar_type()), op, ": x must be a floating tensor");
  TORCH_CHECK(x.device() == y.device(), op, ": x and y must be on the same device");
  ImageBatch b;
  b.nhwc = prefers_channels_last(x);
  b.x = x.contiguous(b.format());
  b.y = y.contiguous(b.format());
  b.n = x.size(0);
  b.c = x.size(1);
  b.hw = x.size(2) * x.size(3);
  if (mask.has_value() && mask->defined()) {
    const auto& m = *mask;
    TORCH_CHECK(m.dim() == 4 && m.size(0) == b.n && (m.size(1) == 1 || m.size(1) == b.c) &&
                    m.size(2) == x.size(2) && m.size(3) == x.size(3),
                op, ": mask must have shape (N, 1, H, W) or (N, C, H, W) matching x ", x.sizes(),
                ", got ", m.sizes());
    TORCH_CHECK(m.scalar_type() == x.scalar_type(), op, ": mask must have x's dtype");
    TORCH_CHECK(m.device() == x.device(), op, ": mask must be on x's device");
    if (m.size(1) == 1 && b.c != 1) {
      b.mask_mode = kPixelMask;
      // A single-channel mask is dense in either format once contiguous.
      b.mask = m.contiguous();
    } else {
      b.mask_mode = kFullMask;
      b.mask = m.contiguous(b.format());
    }
  }
  return b;
}

inline void check_reduction(const char* op, int64_t reduction) {
  TORCH_CHECK(reduction == kNone || reduction == kMean || reduction == kSum, op,
              ": reduction code must be 0 (none), 1 (mean) or 2 (sum), got ", reduction);
}

// Shape of a reduced loss: per image for `none`, 0-dim otherwise.
inline at::Tensor empty_loss(const ImageBatch& b, int64_t reduction) {
  auto opts = b.x.options().memory_format(at::MemoryFormat::Contiguous);
  return reduction == kNone ? at::empty({b.n}, opts) : at::empty({}, opts);
}

}  // namespace fastgan
