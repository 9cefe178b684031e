/* 2-D max/average pooling and global pooling (see fast_pool.h for the method). */
#include "backend/cpu/fast_pool.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

kiln_status kiln_fast_pool2d_init(kiln_fast_pool2d_desc *d) {
  if (d->N < 0 || d->C < 0 || d->H < 1 || d->W < 1)
    return kiln_error(KILN_ERR_SHAPE, "pool input %lldx%lldx%lldx%lld", (long long)d->N, (long long)d->C,
                      (long long)d->H, (long long)d->W);
  if (d->kh < 1 || d->kw < 1 || d->sh < 1 || d->sw < 1 || d->dh < 1 || d->dw < 1 || d->pt < 0 || d->pl < 0 ||
      d->pb < 0 || d->pr < 0)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "pool kernel/stride/dilation must be >= 1 and pads >= 0");
  int64_t ekh = (int64_t)(d->kh - 1) * d->dh + 1, ekw = (int64_t)(d->kw - 1) * d->dw + 1;
  int64_t sph = d->H + d->pt + d->pb - ekh, spw = d->W + d->pl + d->pr - ekw;
  if (sph < 0 || spw < 0) return kiln_error(KILN_ERR_SHAPE, "pool kernel is larger than the padded input");
  d->OH = (d->ceil_mode ? (sph + d->sh - 1) / d->sh : sph / d->sh) + 1;
  d->OW = (d->ceil_mode ? (spw + d->sw - 1) / d->sw : spw / d->sw) + 1;
  /* ONNX / PyTorch: with ceil_mode the last window must start inside the input or left padding */
  if (d->ceil_mode && (d->OH - 1) * d->sh >= d->H + d->pt) d->OH--;
  if (d->ceil_mode && (d->OW - 1) * d->sw >= d->W + d->pl) d->OW--;
  int64_t row = (d->OW - 1) * d->sw + ekw;
  if (row + 32 > KILN_FAST_POOL_MAX_ROW || d->pl + d->W + 32 > KILN_FAST_POOL_MAX_ROW)
    return kiln_error(KILN_ERR_UNSUPPORTED, "pool row of %lld elements is too long for the fast kernel", (long long)row);
  return NULL;
}

typedef struct pool_ctx {
  const kiln_fast_pool2d_desc *d;
  const float *x;
  float *y;
  int64_t xbs, ybs, row; /* batch strides, padded temp row length */
} pool_ctx;

/* Taps of a kernel starting at s (stride-d positions) that fall in [lo, hi). */
static inline int64_t count_in(int64_t s, int32_t k, int32_t dil, int64_t lo, int64_t hi) {
  int64_t c = 0;
  for (int32_t i = 0; i < k; i++) {
    int64_t p = s + (int64_t)i * dil;
    c += p >= lo && p < hi;
  }
  return c;
}

/* ---- per-ISA row kernels ---------------------------------------------------------------------
 * vert: t[w] = reduce over the n rows r[j] (r[j] + w), w < W.
 * horz: y[o] = reduce over taps t[o*sw + j*dw], o < OW. */

