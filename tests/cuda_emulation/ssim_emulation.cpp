// Host emulation of the SSIM CUDA kernels (csrc/cuda/ssim_kernels.cuh): the device code
// compiled as C++ with one thread per block (every kernel loops over its tile with a
// stride of kThreads, and __syncthreads separates whole passes, so one thread doing all
// the work in order computes what the block computes) and the blocks run in order.
// tests/test_ssim_cuda_emulation.py builds it with the host compiler and compares the
// sums, the map and the gradients with fastgan.reference: the kernels' index arithmetic
// (tiles, halos, padding, transposed filters) is checked where no GPU exists.
// Usage: ssim_emulation N C H W window padding stat double mask_channels alpha dir
// (dir holds x.bin, y.bin, [m.bin], f.bin; the outputs are written there).
#include "emulation.h"

using namespace fastgan;
using namespace fastgan::cuda::ssim_kernels;

template <typename T, int STAT>
void run(int N, int C, int H, int W, int win, int padding, int mask_c, double alpha, const std::string& dir) {
  constexpr int TILE = kTile<T>;
  std::vector<T> x = readf<T>(dir + "/x.bin", size_t(N) * C * H * W), y = readf<T>(dir + "/y.bin", size_t(N) * C * H * W);
  std::vector<T> m; if (mask_c) m = readf<T>(dir + "/m.bin", size_t(N) * mask_c * H * W);
  std::vector<T> f = readf<T>(dir + "/f.bin", size_t(N) * C);
  View<T> vx{x.data(), int64_t(C) * H * W, int64_t(H) * W, W, 1}, vy{y.data(), int64_t(C) * H * W, int64_t(H) * W, W, 1};
  View<T> vm; if (mask_c) vm = View<T>{m.data(), int64_t(mask_c) * H * W, mask_c == 1 ? 0 : int64_t(H) * W, W, 1};
  View<T> none;
  auto geo = [&](bool padded) { return emu_geometry(C, H, W, win, padding, TILE, padded); };
  const Window<T> wnd = emu_window<T>(win);
  const SsimConsts<T> k = emu_consts<T>(alpha);
  const int P = N * C;
  // forward
  Geometry g = geo(false);
  std::vector<T> part(size_t(P) * g.tiles * 2), map(size_t(P) * g.ho * g.wo);
  for (unsigned p = 0; p < unsigned(P); ++p) for (unsigned t = 0; t < unsigned(g.tiles); ++t) {
    blockIdx.x = t; blockIdx.y = p; threadIdx.x = 0;
    ssim_forward_kernel<T, STAT>(vx, vy, vm, g, wnd, k, part.data(), map.data());
  }
  std::vector<T> sums(P), weights(P);
  for (unsigned b = 0; b < unsigned(P); ++b) { blockIdx.x = 0; threadIdx.x = b;
    ssim_finish_kernel<T>(part.data(), P, g.tiles, sums.data(), weights.data()); }
  writef(dir + "/sums.bin", sums); writef(dir + "/weights.bin", weights); writef(dir + "/map.bin", map);
  // backward
  Geometry gb = geo(true);
  GradOut<T> out;
  std::vector<T> gx, gy;
  if (padding == kPadReflect) { gx.assign(size_t(P) * gb.hp * gb.wp, T(-999)); gy = gx; }
  else { gx.assign(size_t(P) * H * W, T(-999)); gy = gx; out.sn = int64_t(C) * H * W; out.sc = int64_t(H) * W; out.sh = W; out.sw = 1; }
  out.gx = gx.data(); out.gy = gy.data();
  for (unsigned p = 0; p < unsigned(P); ++p) for (unsigned t = 0; t < unsigned(gb.tiles); ++t) {
    blockIdx.x = t; blockIdx.y = p; threadIdx.x = 0;
    ssim_backward_kernel<T, STAT>(vx, vy, vm, none, f.data(), gb, wnd, k, out);
  }
  writef(dir + "/gx.bin", gx); writef(dir + "/gy.bin", gy);
}

int main(int argc, char** argv) {
  int N = atoi(argv[1]), C = atoi(argv[2]), H = atoi(argv[3]), W = atoi(argv[4]), win = atoi(argv[5]);
  int padding = atoi(argv[6]), stat = atoi(argv[7]), dbl = atoi(argv[8]), mask_c = atoi(argv[9]);
  double alpha = atof(argv[10]); std::string dir = argv[11];
  auto go = [&](auto tag) {
    using T = decltype(tag);
    if (stat == 0) run<T, 0>(N, C, H, W, win, padding, mask_c, alpha, dir);
    else if (stat == 1) run<T, 1>(N, C, H, W, win, padding, mask_c, alpha, dir);
    else run<T, 2>(N, C, H, W, win, padding, mask_c, alpha, dir);
  };
  if (dbl) go(double{}); else go(float{});
  return 0;
}
