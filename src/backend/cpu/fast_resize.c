/* 2-D nearest / bilinear Resize with caller-owned coordinate tables (see fast_resize.h). */
#include "backend/cpu/fast_resize.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

/* Table layout: header, then per output row h0[OH], h1[OH], wh[OH], per column w0[OW], w1[OW], ww[OW]
 * (nearest uses only h0 / w0). */
typedef struct resize_table {
  int32_t int_h, int_w; /* nearest: source index = o / int_x for every o (0: not an integer factor) */
  int32_t pad[14];      /* keep the arrays 64-byte aligned */
} resize_table;

size_t kiln_fast_resize2d_table_size(const kiln_fast_resize2d_desc *d) {
  return sizeof(resize_table) + (size_t)(d->OH + d->OW) * 3 * 4 + 64;
}

#define T_H0(t, d) ((int32_t *)((resize_table *)(t) + 1))
#define T_H1(t, d) (T_H0(t, d) + (d)->OH)
#define T_WH(t, d) ((float *)(T_H1(t, d) + (d)->OH))
#define T_W0(t, d) ((int32_t *)(T_WH(t, d) + (d)->OH))
#define T_W1(t, d) (T_W0(t, d) + (d)->OW)
#define T_WW(t, d) ((float *)(T_W1(t, d) + (d)->OW))

/* The ONNX coordinate transforms (same formulas as the reference kernel): out_w = scale * in_len as
 * a real number, not the rounded output length. */
static double src_coord(kiln_fast_resize_coord c, int64_t x, int64_t in_len, double scale) {
  double out_w = scale * (double)in_len;
  switch (c) {
  case KILN_FAST_COORD_HALF_PIXEL: return ((double)x + 0.5) / scale - 0.5;
  case KILN_FAST_COORD_PYTORCH_HALF_PIXEL: return out_w > 1 ? ((double)x + 0.5) / scale - 0.5 : -0.5;
  case KILN_FAST_COORD_ALIGN_CORNERS: return out_w == 1 ? 0 : (double)x * (double)(in_len - 1) / (out_w - 1);
  case KILN_FAST_COORD_ASYMMETRIC: return (double)x / scale;
  case KILN_FAST_COORD_TF_HALF_PIXEL_FOR_NN: return ((double)x + 0.5) / scale;
  }
  return 0;
}

static void build_axis(const kiln_fast_resize2d_desc *d, int64_t in_len, int64_t out_len, double scale, int32_t *i0,
                       int32_t *i1, float *w, int32_t *int_factor) {
  for (int64_t o = 0; o < out_len; o++) {
    double xo = src_coord(d->coord, o, in_len, scale), fl = floor(xo), r = xo - fl;
    int64_t x0 = (int64_t)fl;
    if (d->mode == KILN_FAST_RESIZE_NEAREST) {
      int64_t i = x0;
      if (r != 0) switch (d->round) {
        case KILN_FAST_ROUND_PREFER_FLOOR: i = r <= 0.5 ? x0 : x0 + 1; break;
        case KILN_FAST_ROUND_PREFER_CEIL: i = r < 0.5 ? x0 : x0 + 1; break;
        case KILN_FAST_FLOOR: i = x0; break;
        case KILN_FAST_CEIL: i = x0 + 1; break;
        }
      i = i < 0 ? 0 : i >= in_len ? in_len - 1 : i;
      i0[o] = i1[o] = (int32_t)i;
      w[o] = 0;
    } else {
      int64_t a = x0 < 0 ? 0 : x0 >= in_len ? in_len - 1 : x0, b = x0 + 1 < 0 ? 0 : x0 + 1 >= in_len ? in_len - 1 : x0 + 1;
      i0[o] = (int32_t)a, i1[o] = (int32_t)b, w[o] = (float)r;
    }
  }
  *int_factor = 0;
  if (d->mode == KILN_FAST_RESIZE_NEAREST && out_len % in_len == 0) {
    int64_t f = out_len / in_len, ok = 1;
    for (int64_t o = 0; o < out_len && ok; o++) ok = i0[o] == o / f;
    if (ok) *int_factor = (int32_t)f;
  }
}

