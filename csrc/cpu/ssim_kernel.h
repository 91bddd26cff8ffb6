// The compute core of the CPU SSIM kernels (csrc/cpu/ssim.cpp): the streaming band
// pipeline run_band (its 1-D filters and per-row SSIM maths are in cpu/ssim_filters.h).
//
// Compiled twice by ssim.cpp through cpu/ssim_cores.h, inside two namespaces: once with
// the build's flags and once for AVX-512, picked at run time. Hence no include guard and
// no includes here: ssim.cpp includes everything this needs (and defines Job, Band,
// Scratch, ...) and cpu/ssim_filters.h first.

// Ring slots per ring: output rows are processed in pairs (vfilter2) and gradient rows
// may wait one row for their partner, so the rings keep win + 2 rows.
template <int WIN>
constexpr int ring_slots(int win) {
  return (WIN > 0 ? WIN : win) + 2;
}

template <typename T, int WIN>
BandSums run_band(const Job<T>& job, int64_t plane, const Band& band, Scratch<T>& s) {
  const Geometry& g = job.g;
  const int win = WIN > 0 ? WIN : g.win;
  const int r = win / 2;
  const int rs = ring_slots<WIN>(win);
  const bool mix = job.stat == kStatMix;
  const int nm = mix ? 5 : 4;
  const T* gw = job.window.data();
  s.next = 0;
  // Rings indexed by row % rs.
  auto xring = s.rows(rs), yring = s.rows(rs);
  T* p2 = s.row();
  T* pxy = s.row();
  T* pl1 = s.row();
  std::vector<std::vector<T*>> hm(nm);
  for (auto& v : hm) v = s.rows(rs);
  T* zero = s.row();
  std::fill(zero, zero + s.stride, T(0));
  // Per row of a pair: moments, weights, values; gradients: coefficient rows padded by 2r
  // zeros on each side, the transposed filters, the padded gradient rows.
  struct PairRows {
    std::vector<T*> m, coef, cpad, arow;
    T *w = nullptr, *v = nullptr, *gx = nullptr, *gy = nullptr;
  } pr[2];
  for (auto& p : pr) {
    p.m = s.rows(5);
    p.w = s.row();
    p.v = s.row();
    if (!mix) p.m[4] = zero;
    p.coef.assign(5, p.v);  // unused by the no-grad pointwise
    if (job.grad) {
      p.cpad = s.rows(5);
      p.arow = s.rows(5);
      for (int k = 0; k < 5; ++k) {
        std::fill(p.cpad[k], p.cpad[k] + s.stride, T(0));
        p.coef[k] = p.cpad[k] + 2 * r;
      }
      p.gx = s.row();
      p.gy = s.row();
    }
  }
  // Coefficient maps used: 0 mx, 1 my, 2 v, 3 xy, 4 l1.
  const std::array<bool, 5> used{job.need_x, job.need_y, true, true, mix};
  std::vector<std::vector<T*>> ha(5);
  T* fold = nullptr;
  if (job.grad) {
    for (int k = 0; k < 5; ++k) {
      if (used[k]) ha[k] = s.rows(rs);
    }
    if (job.fold_rows > 0) {
      fold = s.row();
      for (int k = 1; k < 2 * job.fold_rows; ++k) s.row();
      std::fill(fold, fold + 2 * job.fold_rows * s.stride, T(0));
    }
  }

  const int64_t plane_n = plane / g.c, plane_c = plane % g.c;
  const T factor = job.factor ? T(job.factor[plane]) : T(job.scale);
  BandSums sums;

  auto weight_row = [&](int64_t o, T* wrow) {
    if (job.grad_map.defined()) {
      const View& v = job.grad_map;
      job.io.load(v.data + (plane_n * v.sn + plane_c * v.sc + o * v.sh) * job.io.elem, v.sw, g.wo,
                  wrow);
    } else if (job.mask.defined()) {
      const View& v = job.mask;
      const int64_t row = o + r - g.pad, col = r - g.pad;
      job.io.load(v.data + (plane_n * v.sn + plane_c * v.sc + row * v.sh + col * v.sw) * job.io.elem,
                  v.sw, g.wo, wrow);
    } else {
      std::fill(wrow, wrow + g.wo, T(1));
    }
  };

  auto write_grad = [&](char* out, int64_t j, const T* row) {
    job.io.store(row, out + (plane_n * job.gsn + plane_c * job.gsc + j * job.gsh) * job.io.elem,
                 job.gsw, g.w);
  };

  // The value of output row o (pair half p.m already holds its moments), its sums, map
  // row and, for gradients, the transposed horizontal filter of its coefficients.
  auto finish_output_row = [&](int64_t o, PairRows& p) {
    weight_row(o, p.w);
    double swv = 0.0, sw = 0.0;
    const T* const* m = p.m.data();
    T* const* cf = p.coef.data();
    if (job.grad) {
      switch (job.stat) {
        case kStatSsim: pointwise_row<kStatSsim, true>(m, p.w, factor, g.wo, job.k, p.v, cf, swv, sw); break;
        case kStatCs: pointwise_row<kStatCs, true>(m, p.w, factor, g.wo, job.k, p.v, cf, swv, sw); break;
        default: pointwise_row<kStatMix, true>(m, p.w, factor, g.wo, job.k, p.v, cf, swv, sw); break;
      }
    } else {
      switch (job.stat) {
        case kStatSsim: pointwise_row<kStatSsim, false>(m, p.w, factor, g.wo, job.k, p.v, cf, swv, sw); break;
        case kStatCs: pointwise_row<kStatCs, false>(m, p.w, factor, g.wo, job.k, p.v, cf, swv, sw); break;
        default: pointwise_row<kStatMix, false>(m, p.w, factor, g.wo, job.k, p.v, cf, swv, sw); break;
      }
    }
    if (o >= band.o0 && o < band.o1) {
      sums.wv += swv;
      sums.w += sw;
      if (job.map) job.io.store(p.v, job.map + ((plane * g.ho + o) * g.wo) * job.io.elem, 1, g.wo);
    }
    if (job.grad) {
      for (int k = 0; k < 5; ++k) {
        if (used[k]) hfilter<WIN>(p.cpad[k], gw, win, g.wp, ha[k][o % rs]);
      }
    }
  };

  // Output rows o .. o + cnt - 1 (cnt 1 or 2): vertical filter of the moments, then values.
  auto outputs = [&](int64_t o, int cnt) {
    const T* rows[kMaxWindow + 1];
    for (int k = 0; k < nm; ++k) {
      for (int t = 0; t < win + cnt - 1; ++t) rows[t] = hm[k][(o + t) % rs];
      if (cnt == 2) {
        vfilter2<WIN>(rows, gw, win, g.wo, pr[0].m[k], pr[1].m[k]);
      } else {
        vfilter<WIN>(rows, gw, win, g.wo, pr[0].m[k]);
      }
    }
    for (int h = 0; h < cnt; ++h) finish_output_row(o + h, pr[h]);
  };

  // Padded gradient rows q .. q + cnt - 1, once output rows up to q + cnt - 1 are done.
  auto grad_rows = [&](int64_t q, int cnt) {
    const T* rows[kMaxWindow + 1];
    for (int k = 0; k < 5; ++k) {
      if (!used[k]) continue;
      for (int t = 0; t < win + cnt - 1; ++t) {
        const int64_t o = q - 2 * r + t;
        rows[t] = (o >= band.oc0 && o < band.oc1) ? ha[k][o % rs] : zero;
      }
      if (cnt == 2) {
        vfilter2<WIN>(rows, gw, win, g.wp, pr[0].arow[k], pr[1].arow[k]);
      } else {
        vfilter<WIN>(rows, gw, win, g.wp, pr[0].arow[k]);
      }
    }
    for (int h = 0; h < cnt; ++h) {
      const int64_t qh = q + h;
      PairRows& p = pr[h];
      if (g.padding == kPadZero && (qh < g.pad || qh >= g.pad + g.h)) continue;  // padding only
      const T* xq = xring[qh % rs];
      const T* yq = yring[qh % rs];
      const std::vector<T*>& a = p.arow;
      if (job.need_x) {
        if (mix) {
          combine_grad<true>(a[0], a[2], a[3], a[4], xq, yq, g.wp, p.gx);
        } else {
          combine_grad<false>(a[0], a[2], a[3], a[4], xq, yq, g.wp, p.gx);
        }
      }
      if (job.need_y) {
        if (mix) {
          combine_grad<true>(a[1], a[2], a[3], a[4], yq, xq, g.wp, p.gy);
        } else {
          combine_grad<false>(a[1], a[2], a[3], a[4], yq, xq, g.wp, p.gy);
        }
      }
      const std::array<std::pair<char*, T*>, 2> outs{
          std::pair{job.need_x ? job.gx : nullptr, p.gx},
          std::pair{job.need_y ? job.gy : nullptr, p.gy}};
      if (g.padding == kPadValid) {
        for (auto [out, row] : outs)
          if (out) write_grad(out, qh, row);
        continue;
      }
      const int64_t pad = g.pad;
      if (g.padding == kPadZero) {
        for (auto [out, row] : outs)
          if (out) write_grad(out, qh - pad, row + pad);
        continue;
      }
      // Reflect: fold the padding columns, then the row, back into the image.
      const int64_t j = reflect_index(qh - pad, g.h);
      const int slot = job.fold_slot[j];
      for (int which = 0; which < 2; ++which) {
        auto [out, row] = outs[which];
        if (!out) continue;
        for (int64_t c = 0; c < pad; ++c) {
          row[2 * pad - c] += row[c];
          row[pad + g.w - 2 - c] += row[pad + g.w + c];
        }
        if (slot >= 0) {
          add_row(row + pad, g.w, fold + (which * job.fold_rows + slot) * s.stride);
        } else {
          write_grad(out, j, row + pad);
        }
      }
    }
  };

  // Gradient rows from next_q up to limit: in pairs; a single last row only when final.
  int64_t next_q = band.p0;
  auto drain = [&](int64_t limit, bool final) {
    limit = std::min(limit, band.p1 - 1);
    while (next_q + 1 <= limit) {
      grad_rows(next_q, 2);
      next_q += 2;
    }
    if (final && next_q == limit) {
      grad_rows(next_q, 1);
      ++next_q;
    }
  };

  const int64_t i0 = band.oc0, i1 = band.oc1 + 2 * r;
  int64_t next_o = band.oc0;
  for (int64_t i = i0; i < i1; ++i) {
    const int slot = int(i % rs);
    T* xr = xring[slot];
    T* yr = yring[slot];
    load_padded_row(job, job.x, plane, i, xr);
    load_padded_row(job, job.y, plane, i, yr);
    products(xr, yr, g.wp, mix, p2, pxy, pl1);
    const T* src[5] = {xr, yr, p2, pxy, pl1};
    for (int k = 0; k < nm; ++k) hfilter<WIN>(src[k], gw, win, g.wo, hm[k][slot]);
    const int64_t o = i - 2 * r;
    if (o < band.oc0) continue;
    if (o == next_o + 1) {
      outputs(next_o, 2);
    } else if (o == next_o && o == band.oc1 - 1) {
      outputs(o, 1);
    } else {
      continue;  // the first of a pair: wait for its partner
    }
    next_o = o + 1;
    if (job.grad) drain(o, false);
  }
  if (job.grad) {
    drain(band.p1 - 1, true);  // output rows beyond oc1 contribute nothing
    // Reflect: write the rows that received folded rows, those this band owns.
    for (int64_t j = 0; j < g.h && job.fold_rows > 0; ++j) {
      const int slot = job.fold_slot[j];
      if (slot < 0 || j + g.pad < band.p0 || j + g.pad >= band.p1) continue;
      if (job.need_x) write_grad(job.gx, j, fold + slot * s.stride);
      if (job.need_y) write_grad(job.gy, j, fold + (job.fold_rows + slot) * s.stride);
    }
  }
  return sums;
}
