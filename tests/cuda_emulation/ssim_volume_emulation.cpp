// Host emulation of the SSIM CUDA kernels on volumes (csrc/cuda/ssim_volume_kernels.cuh),
// one thread per block as in ssim_emulation.cpp: the forward (sums, map), the forward that
// stores the coefficients and the gradient kernel, blocks run in order.
// Usage: ssim_volume_emulation N C D H W window padding stat double mask alpha dir
// (dir holds x.bin, y.bin, [m.bin: (N, 1, D, H, W)], f.bin; the outputs are written there;
// the gradients of reflect padding are the padded (N*C, D', H', W') buffers).
#include "emulation.h"
#include "cuda/ssim_volume_kernels.cuh"

using namespace fastgan;
using namespace fastgan::cuda::ssim_kernels;

template <typename T, int STAT>
void run(int N, int C, int D, int H, int W, int win, int padding, int masked, double alpha,
         const std::string& dir) {
  constexpr int TILE = kTile<T>;
  constexpr int NM = kMoments<STAT>;
  const int r = win / 2, P = N * C;
  const size_t vol = size_t(D) * H * W;
  std::vector<T> x = readf<T>(dir + "/x.bin", P * vol), y = readf<T>(dir + "/y.bin", P * vol);
  std::vector<T> m; if (masked) m = readf<T>(dir + "/m.bin", N * vol);
  std::vector<T> f = readf<T>(dir + "/f.bin", size_t(P));
  View<T> vx{x.data(), int64_t(C * vol), int64_t(vol), W, 1}, vy{y.data(), int64_t(C * vol), int64_t(vol), W, 1};
  View<T> vm; if (masked) vm = View<T>{m.data(), int64_t(vol), 0, W, 1};
  View<T> none;
  Depth dep{D, 0, 0, padding == 0 ? 0 : r, int64_t(H) * W, int64_t(H) * W, masked ? int64_t(H) * W : 0, 0};
  dep.dp = D + 2 * dep.pad; dep.dout = dep.dp - 2 * r;
  auto geo = [&](bool padded) { return emu_geometry(C, H, W, win, padding, TILE, padded); };
  const Window<T> wnd = emu_window<T>(win);
  const SsimConsts<T> k = emu_consts<T>(alpha);
  Geometry g = geo(false);
  const size_t map_n = size_t(P) * dep.dout * g.ho * g.wo;
  std::vector<T> part(size_t(P) * dep.dout * g.tiles * 2), map(map_n), coef(map_n * NM);
  auto forward = [&](bool with_coef) {
    for (unsigned p = 0; p < unsigned(P); ++p) for (unsigned t = 0; t < unsigned(g.tiles * dep.dout); ++t) {
      blockIdx.x = t; blockIdx.y = p; threadIdx.x = 0;
      if (with_coef) ssim_volume_forward_kernel<T, STAT, true>(vx, vy, vm, none, f.data(), g, dep, wnd, k, part.data(), nullptr, coef.data());
      else ssim_volume_forward_kernel<T, STAT, false>(vx, vy, vm, none, nullptr, g, dep, wnd, k, part.data(), map.data(), nullptr);
    }
  };
  forward(false);
  std::vector<T> sums(P), weights(P);
  for (unsigned b = 0; b < unsigned(P); ++b) { blockIdx.x = 0; threadIdx.x = b;
    ssim_finish_kernel<T>(part.data(), P, g.tiles * int(dep.dout), sums.data(), weights.data()); }
  writef(dir + "/sums.bin", sums); writef(dir + "/weights.bin", weights); writef(dir + "/map.bin", map);
  forward(true);
  Geometry gb = geo(true);
  GradOut<T> out;
  std::vector<T> gx, gy;
  if (padding == kPadReflect) { gx.assign(size_t(P) * dep.dp * gb.hp * gb.wp, T(-999)); gy = gx; }
  else { gx.assign(P * vol, T(-999)); gy = gx; out.sn = int64_t(C * vol); out.sc = int64_t(vol); out.sh = W; out.sw = 1; }
  out.gx = gx.data(); out.gy = gy.data();
  for (unsigned p = 0; p < unsigned(P); ++p) for (unsigned t = 0; t < unsigned(gb.tiles * dep.dp); ++t) {
    blockIdx.x = t; blockIdx.y = p; threadIdx.x = 0;
    ssim_volume_grad_kernel<T, STAT>(coef.data(), vx, vy, gb, dep, wnd, out, int64_t(H) * W);
  }
  writef(dir + "/gx.bin", gx); writef(dir + "/gy.bin", gy);
}

int main(int argc, char** argv) {
  int N = atoi(argv[1]), C = atoi(argv[2]), D = atoi(argv[3]), H = atoi(argv[4]), W = atoi(argv[5]);
  int win = atoi(argv[6]), padding = atoi(argv[7]), stat = atoi(argv[8]), dbl = atoi(argv[9]);
  int masked = atoi(argv[10]);
  double alpha = atof(argv[11]); std::string dir = argv[12];
  auto go = [&](auto tag) {
    using T = decltype(tag);
    if (stat == 0) run<T, 0>(N, C, D, H, W, win, padding, masked, alpha, dir);
    else if (stat == 1) run<T, 1>(N, C, D, H, W, win, padding, masked, alpha, dir);
    else run<T, 2>(N, C, D, H, W, win, padding, masked, alpha, dir);
  };
  if (dbl) go(double{}); else go(float{});
  return 0;
}