kiln_status kiln_fast_resize2d_build(const kiln_fast_resize2d_desc *d, void *table) {
  if (d->H < 1 || d->W < 1 || d->OH < 1 || d->OW < 1 || d->N < 0 || d->C < 0)
    return kiln_error(KILN_ERR_SHAPE, "resize of an empty plane");
  if (d->H > INT32_MAX || d->W > INT32_MAX) return kiln_error(KILN_ERR_UNSUPPORTED, "resize plane too large");
  if (!(d->scale_h > 0) || !(d->scale_w > 0)) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "resize scales must be > 0");
  resize_table *t = table;
  memset(t, 0, sizeof *t);
  build_axis(d, d->H, d->OH, d->scale_h, T_H0(t, d), T_H1(t, d), T_WH(t, d), &t->int_h);
  build_axis(d, d->W, d->OW, d->scale_w, T_W0(t, d), T_W1(t, d), T_WW(t, d), &t->int_w);
  return NULL;
}

typedef struct rs_ctx {
  const kiln_fast_resize2d_desc *d;
  const resize_table *t;
  const float *x;
  float *y;
  int64_t xbs, ybs;
  kiln_isa isa;
} rs_ctx;

/* 2x along W: each input value written twice. */
KILN_FAST_AVX512 static void dup2_avx512(const float *s, float *o, int64_t W) {
  const __m512i lo = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  const __m512i hi = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
  int64_t w = 0;
  for (; w + 16 <= W; w += 16) {
    __m512 v = _mm512_loadu_ps(s + w);
    _mm512_storeu_ps(o + 2 * w, _mm512_permutexvar_ps(lo, v));
    _mm512_storeu_ps(o + 2 * w + 16, _mm512_permutexvar_ps(hi, v));
  }
  for (; w < W; w++) o[2 * w] = o[2 * w + 1] = s[w];
}

KILN_FAST_AVX2 static void dup2_avx2(const float *s, float *o, int64_t W) {
  int64_t w = 0;
  for (; w + 8 <= W; w += 8) {
    __m256 v = _mm256_loadu_ps(s + w);
    __m256 a = _mm256_unpacklo_ps(v, v), b = _mm256_unpackhi_ps(v, v); /* 0011 4455 | 2233 6677 */
    _mm256_storeu_ps(o + 2 * w, _mm256_permute2f128_ps(a, b, 0x20));
    _mm256_storeu_ps(o + 2 * w + 8, _mm256_permute2f128_ps(a, b, 0x31));
  }
  for (; w < W; w++) o[2 * w] = o[2 * w + 1] = s[w];
}

KILN_FAST_AVX512 static void gather_avx512(const float *s, const int32_t *idx, float *o, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(o + i, _mm512_i32gather_ps(_mm512_loadu_si512(idx + i), s, 4));
  for (; i < n; i++) o[i] = s[idx[i]];
}

KILN_FAST_AVX2 static void gather_avx2(const float *s, const int32_t *idx, float *o, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(o + i, _mm256_i32gather_ps(s, _mm256_loadu_si256((const __m256i *)(idx + i)), 4));
  for (; i < n; i++) o[i] = s[idx[i]];
}

/* out = (1-wh) * (r0[w0](1-ww) + r0[w1] ww) + wh * (r1[w0](1-ww) + r1[w1] ww), as a + w (b - a). */
KILN_FAST_AVX512 static void bilin_avx512(const float *r0, const float *r1, float wh, const int32_t *w0,
                                          const int32_t *w1, const float *ww, float *o, int64_t n) {
  __m512 vwh = _mm512_set1_ps(wh);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i a = _mm512_loadu_si512(w0 + i), b = _mm512_loadu_si512(w1 + i);
    __m512 f = _mm512_loadu_ps(ww + i);
    __m512 p = _mm512_i32gather_ps(a, r0, 4), q = _mm512_i32gather_ps(b, r0, 4);
    __m512 u = _mm512_i32gather_ps(a, r1, 4), v = _mm512_i32gather_ps(b, r1, 4);
    __m512 top = _mm512_fmadd_ps(f, _mm512_sub_ps(q, p), p), bot = _mm512_fmadd_ps(f, _mm512_sub_ps(v, u), u);
    _mm512_storeu_ps(o + i, _mm512_fmadd_ps(vwh, _mm512_sub_ps(bot, top), top));
  }
  for (; i < n; i++) {
    float top = r0[w0[i]] + ww[i] * (r0[w1[i]] - r0[w0[i]]), bot = r1[w0[i]] + ww[i] * (r1[w1[i]] - r1[w0[i]]);
    o[i] = top + wh * (bot - top);
  }
}