#define POOL_KERNELS(SUF, ATTR, VT, VW, LOAD, STORE, MAX, ADD, MASKLOAD, MASKSTORE, MASKT, MKMASK)      \
  ATTR static void vert_##SUF(const float *const *r, int n, int64_t W, float *t, bool is_max) {      \
    int64_t w = 0;                                                                                   \
    for (; w + VW <= W; w += VW) {                                                                   \
      VT a = LOAD(r[0] + w);                                                                         \
      for (int j = 1; j < n; j++) a = is_max ? MAX(a, LOAD(r[j] + w)) : ADD(a, LOAD(r[j] + w));      \
      STORE(t + w, a);                                                                               \
    }                                                                                                \
    if (w < W) {                                                                                     \
      MASKT m = MKMASK(W - w);                                                                       \
      VT a = MASKLOAD(r[0] + w, m);                                                                  \
      for (int j = 1; j < n; j++) a = is_max ? MAX(a, MASKLOAD(r[j] + w, m)) : ADD(a, MASKLOAD(r[j] + w, m)); \
      MASKSTORE(t + w, m, a);                                                                        \
    }                                                                                                \
  }                                                                                                  \
  ATTR static void horz1_##SUF(const float *t, int32_t k, int32_t dw, int64_t OW, float *y, bool is_max, \
                               const float *inv) {                                                   \
    int64_t o = 0;                                                                                   \
    for (; o + VW <= OW; o += VW) {                                                                  \
      VT a = LOAD(t + o);                                                                            \
      for (int32_t j = 1; j < k; j++) a = is_max ? MAX(a, LOAD(t + o + j * dw)) : ADD(a, LOAD(t + o + j * dw)); \
      if (!is_max) a = VMUL_##SUF(a, LOAD(inv + o));                                                 \
      STORE(y + o, a);                                                                               \
    }                                                                                                \
    if (o < OW) {                                                                                    \
      MASKT m = MKMASK(OW - o);                                                                      \
      VT a = MASKLOAD(t + o, m);                                                                     \
      for (int32_t j = 1; j < k; j++)                                                                \
        a = is_max ? MAX(a, MASKLOAD(t + o + j * dw, m)) : ADD(a, MASKLOAD(t + o + j * dw, m));      \
      if (!is_max) a = VMUL_##SUF(a, MASKLOAD(inv + o, m));                                          \
      MASKSTORE(y + o, m, a);                                                                        \
    }                                                                                                \
  }

