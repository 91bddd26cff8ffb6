// The compute core of the CPU SSIM kernels for volumes (csrc/cpu/ssim_volume.cpp): one
// depth band of one (n, c) volume, streamed slice by slice.
//
// Compiled twice by ssim_volume.cpp through cpu/ssim_cores.h (the build's flags, and
// AVX-512), after cpu/ssim_filters.h and the definitions of VolumeJob and Band: no include
// guard, no includes (as cpu/ssim_kernel.h).
//
// Padded input slices i stream through once:
//   1. load slice i of x and y (padded in H, W; depth padding by index), products;
//   2. in-plane Gaussian (rows, then columns) of the 4 (5) moment sources -> a ring of win
//      slices per moment;
//   3. output slice o = i - 2r: depth Gaussian over the ring, the value per voxel (sums,
//      map) and, for gradients, the coefficient planes a_k = w dv/dmoment_k (zero border
//      2r) and their in-plane transposed Gaussian -> a ring of win padded slices per k;
//   4. padded slice q = o is then complete: depth transposed Gaussian over that ring,
//      times x, y of slice q (read again: cheaper than a ring of them), written out
//      (cropped for zero padding, folded back for reflect).

template <typename T, int WIN>
BandSums run_band(const VolumeJob<T>& job, int64_t plane, const Band& band) {
  const VolumeGeometry& g = job.g;
  const int win = WIN > 0 ? WIN : g.win;
  const int r = win / 2;
  const bool mix = job.stat == kStatMix;
  const int nm = mix ? 5 : 4;
  const T* gw = job.window.data();
  const int64_t elem = job.io.elem;
  const int64_t s_in = g.hp * g.wp, s_out = g.ho * g.wo;
  const int64_t cw = g.wo + 4 * r;  // coefficient planes: 2r zeros around the map
  const int64_t plane_n = plane / g.c, plane_c = plane % g.c;
  const T factor = job.factor ? T(job.factor[plane]) : T(job.scale);
  // Coefficient maps used: 0 mx, 1 my, 2 v, 3 xy, 4 l1.
  const std::array<bool, 5> used{job.need_x, job.need_y, true, true, mix};

  std::vector<std::vector<T>> pool;
  auto take = [&](int64_t n) {
    pool.emplace_back(size_t(n), T(0));
    return pool.back().data();
  };
  T* xs = take(s_in);
  T* ys = take(s_in);
  T* src[5] = {xs, ys, take(s_in), take(s_in), mix ? take(s_in) : nullptr};
  T* tmp = take(g.hp * std::max(g.wo, g.wp));
  T* zero = take(std::max(s_in, s_out));
  std::vector<T*> mring[5], aring[5];
  T *mom[5], *coef[5] = {}, *arow[5] = {};
  for (int k = 0; k < nm; ++k) {
    for (int t = 0; t < win; ++t) mring[k].push_back(take(s_out));
    mom[k] = take(s_out);
  }
  if (!mix) mom[4] = zero;
  T* wts = take(s_out);
  T* val = take(s_out);
  T *gx = nullptr, *gy = nullptr, *fold = nullptr;
  if (job.grad) {
    for (int k = 0; k < 5; ++k) {
      if (!used[k]) continue;
      coef[k] = take((g.ho + 4 * r) * cw);
      for (int t = 0; t < win; ++t) aring[k].push_back(take(s_in));
      arow[k] = take(s_in);
    }
    gx = take(s_in);
    gy = take(s_in);
    if (job.fold_rows > 0) fold = take(2 * job.fold_rows * g.h * g.w);
  }
  BandSums sums;

  // Padded slice i (hp x wp) of v: depth and row padding by index, columns by load.
  auto load_slice = [&](const View& v, int64_t i, T* out) {
    int64_t j = i - g.pad;
    if (g.padding == kPadZero && (j < 0 || j >= g.d)) {
      std::fill(out, out + s_in, T(0));
      return;
    }
    if (g.padding == kPadReflect) j = reflect_index(j, g.d);
    const char* base = v.data + (plane_n * v.sn + plane_c * v.sc + j * v.sd) * elem;
    for (int64_t rr = 0; rr < g.hp; ++rr) {
      T* row = out + rr * g.wp;
      int64_t h = rr - g.pad;
      if (g.padding == kPadZero && (h < 0 || h >= g.h)) {
        std::fill(row, row + g.wp, T(0));
        continue;
      }
      if (g.padding == kPadReflect) h = reflect_index(h, g.h);
      load_padded_line(job.io, base + h * v.sh * elem, v.sw, g.w, g.pad, g.padding, row);
    }
  };

  // rows_out rows of width n from the rows of `in` (stride n; row index rr - shift, zero
  // outside [0, rows_in)) through the vertical Gaussian, two output rows at a time.
  auto vertical = [&](const T* in, int64_t rows_in, int64_t shift, int64_t n, int64_t rows_out,
                      T* out) {
    const T* rows[kMaxWindow + 1];
    auto row_at = [&](int64_t rr) {
      const int64_t k = rr - shift;
      return (k >= 0 && k < rows_in) ? in + k * n : zero;
    };
    int64_t o = 0;
    for (; o + 1 < rows_out; o += 2) {
      for (int t = 0; t <= win; ++t) rows[t] = row_at(o + t);
      vfilter2<WIN>(rows, gw, win, n, out + o * n, out + (o + 1) * n);
    }
    if (o < rows_out) {
      for (int t = 0; t < win; ++t) rows[t] = row_at(o + t);
      vfilter<WIN>(rows, gw, win, n, out + o * n);
    }
  };

  // In-plane Gaussian of a padded slice (hp x wp) -> (ho x wo).
  auto plane_filter = [&](const T* in, T* out) {
    for (int64_t rr = 0; rr < g.hp; ++rr) hfilter<WIN>(in + rr * g.wp, gw, win, g.wo, tmp + rr * g.wo);
    vertical(tmp, g.hp, 0, g.wo, g.ho, out);
  };

  // In-plane transposed Gaussian of a coefficient plane (map + 2r zero border) -> (hp x wp).
  auto plane_transposed = [&](const T* c, T* out) {
    for (int64_t o = 0; o < g.ho; ++o) hfilter<WIN>(c + (o + 2 * r) * cw, gw, win, g.wp, tmp + o * g.wp);
    vertical(tmp, g.ho, 2 * r, g.wp, g.hp, out);
  };

  auto load_weights = [&](int64_t o) {
    if (job.grad_map.defined()) {
      const View& v = job.grad_map;
      const char* base = v.data + (plane_n * v.sn + plane_c * v.sc + o * v.sd) * elem;
      for (int64_t rr = 0; rr < g.ho; ++rr) job.io.load(base + rr * v.sh * elem, v.sw, g.wo, wts + rr * g.wo);
    } else if (job.mask.defined()) {
      // The mask at each map voxel's window centre.
      const View& v = job.mask;
      const int64_t off = r - g.pad;
      const char* base = v.data + (plane_n * v.sn + plane_c * v.sc + (o + off) * v.sd + off * v.sw) * elem;
      for (int64_t rr = 0; rr < g.ho; ++rr) {
        job.io.load(base + (rr + off) * v.sh * elem, v.sw, g.wo, wts + rr * g.wo);
      }
    } else {
      std::fill(wts, wts + s_out, T(1));
    }
  };

  auto output_slice = [&](int64_t o) {
    const T* rows[kMaxWindow];
    for (int k = 0; k < nm; ++k) {
      for (int t = 0; t < win; ++t) rows[t] = mring[k][(o + t) % win];
      vfilter<WIN>(rows, gw, win, s_out, mom[k]);
    }
    load_weights(o);
    double swv = 0.0, sw = 0.0;
    for (int64_t rr = 0; rr < g.ho; ++rr) {
      const T* m[5];
      T* cf[5];
      for (int k = 0; k < 5; ++k) {
        m[k] = mom[k] + (k < nm ? rr * g.wo : 0);
        cf[k] = coef[k] ? coef[k] + (rr + 2 * r) * cw + 2 * r : val;  // unused without grad
      }
      const T* wr = wts + rr * g.wo;
      T* vr = val + rr * g.wo;
      if (job.grad) {
        switch (job.stat) {
          case kStatSsim: pointwise_row<kStatSsim, true>(m, wr, factor, g.wo, job.k, vr, cf, swv, sw); break;
          case kStatCs: pointwise_row<kStatCs, true>(m, wr, factor, g.wo, job.k, vr, cf, swv, sw); break;
          default: pointwise_row<kStatMix, true>(m, wr, factor, g.wo, job.k, vr, cf, swv, sw); break;
        }
      } else {
        switch (job.stat) {
          case kStatSsim: pointwise_row<kStatSsim, false>(m, wr, factor, g.wo, job.k, vr, cf, swv, sw); break;
          case kStatCs: pointwise_row<kStatCs, false>(m, wr, factor, g.wo, job.k, vr, cf, swv, sw); break;
          default: pointwise_row<kStatMix, false>(m, wr, factor, g.wo, job.k, vr, cf, swv, sw); break;
        }
      }
    }
    if (o >= band.o0 && o < band.o1) {
      sums.wv += swv;
      sums.w += sw;
      if (job.map) job.io.store(val, job.map + (plane * g.dout + o) * s_out * elem, 1, s_out);
    }
    if (job.grad) {
      for (int k = 0; k < 5; ++k) {
        if (used[k]) plane_transposed(coef[k], aring[k][o % win]);
      }
    }
  };

  // The image gradient rows of padded slice q (hp x wp in `in`), into slice j of out.
  auto write_rows = [&](char* out, int64_t j, const T* in, int64_t stride, int64_t row0,
                        int64_t col0) {
    char* base = out + (plane_n * job.gsn + plane_c * job.gsc + j * job.gsd) * elem;
    for (int64_t rr = 0; rr < g.h; ++rr) {
      job.io.store(in + (rr + row0) * stride + col0, base + rr * job.gsh * elem, job.gsw, g.w);
    }
  };

  // Reflect: the padding rows and columns of a padded gradient slice added back onto the
  // image pixels they reflect (in place; the image then sits at (pad, pad)).
  auto fold_plane = [&](T* p) {
    const int64_t pad = g.pad;
    for (int64_t rr = 0; rr < g.hp; ++rr) {
      T* row = p + rr * g.wp;
      for (int64_t c = 0; c < pad; ++c) {
        row[2 * pad - c] += row[c];
        row[pad + g.w - 2 - c] += row[pad + g.w + c];
      }
    }
    for (int64_t rr = 0; rr < pad; ++rr) {
      add_row(p + rr * g.wp, g.wp, p + (2 * pad - rr) * g.wp);
      add_row(p + (pad + g.h + rr) * g.wp, g.wp, p + (pad + g.h - 2 - rr) * g.wp);
    }
  };

  auto grad_slice = [&](int64_t q) {
    if (g.padding == kPadZero && (q < g.pad || q >= g.pad + g.d)) return;  // padding only
    const T* rows[kMaxWindow];
    for (int k = 0; k < 5; ++k) {
      if (!used[k]) continue;
      for (int t = 0; t < win; ++t) {
        const int64_t o = q - 2 * r + t;
        rows[t] = (o >= band.oc0 && o < band.oc1) ? aring[k][o % win] : zero;
      }
      vfilter<WIN>(rows, gw, win, s_in, arow[k]);
    }
    load_slice(job.x, q, xs);
    load_slice(job.y, q, ys);
    if (job.need_x) {
      if (mix) {
        combine_grad<true>(arow[0], arow[2], arow[3], arow[4], xs, ys, s_in, gx);
      } else {
        combine_grad<false>(arow[0], arow[2], arow[3], arow[4], xs, ys, s_in, gx);
      }
    }
    if (job.need_y) {
      if (mix) {
        combine_grad<true>(arow[1], arow[2], arow[3], arow[4], ys, xs, s_in, gy);
      } else {
        combine_grad<false>(arow[1], arow[2], arow[3], arow[4], ys, xs, s_in, gy);
      }
    }
    const std::array<std::pair<char*, T*>, 2> outs{std::pair{job.need_x ? job.gx : nullptr, gx},
                                                   std::pair{job.need_y ? job.gy : nullptr, gy}};
    if (g.padding != kPadReflect) {
      for (auto [out, buf] : outs) {
        if (out) write_rows(out, q - g.pad, buf, g.wp, g.pad, g.pad);
      }
      return;
    }
    const int64_t j = reflect_index(q - g.pad, g.d);
    const int slot = job.fold_slot[j];
    for (int which = 0; which < 2; ++which) {
      auto [out, buf] = outs[which];
      if (!out) continue;
      fold_plane(buf);
      if (slot < 0) {
        write_rows(out, j, buf, g.wp, g.pad, g.pad);
        continue;
      }
      T* acc = fold + (which * job.fold_rows + slot) * g.h * g.w;
      for (int64_t rr = 0; rr < g.h; ++rr) add_row(buf + (rr + g.pad) * g.wp + g.pad, g.w, acc + rr * g.w);
    }
  };

  int64_t next_q = band.p0;
  auto drain = [&](int64_t limit) {
    for (limit = std::min(limit, band.p1 - 1); next_q <= limit; ++next_q) grad_slice(next_q);
  };

  for (int64_t i = band.oc0; i < band.oc1 + 2 * r; ++i) {
    load_slice(job.x, i, xs);
    load_slice(job.y, i, ys);
    products(xs, ys, s_in, mix, src[2], src[3], src[4]);
    for (int k = 0; k < nm; ++k) plane_filter(src[k], mring[k][i % win]);
    const int64_t o = i - 2 * r;
    if (o < band.oc0) continue;
    output_slice(o);
    if (job.grad) drain(o);
  }
  if (job.grad) {
    drain(band.p1 - 1);  // outputs beyond oc1 contribute nothing
    // Reflect: write the slices that received folded slices, those this band owns.
    for (int64_t j = 0; j < g.d && job.fold_rows > 0; ++j) {
      const int slot = job.fold_slot[j];
      if (slot < 0 || j + g.pad < band.p0 || j + g.pad >= band.p1) continue;
      for (int which = 0; which < 2; ++which) {
        char* out = which == 0 ? (job.need_x ? job.gx : nullptr) : (job.need_y ? job.gy : nullptr);
        if (out) write_rows(out, j, fold + (which * job.fold_rows + slot) * g.h * g.w, g.w, 0, 0);
      }
    }
  }
  return sums;
}