KILN_FAST_AVX2 static void bilin_avx2(const float *r0, const float *r1, float wh, const int32_t *w0, const int32_t *w1,
                                      const float *ww, float *o, int64_t n) {
  __m256 vwh = _mm256_set1_ps(wh);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i a = _mm256_loadu_si256((const __m256i *)(w0 + i)), b = _mm256_loadu_si256((const __m256i *)(w1 + i));
    __m256 f = _mm256_loadu_ps(ww + i);
    __m256 p = _mm256_i32gather_ps(r0, a, 4), q = _mm256_i32gather_ps(r0, b, 4);
    __m256 u = _mm256_i32gather_ps(r1, a, 4), v = _mm256_i32gather_ps(r1, b, 4);
    __m256 top = _mm256_fmadd_ps(f, _mm256_sub_ps(q, p), p), bot = _mm256_fmadd_ps(f, _mm256_sub_ps(v, u), u);
    _mm256_storeu_ps(o + i, _mm256_fmadd_ps(vwh, _mm256_sub_ps(bot, top), top));
  }
  for (; i < n; i++) {
    float top = r0[w0[i]] + ww[i] * (r0[w1[i]] - r0[w0[i]]), bot = r1[w0[i]] + ww[i] * (r1[w1[i]] - r1[w0[i]]);
    o[i] = top + wh * (bot - top);
  }
}

/* Separable bilinear: hlerp interpolates one source row horizontally (2 gathers per vector), vlerp
 * blends two such rows (no gathers). */
KILN_FAST_AVX512 static void hlerp_avx512(const float *s, const int32_t *w0, const int32_t *w1, const float *ww,
                                          float *o, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 p = _mm512_i32gather_ps(_mm512_loadu_si512(w0 + i), s, 4);
    __m512 q = _mm512_i32gather_ps(_mm512_loadu_si512(w1 + i), s, 4);
    _mm512_storeu_ps(o + i, _mm512_fmadd_ps(_mm512_loadu_ps(ww + i), _mm512_sub_ps(q, p), p));
  }
  for (; i < n; i++) o[i] = s[w0[i]] + ww[i] * (s[w1[i]] - s[w0[i]]);
}
KILN_FAST_AVX512 static void vlerp_avx512(const float *a, const float *b, float w, float *o, int64_t n) {
  __m512 vw = _mm512_set1_ps(w);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 p = _mm512_loadu_ps(a + i);
    _mm512_storeu_ps(o + i, _mm512_fmadd_ps(vw, _mm512_sub_ps(_mm512_loadu_ps(b + i), p), p));
  }
  for (; i < n; i++) o[i] = a[i] + w * (b[i] - a[i]);
}
KILN_FAST_AVX2 static void hlerp_avx2(const float *s, const int32_t *w0, const int32_t *w1, const float *ww, float *o,
                                      int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 p = _mm256_i32gather_ps(s, _mm256_loadu_si256((const __m256i *)(w0 + i)), 4);
    __m256 q = _mm256_i32gather_ps(s, _mm256_loadu_si256((const __m256i *)(w1 + i)), 4);
    _mm256_storeu_ps(o + i, _mm256_fmadd_ps(_mm256_loadu_ps(ww + i), _mm256_sub_ps(q, p), p));
  }
  for (; i < n; i++) o[i] = s[w0[i]] + ww[i] * (s[w1[i]] - s[w0[i]]);
}
KILN_FAST_AVX2 static void vlerp_avx2(const float *a, const float *b, float w, float *o, int64_t n) {
  __m256 vw = _mm256_set1_ps(w);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 p = _mm256_loadu_ps(a + i);
    _mm256_storeu_ps(o + i, _mm256_fmadd_ps(vw, _mm256_sub_ps(_mm256_loadu_ps(b + i), p), p));
  }
  for (; i < n; i++) o[i] = a[i] + w * (b[i] - a[i]);
}

#define RS_ROW_CACHE 4096 /* output row length the separable path keeps on the stack (2 rows) */