#define VMUL_avx512 _mm512_mul_ps
#define VMUL_avx2 _mm256_mul_ps
KILN_FAST_AVX512 static inline __mmask16 mk16(int64_t n) { return (__mmask16)((1u << n) - 1); }
KILN_FAST_AVX512 static inline __m512 ml512(const float *p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
KILN_FAST_AVX2 static inline __m256i mk8(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
POOL_KERNELS(avx512, KILN_FAST_AVX512, __m512, 16, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_max_ps, _mm512_add_ps,
             ml512, _mm512_mask_storeu_ps, __mmask16, mk16)
POOL_KERNELS(avx2, KILN_FAST_AVX2, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_max_ps, _mm256_add_ps,
             _mm256_maskload_ps, _mm256_maskstore_ps, __m256i, mk8)

static void vert_scalar(const float *const *r, int n, int64_t W, float *t, bool is_max) {
  for (int64_t w = 0; w < W; w++) {
    float a = r[0][w];
    for (int j = 1; j < n; j++) a = is_max ? (r[j][w] > a ? r[j][w] : a) : a + r[j][w];
    t[w] = a;
  }
}

/* Any horizontal stride (and the scalar ISA): plain loops over the taps. */
static void horz_any(const float *t, int32_t k, int32_t sw, int32_t dw, int64_t OW, float *y, bool is_max,
                     const float *inv) {
  for (int64_t o = 0; o < OW; o++) {
    const float *p = t + o * sw;
    float a = p[0];
    for (int32_t j = 1; j < k; j++) a = is_max ? (p[j * dw] > a ? p[j * dw] : a) : a + p[j * dw];
    y[o] = is_max ? a : a * inv[o];
  }
}

static void pool_rows(void *vctx, int64_t begin, int64_t end, int thread_index) {
  (void)thread_index;
  const pool_ctx *c = vctx;
  const kiln_fast_pool2d_desc *d = c->d;
  kiln_isa isa = kiln_fast_isa(d->isa);
  float tmp[KILN_FAST_POOL_MAX_ROW];
  float inv[KILN_FAST_POOL_MAX_ROW];     /* avg: 1 / (column count) per output column; row factor folded in */
  float colcnt[KILN_FAST_POOL_MAX_ROW];
  float pad = d->is_max ? -INFINITY : 0.0f;
  /* padding of the temp row never changes: fill it once per call */
  for (int64_t i = 0; i < d->pl; i++) tmp[i] = pad;
  for (int64_t i = d->pl + d->W; i < c->row; i++) tmp[i] = pad;
  if (!d->is_max)
    for (int64_t o = 0; o < d->OW; o++) {
      int64_t s = o * d->sw - d->pl;
      colcnt[o] = (float)(d->count_include_pad ? count_in(s, d->kw, d->dw, -d->pl, d->W + d->pr)
                                               : count_in(s, d->kw, d->dw, 0, d->W));
    }
  for (int64_t u = begin; u < end; u++) {
    int64_t plane = u / d->OH, oh = u % d->OH, n = plane / d->C, ch = plane % d->C;
    const float *xp = c->x + n * c->xbs + ch * d->H * d->W;
    float *yp = c->y + n * c->ybs + ch * d->OH * d->OW + oh * d->OW;
    const float *rows[64];
    int nr = 0;
    int64_t h0 = oh * d->sh - d->pt;
    for (int32_t j = 0; j < d->kh && nr < 64; j++) {
      int64_t h = h0 + (int64_t)j * d->dh;
      if (h >= 0 && h < d->H) rows[nr++] = xp + h * d->W;
    }
    float *t = tmp + d->pl;
    if (nr == 0) {
      for (int64_t w = 0; w < d->W; w++) t[w] = pad;
    } else if (nr > 63) { /* huge kernels: reduce in groups of 63 rows */
      goto generic;
    } else if (isa == KILN_ISA_AVX512) {
      vert_avx512(rows, nr, d->W, t, d->is_max);
    } else if (isa == KILN_ISA_AVX2) {
      vert_avx2(rows, nr, d->W, t, d->is_max);
    } else {
      vert_scalar(rows, nr, d->W, t, d->is_max);
    }
    if (0) {
    generic:
      for (int64_t w = 0; w < d->W; w++) t[w] = pad;
      for (int32_t j = 0; j < d->kh; j++) {
        int64_t h = h0 + (int64_t)j * d->dh;
        if (h < 0 || h >= d->H) continue;
        for (int64_t w = 0; w < d->W; w++)
          t[w] = d->is_max ? (xp[h * d->W + w] > t[w] ? xp[h * d->W + w] : t[w]) : t[w] + xp[h * d->W + w];
      }
    }
    if (!d->is_max) {
      float rc = (float)(d->count_include_pad ? count_in(h0, d->kh, d->dh, -d->pt, d->H + d->pb)
                                              : count_in(h0, d->kh, d->dh, 0, d->H));
      for (int64_t o = 0; o < d->OW; o++) {
        float cnt = rc * colcnt[o];
        inv[o] = cnt > 0 ? 1.0f / cnt : 0.0f;
      }
    }
    if (d->sw == 1 && isa == KILN_ISA_AVX512) horz1_avx512(tmp, d->kw, d->dw, d->OW, yp, d->is_max, inv);
    else if (d->sw == 1 && isa == KILN_ISA_AVX2) horz1_avx2(tmp, d->kw, d->dw, d->OW, yp, d->is_max, inv);
    else horz_any(tmp, d->kw, d->sw, d->dw, d->OW, yp, d->is_max, inv);
  }
}

/* Stride-1, dilation-1 MaxPool (SPPF) on planes small enough for a stack buffer: one unit per plane.
 * Horizontal max of every input row into t[H][OW], read straight from x (interior columns: plain
 * vector loads; the <= pad edge columns: scalar), then the vertical max of all interior output rows
 * (whose kh source rows all exist) as ONE flat pass over (rows x OW) contiguous elements: YOLO's 20x20
 * planes would otherwise run 20-wide rows, a vector and a masked tail each. Planes are pipelined
 * (horizontal of plane p+1 before vertical of plane p) because vector loads that straddle stores
 * still in flight cannot be store-forwarded and stall (this cost 2x before). */
#define POOL_PLANE_MAX 4096

#define HORZ_DIRECT(SUF, ATTR, VT, VW, LOAD, STORE, MAX)                                              \
  ATTR static void hdirect_##SUF(const float *x, int64_t W, int64_t pl, int32_t k, int64_t OW, float *o) { \
    int64_t a = pl < OW ? pl : OW, b = W + pl - k + 1;                                               \
    if (b > OW) b = OW;                                                                              \
    if (b < a) b = a;                                                                                \
    int64_t i = a;                                                                                   \
    for (; i + VW <= b; i += VW) {                                                                   \
      const float *p = x + i - pl;                                                                   \
      VT m = LOAD(p);                                                                                \
      for (int32_t j = 1; j < k; j++) m = MAX(m, LOAD(p + j));                                       \
      STORE(o + i, m);                                                                               \
    }                                                                                                \
    for (int64_t e = 0; e < OW; e++) { /* edges and the interior tail */                             \
      if (e == a) e = i;                                                                             \
      if (e >= OW) break;                                                                            \
      float m = -INFINITY;                                                                           \
      for (int32_t j = 0; j < k; j++) {                                                              \
        int64_t c = e - pl + j;                                                                      \
        if (c >= 0 && c < W && x[c] > m) m = x[c];                                                   \
      }                                                                                              \
      o[e] = m;                                                                                      \
    }                                                                                                \
  }
HORZ_DIRECT(avx512, KILN_FAST_AVX512, __m512, 16, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_max_ps)
HORZ_DIRECT(avx2, KILN_FAST_AVX2, __m256, 8, _mm256_loadu_ps, _mm256_storeu_ps, _mm256_max_ps)
static inline float fmax1(float a, float b) { return b > a ? b : a; }
static inline float fload1(const float *p) { return *p; }
static inline void fstore1(float *p, float v) { *p = v; }
HORZ_DIRECT(scalar, , float, 1, fload1, fstore1, fmax1)

/* AVX-512 rows of up to 64 outputs and kernels up to 16 wide: every tap of every output vector is one
 * masked load (lanes whose input column is padding read -inf and never touch memory), with masks that
 * are the same for all rows, built once per call. */
#define HM_VECS 4
#define HM_TAPS 16
typedef struct hmasks {
  __mmask16 m[HM_VECS][HM_TAPS];
  int nv;
} hmasks;

static bool hmask_build(const kiln_fast_pool2d_desc *d, hmasks *hm) {
  if (d->OW > 16 * HM_VECS || d->kw > HM_TAPS) return false;
  hm->nv = (int)((d->OW + 15) / 16);
  for (int v = 0; v < hm->nv; v++)
    for (int32_t j = 0; j < d->kw; j++) {
      unsigned m = 0;
      for (int l = 0; l < 16; l++) {
        int64_t o = v * 16 + l, c = o - d->pl + j;
        if (o < d->OW && c >= 0 && c < d->W) m |= 1u << l;
      }
      hm->m[v][j] = (__mmask16)m;
    }
  return true;
}

KILN_FAST_AVX512 static void hmask_avx512(const float *x, const hmasks *hm, int64_t pl, int32_t k, int64_t OW,
                                          float *o) {
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  for (int v = 0; v < hm->nv; v++) {
    const float *p = x + v * 16 - pl;
    __m512 m = _mm512_mask_loadu_ps(ninf, hm->m[v][0], p);
    for (int32_t j = 1; j < k; j++) m = _mm512_max_ps(m, _mm512_mask_loadu_ps(ninf, hm->m[v][j], p + j));
    int64_t left = OW - v * 16;
    _mm512_mask_storeu_ps(o + v * 16, left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1), m);
  }
}

static void s1_vert(const kiln_fast_pool2d_desc *d, kiln_isa isa, const float *t, float *yp) {
  int64_t H = d->H, OH = d->OH, OW = d->OW;
  /* interior output rows [a, b): rows oh - pt .. oh - pt + kh - 1 all inside [0, H) */
  int64_t a = d->pt, b = H - d->kh + d->pt + 1;
  if (a > OH) a = OH;
  if (b > OH) b = OH;
  if (b < a) b = a;
  for (int64_t oh = 0; oh < OH;) {
    const float *rows[64];
    int nr = 0;
    int64_t cnt, r0 = oh - d->pt;
    if (oh == a && b > a) { /* the flat interior block */
      for (int32_t j = 0; j < d->kh; j++) rows[nr++] = t + (r0 + j) * OW;
      cnt = (b - a) * OW;
    } else {
      for (int32_t j = 0; j < d->kh; j++)
        if (r0 + j >= 0 && r0 + j < H) rows[nr++] = t + (r0 + j) * OW;
      cnt = OW;
    }
    float *o = yp + oh * OW;
    if (nr == 0)
      for (int64_t i = 0; i < cnt; i++) o[i] = -INFINITY;
    else if (isa == KILN_ISA_AVX512) vert_avx512(rows, nr, cnt, o, true);
    else if (isa == KILN_ISA_AVX2) vert_avx2(rows, nr, cnt, o, true);
    else vert_scalar(rows, nr, cnt, o, true);
    oh += cnt / OW;
  }
}