static void resize_planes(void *vctx, int64_t begin, int64_t end, int thread_index) {
  (void)thread_index;
  const rs_ctx *c = vctx;
  const kiln_fast_resize2d_desc *d = c->d;
  const resize_table *t = c->t;
  const int32_t *h0 = T_H0(t, d), *h1 = T_H1(t, d), *w0 = T_W0(t, d), *w1 = T_W1(t, d);
  const float *wh = T_WH(t, d), *ww = T_WW(t, d);
  for (int64_t p = begin; p < end; p++) {
    const float *xp = c->x + (p / d->C) * c->xbs + (p % d->C) * d->H * d->W;
    float *yp = c->y + (p / d->C) * c->ybs + (p % d->C) * d->OH * d->OW;
    if (d->mode == KILN_FAST_RESIZE_NEAREST) {
      for (int64_t oh = 0; oh < d->OH; oh++) {
        float *o = yp + oh * d->OW;
        if (oh > 0 && h0[oh] == h0[oh - 1]) { /* same source row as the previous output row */
          memcpy(o, o - d->OW, (size_t)d->OW * 4);
          continue;
        }
        const float *s = xp + (int64_t)h0[oh] * d->W;
        if (t->int_w == 1) memcpy(o, s, (size_t)d->W * 4);
        else if (t->int_w == 2 && c->isa == KILN_ISA_AVX512) dup2_avx512(s, o, d->W);
        else if (t->int_w == 2 && c->isa == KILN_ISA_AVX2) dup2_avx2(s, o, d->W);
        else if (c->isa == KILN_ISA_AVX512) gather_avx512(s, w0, o, d->OW);
        else if (c->isa == KILN_ISA_AVX2) gather_avx2(s, w0, o, d->OW);
        else
          for (int64_t i = 0; i < d->OW; i++) o[i] = s[w0[i]];
      }
    } else if (d->OW <= RS_ROW_CACHE && c->isa != KILN_ISA_SCALAR) {
      float hb[2][RS_ROW_CACHE];
      int64_t have[2] = {-1, -1}; /* source row held by each cache slot */
      for (int64_t oh = 0; oh < d->OH; oh++) {
        int64_t need[2] = {h0[oh], h1[oh]};
        const float *rp[2];
        for (int k = 0; k < 2; k++) {
          int slot = have[0] == need[k] ? 0 : have[1] == need[k] ? 1 : -1;
          if (slot < 0) { /* evict the slot the other needed row does not use */
            slot = (k == 1 && have[0] == need[0]) ? 1 : (have[0] == need[1 - k] ? 1 : 0);
            const float *src = xp + need[k] * d->W;
            if (c->isa == KILN_ISA_AVX512) hlerp_avx512(src, w0, w1, ww, hb[slot], d->OW);
            else hlerp_avx2(src, w0, w1, ww, hb[slot], d->OW);
            have[slot] = need[k];
          }
          rp[k] = hb[slot];
        }
        float *o = yp + oh * d->OW;
        if (c->isa == KILN_ISA_AVX512) vlerp_avx512(rp[0], rp[1], wh[oh], o, d->OW);
        else vlerp_avx2(rp[0], rp[1], wh[oh], o, d->OW);
      }
    } else {
      for (int64_t oh = 0; oh < d->OH; oh++) {
        const float *r0 = xp + (int64_t)h0[oh] * d->W, *r1 = xp + (int64_t)h1[oh] * d->W;
        float *o = yp + oh * d->OW;
        if (c->isa == KILN_ISA_AVX512) bilin_avx512(r0, r1, wh[oh], w0, w1, ww, o, d->OW);
        else if (c->isa == KILN_ISA_AVX2) bilin_avx2(r0, r1, wh[oh], w0, w1, ww, o, d->OW);
        else
          for (int64_t i = 0; i < d->OW; i++) {
            float top = r0[w0[i]] + ww[i] * (r0[w1[i]] - r0[w0[i]]);
            float bot = r1[w0[i]] + ww[i] * (r1[w1[i]] - r1[w0[i]]);
            o[i] = top + wh[oh] * (bot - top);
          }
      }
    }
  }
}

void kiln_fast_resize2d_run(const kiln_fast_resize2d_desc *d, const void *table, const float *x, float *y,
                            kiln_threadpool *tp) {
  rs_ctx c = {d, table, x, y, d->x_batch_stride ? d->x_batch_stride : d->C * d->H * d->W,
              d->y_batch_stride ? d->y_batch_stride : d->C * d->OH * d->OW, kiln_fast_isa(d->isa)};
  int64_t plane_bytes = (d->H * d->W + d->OH * d->OW) * 4;
  kiln_threadpool *t = kiln_fast_tp_for(tp, d->N * d->C * plane_bytes);
  int64_t grain = 32768 / (plane_bytes ? plane_bytes : 1);
  kiln_threadpool_run(t, d->N * d->C, grain < 1 ? 1 : grain, resize_planes, &c);
}