static void pool_planes_s1(void *vctx, int64_t begin, int64_t end, int thread_index) {
  (void)thread_index;
  const pool_ctx *c = vctx;
  const kiln_fast_pool2d_desc *d = c->d;
  kiln_isa isa = kiln_fast_isa(d->isa);
  float tb[2][POOL_PLANE_MAX];
  int64_t H = d->H, W = d->W, OH = d->OH, OW = d->OW;
  hmasks hm;
  bool use_masks = isa == KILN_ISA_AVX512 && hmask_build(d, &hm);
  for (int64_t u = begin; u <= end; u++) {
    if (u < end) {
      const float *xp = c->x + (u / d->C) * c->xbs + (u % d->C) * H * W;
      float *t = tb[u & 1];
      for (int64_t h = 0; h < H; h++) {
        if (use_masks) hmask_avx512(xp + h * W, &hm, d->pl, d->kw, OW, t + h * OW);
        else if (isa == KILN_ISA_AVX512) hdirect_avx512(xp + h * W, W, d->pl, d->kw, OW, t + h * OW);
        else if (isa == KILN_ISA_AVX2) hdirect_avx2(xp + h * W, W, d->pl, d->kw, OW, t + h * OW);
        else hdirect_scalar(xp + h * W, W, d->pl, d->kw, OW, t + h * OW);
      }
    }
    if (u > begin) {
      int64_t p = u - 1;
      s1_vert(d, isa, tb[p & 1], c->y + (p / d->C) * c->ybs + (p % d->C) * OH * OW);
    }
  }
}

void kiln_fast_pool2d_run(const kiln_fast_pool2d_desc *d, const float *x, float *y, kiln_threadpool *tp) {
  pool_ctx c = {d, x, y, d->x_batch_stride ? d->x_batch_stride : d->C * d->H * d->W,
                d->y_batch_stride ? d->y_batch_stride : d->C * d->OH * d->OW, (d->OW - 1) * d->sw +
                (int64_t)(d->kw - 1) * d->dw + 1};
  if (c.row < d->pl + d->W) c.row = d->pl + d->W;
  c.row += 16; /* the masked tail loads of the horizontal pass read up to a vector past the end */
  int64_t units = d->N * d->C * d->OH;
  int64_t bytes = (d->N * d->C) * (d->H * d->W + d->OH * d->OW) * 4 * (int64_t)d->kh;
  kiln_threadpool *t = kiln_fast_tp_for(tp, bytes);
  if (d->is_max && d->sh == 1 && d->sw == 1 && d->dh == 1 && d->dw == 1 && d->kh <= 64 &&
      d->H * d->OW <= POOL_PLANE_MAX) {
    int64_t g = 16384 / (d->H * d->W * d->kh + 1);
    kiln_threadpool_run(t, d->N * d->C, g < 1 ? 1 : g, pool_planes_s1, &c);
    return;
  }
  int64_t per = d->W * d->kh + d->OW * d->kw; /* element ops per unit */
  int64_t grain = 4096 / (per ? per : 1);
  if (grain < 1) grain = 1;
  kiln_threadpool_run(t, units, grain, pool_rows, &c);
}

/* ---- global pooling ---------------------------------------------------------------------------- */

typedef struct gpool_ctx {
  const kiln_fast_global_pool_desc *d;
  const float *x;
  float *y;
} gpool_ctx;

KILN_FAST_AVX512 static float gpool_avx512(const float *x, int64_t n, bool is_max) {
  __m512 a = _mm512_set1_ps(is_max ? -INFINITY : 0.0f), b = a;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m512 u = _mm512_loadu_ps(x + i), v = _mm512_loadu_ps(x + i + 16);
    if (is_max) a = _mm512_max_ps(a, u), b = _mm512_max_ps(b, v);
    else a = _mm512_add_ps(a, u), b = _mm512_add_ps(b, v);
  }
  a = is_max ? _mm512_max_ps(a, b) : _mm512_add_ps(a, b);
  float r = is_max ? _mm512_reduce_max_ps(a) : _mm512_reduce_add_ps(a);
  for (; i < n; i++) r = is_max ? (x[i] > r ? x[i] : r) : r + x[i];
  return r;
}

KILN_FAST_AVX2 static float gpool_avx2(const float *x, int64_t n, bool is_max) {
  __m256 a = _mm256_set1_ps(is_max ? -INFINITY : 0.0f), b = a;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + 8);
    if (is_max) a = _mm256_max_ps(a, u), b = _mm256_max_ps(b, v);
    else a = _mm256_add_ps(a, u), b = _mm256_add_ps(b, v);
  }
  a = is_max ? _mm256_max_ps(a, b) : _mm256_add_ps(a, b);
  float t[8];
  _mm256_storeu_ps(t, a);
  float r = t[0];
  for (int j = 1; j < 8; j++) r = is_max ? (t[j] > r ? t[j] : r) : r + t[j];
  for (; i < n; i++) r = is_max ? (x[i] > r ? x[i] : r) : r + x[i];
  return r;
}

static void gpool_planes(void *vctx, int64_t begin, int64_t end, int thread_index) {
  (void)thread_index;
  const gpool_ctx *c = vctx;
  const kiln_fast_global_pool_desc *d = c->d;
  kiln_isa isa = kiln_fast_isa(d->isa);
  for (int64_t p = begin; p < end; p++) {
    const float *x = c->x + p * d->size;
    float r;
    if (isa == KILN_ISA_AVX512) r = gpool_avx512(x, d->size, d->is_max);
    else if (isa == KILN_ISA_AVX2) r = gpool_avx2(x, d->size, d->is_max);
    else {
      r = d->is_max ? -INFINITY : 0.0f;
      for (int64_t i = 0; i < d->size; i++) r = d->is_max ? (x[i] > r ? x[i] : r) : r + x[i];
    }
    /* NaN propagates through max like the reference (max_ps drops it: check once per plane) */
    if (d->is_max && isa != KILN_ISA_SCALAR)
      for (int64_t i = 0; i < d->size; i++)
        if (isnan(x[i])) {
          r = x[i];
          break;
        }
    c->y[p] = d->is_max ? r : (d->size ? r / (float)d->size : 0.0f);
  }
}

void kiln_fast_global_pool_run(const kiln_fast_global_pool_desc *d, const float *x, float *y, kiln_threadpool *tp) {
  gpool_ctx c = {d, x, y};
  kiln_threadpool *t = kiln_fast_tp_for(tp, d->planes * d->size * 4);
  int64_t grain = 8192 / (d->size ? d->size : 1);
  kiln_threadpool_run(t, d->planes, grain < 1 ? 1 : grain, gpool_planes, &c);
}
