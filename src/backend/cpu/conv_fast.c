/* Fast fp32 convolution: see conv_fast.h for the algorithm. */
#include "backend/cpu/conv_fast.h"

#include <string.h>

#include "backend/cpu/simd_math.h"

#define MR 8    /* output channels per register block (packed weights are blocked by 8) */
#define NT 48   /* output positions per tile (3 zmm / 6 ymm) */
#define MAXSEG 17
#define INPLACE_MAXK 11 /* in-place path: kernels up to 11x11 ... */
#define INPLACE_MAXT 64 /* ... and 64 taps */
/* Stride-2 in-place path: outputs at least a vector wide (a vector then spans at most two rows),
 * and at least 8 blocks of 8 output channels to share each tile's panel gather (YOLOv8n's stem,
 * 2 blocks, was 30% slower than banded phase images; /model.1, 4 blocks, -2% .. +13%). */
#define S2_OK(ow, nocb) ((ow) >= 16 && (nocb) >= 8)
#define BAND_MINR 8      /* banded strided convs: preferred minimum band height (see make_plan) */

/* Everything derived from the description; computed on the fly (cheap, no allocation). */
typedef struct plan {
  int64_t G, icg, ocg, T, sh, sw, QH, QW, plane, nq, ohw, nocb, K;
  int direct, dw;
  /* Set by run() only (it depends on the ISA, sizes must not): stride-1 "same"-width convs on
   * AVX-512 read the input in place, borders by per-tap load masks, no copy (see tile_avx512). */
  int inplace;
  /* Stride-2 variant (AVX-512, stride 2x2, see S2_OK): q = oh * OW + ow; each tile's K x 48 panel is
   * gathered from the input in place (even-column permutes, border load masks), no band copy. */
  int inplace_s2;
  /* Strided convs over big images are filled and computed in bands of BR output rows, one band per
   * work item: the thread that fills a band's phase rows (BQH = BR + kernel reach, in its own
   * workspace region) computes it right away from its L2, instead of a whole-image copy that goes
   * through memory and is then read by the other cores. */
  int banded;
  int64_t BR, nbands, BQH, bplane;
  size_t band_floats;
  size_t w_floats, bias_floats; /* packed regions, each a multiple of 16 floats */
  size_t toff_bytes, q_floats;  /* workspace regions */
} plan;

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

static void make_plan(const kiln_cpu_conv_desc *d, plan *p) {
  memset(p, 0, sizeof *p);
  p->G = d->group;
  p->icg = d->in_c / d->group;
  p->ocg = d->out_c / d->group;
  p->T = d->kernel_h * d->kernel_w;
  p->K = p->icg * p->T;
  p->sh = d->stride_h;
  p->sw = d->stride_w;
  p->ohw = d->out_h * d->out_w;
  p->dw = p->icg == 1 && p->ocg == 1;
  p->direct = d->kernel_h == 1 && d->kernel_w == 1 && d->stride_h == 1 && d->stride_w == 1 &&
              d->pad_top == 0 && d->pad_left == 0 && d->out_h == d->in_h && d->out_w == d->in_w &&
              !p->dw; /* the depthwise kernel relies on the workspace's slack (unmasked loads) */
  if (p->direct) {
    p->QH = d->in_h;
    p->QW = d->in_w;
  } else {
    /* A phase image must reach the last output plus the farthest tap (in phase units). */
    p->QH = d->out_h + ((d->kernel_h - 1) * d->dilation_h) / d->stride_h;
    p->QW = d->out_w + ((d->kernel_w - 1) * d->dilation_w) / d->stride_w;
  }
  p->plane = p->QH * p->QW;
  p->nq = d->out_h * p->QW;
  if (!p->direct && !p->dw && (p->sh > 1 || p->sw > 1)) {
    /* At least BAND_MINR = 8 rows (halo re-fill <= ~12%; measured on the 320x320 and 160x160 outputs
     * of YOLOv8n's /model.1 and /model.3, ~5-10% faster than 4), else, where that leaves fewer than 6
     * bands (80->40 layers, which are much slower unbanded), at least 4 rows (<= ~25%); and ~256
     * positions per band; the first such height whose tiles waste <= 5% (a band's last tile is
     * partial), else the least wasteful up to twice that. Only worth it with enough bands (>= 6)
     * to balance the threads. */
    int64_t br = 0;
    for (int64_t minr = BAND_MINR; minr >= 4 && !(br > 0 && cdiv(d->out_h, br) >= 6); minr = minr > 4 ? 4 : 0) {
      int64_t br0 = cdiv(256, p->QW);
      if (br0 < minr) br0 = minr;
      double best = 1e9;
      br = 0;
      for (int64_t b = br0; b <= 2 * br0 && b <= d->out_h; b++) {
        double waste = (double)(cdiv(b * p->QW, NT) * NT) / (double)(b * p->QW) - 1.0;
        if (waste < best - 1e-9) best = waste, br = b;
        if (waste <= 0.05) break;
      }
    }
    if (br > 0 && cdiv(d->out_h, br) >= 6) {
      p->banded = 1;
      p->BR = br;
      p->nbands = cdiv(d->out_h, br);
      p->BQH = br + (p->QH - d->out_h);
      p->bplane = p->BQH * p->QW;
      p->band_floats = round16((size_t)(p->sh * p->sw * d->in_c * p->bplane + NT + p->QW + 64));
    }
  }
  p->nocb = cdiv(p->ocg, MR);
  p->w_floats = p->dw ? round16((size_t)(p->G * p->T)) : round16((size_t)(p->G * p->nocb * p->K * MR));
  p->bias_floats = round16((size_t)d->out_c);
  p->toff_bytes = ((size_t)p->T * sizeof(int64_t) + 63) & ~(size_t)63;
  /* Tiles read up to NT-1 positions past the last output row and QW-OW + taps beyond: slack. */
  p->q_floats = p->direct   ? 0
                : p->banded ? p->band_floats * (size_t)p->nbands
                            : round16((size_t)(p->sh * p->sw * d->in_c * p->plane + NT + p->QW + 64));
}

kiln_status kiln_cpu_conv_validate(const kiln_cpu_conv_desc *d) {
  if (!d) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "conv: NULL description");
  if (d->batch < 1 || d->in_c < 1 || d->in_h < 1 || d->in_w < 1 || d->out_c < 1 || d->out_h < 1 ||
      d->out_w < 1 || d->kernel_h < 1 || d->kernel_w < 1 || d->stride_h < 1 || d->stride_w < 1 ||
      d->dilation_h < 1 || d->dilation_w < 1 || d->group < 1 || d->pad_top < 0 || d->pad_left < 0)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "conv: sizes, strides, dilations and group must be >= 1, pads >= 0");
  if (d->in_c % d->group || d->out_c % d->group)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "conv: group %lld does not divide channels %lld -> %lld",
                      (long long)d->group, (long long)d->in_c, (long long)d->out_c);
  /* Any output size is computable (positions past the padded input read zeros), so out_h/out_w are
   * not checked against the ONNX formula here: that is shape inference's job. */
  if (d->epilogue.act < KILN_ACT_NONE || d->epilogue.act > KILN_ACT_GELU)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "conv: unknown activation %d", (int)d->epilogue.act);
  return NULL;
}

size_t kiln_cpu_conv_packed_size(const kiln_cpu_conv_desc *d) {
  plan p;
  make_plan(d, &p);
  return (p.w_floats + p.bias_floats) * sizeof(float);
}

kiln_status kiln_cpu_conv_pack(const kiln_cpu_conv_desc *d, const float *weights, const float *bias,
                               void *packed) {
  KILN_TRY(kiln_cpu_conv_validate(d));
  if (!weights || !packed) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "conv pack: NULL weights/output");
  plan p;
  make_plan(d, &p);
  float *w = packed;
  memset(w, 0, (p.w_floats + p.bias_floats) * sizeof(float));
  if (p.dw) {
    /* [channel][tap]: the depthwise kernel broadcasts one weight per tap. */
    memcpy(w, weights, (size_t)(p.G * p.T) * sizeof(float));
  } else {
    /* [group][oc block of 8][ic][tap][8]: the K loop reads 8 consecutive floats per step (one
     * broadcast each), and padding rows past ocg are zero so partial blocks need no special case. */
    for (int64_t g = 0; g < p.G; g++)
      for (int64_t b = 0; b < p.nocb; b++) {
        float *dst = w + (size_t)((g * p.nocb + b) * p.K * MR);
        for (int64_t r = 0; r < MR; r++) {
          int64_t oc = b * MR + r;
          if (oc >= p.ocg) break;
          const float *src = weights + (size_t)((g * p.ocg + oc) * p.K);
          for (int64_t k = 0; k < p.K; k++) dst[k * MR + r] = src[k];
        }
      }
  }
  if (bias && d->has_bias) memcpy(w + p.w_floats, bias, (size_t)d->out_c * sizeof(float));
  return NULL;
}

size_t kiln_cpu_conv_workspace_size(const kiln_cpu_conv_desc *d, int n_threads) {
  (void)n_threads;
  plan p;
  make_plan(d, &p);
  return p.toff_bytes + p.q_floats * sizeof(float);
}

static kiln_isa eff_isa(const kiln_cpu_conv_desc *d) {
  return d->isa >= KILN_ISA_AVX512 ? KILN_ISA_AVX512 : d->isa;
}

const char *kiln_cpu_conv_kernel_name(const kiln_cpu_conv_desc *d) {
  plan p;
  make_plan(d, &p);
  static const char *names[3][3] = {
      {"conv_igemm.scalar", "conv_igemm.avx2", "conv_igemm.avx512"},
      {"conv1x1.scalar", "conv1x1.avx2", "conv1x1.avx512"},
      {"conv_dw.scalar", "conv_dw.avx2", "conv_dw.avx512"},
  };
  int kind = p.dw ? 2 : p.direct ? 1 : 0;
  if (kind == 0 && eff_isa(d) == KILN_ISA_AVX512 && d->stride_h == 1 && d->stride_w == 1 &&
      d->out_w == d->in_w && d->kernel_h <= INPLACE_MAXK && d->kernel_w <= INPLACE_MAXK && p.T <= INPLACE_MAXT)
    return "conv_igemm_inplace.avx512";
  if (kind == 0 && eff_isa(d) == KILN_ISA_AVX512 && d->stride_h == 2 && d->stride_w == 2 && S2_OK(d->out_w, p.nocb) &&
      d->kernel_h <= INPLACE_MAXK && d->kernel_w <= INPLACE_MAXK && p.T <= INPLACE_MAXT)
    return "conv_igemm_inplace_s2.avx512";
  return names[kind][eff_isa(d)];
}

/* ------------------------------------------------------------------------------------------------ */
/* Run context shared by the parallel loops.                                                         */

typedef struct run_ctx {
  const kiln_cpu_conv_desc *d;
  plan p;
  kiln_isa isa;
  const float *w, *bias;
  const float *x;     /* this image */
  const float *q;     /* phase images (or x itself when direct) */
  float *qw;          /* writable phase images */
  const float *res;   /* this image's residual or NULL */
  float *y;           /* this image's output */
  const int64_t *toff;
  int64_t ntiles, nocs, ocb_per;
  float *panels;       /* stride-2 in place: one K x NT panel per thread, panel_floats apart */
  size_t panel_floats;
  int phase_used[64]; /* by phase index, for strides up to 8x8; larger strides use all phases */
} run_ctx;

/* Output segments of one vector of W lanes starting at q position qv: lanes [l0, l1) go to output
 * index q + delta (rows of the q space are QW wide, of which the first OW are real outputs). */
typedef struct seg {
  int64_t delta;
  int l0, l1;
} seg;

static int make_segs(const run_ctx *c, int64_t qv, int W, seg *s) {
  const int64_t QW = c->p.QW, OW = c->d->out_w, OH = c->d->out_h;
  int n = 0;
  for (int64_t r = qv / QW; r < OH && r * QW < qv + W; r++) {
    int64_t l0 = r * QW - qv, l1 = r * QW + OW - qv;
    if (l0 < 0) l0 = 0;
    if (l1 > W) l1 = W;
    if (l1 > l0) s[n++] = (seg){r * OW - r * QW, (int)l0, (int)l1};
  }
  return n;
}

/* ---- phase-image fill ---------------------------------------------------------------------------- */

KILN_TARGET_AVX512 static void copy_stride2_avx512(float *dst, const float *src, int64_t n) {
  /* dst[j] = src[2j]: two loads and one two-source permute per 16 outputs. */
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    __m512 lo = _mm512_loadu_ps(src + 2 * j);
    __m512 hi = _mm512_maskz_loadu_ps(0x7fff, src + 2 * j + 16); /* last odd element not needed */
    _mm512_storeu_ps(dst + j, _mm512_permutex2var_ps(lo, even, hi));
  }
  for (; j < n; j++) dst[j] = src[2 * j];
}

/* Phase rows gi0 .. gi0 + nrows - 1 of phase ph, channel ic, into dst (rows QW apart). */
static void fill_rows(const run_ctx *c, int64_t ph, int64_t ic, int64_t gi0, int64_t nrows, float *dst) {
  const kiln_cpu_conv_desc *d = c->d;
  const plan *p = &c->p;
  int64_t a = ph / p->sw, b = ph % p->sw;
  const float *src = c->x + (size_t)(ic * d->in_h * d->in_w);
  /* Columns j with sw*j + b - pad_left inside [0, in_w): [j0, j1). */
  int64_t j0 = cdiv(d->pad_left - b, p->sw);
  if (d->pad_left - b <= 0) j0 = 0;
  int64_t j1 = cdiv(d->in_w + d->pad_left - b, p->sw);
  if (j1 > p->QW) j1 = p->QW;
  if (j0 > j1) j0 = j1;
  for (int64_t i = gi0; i < gi0 + nrows; i++, dst += p->QW) {
    int64_t ih = p->sh * i + a - d->pad_top;
    if (ih < 0 || ih >= d->in_h || j0 >= j1) {
      memset(dst, 0, (size_t)p->QW * sizeof(float));
      continue;
    }
    memset(dst, 0, (size_t)j0 * sizeof(float));
    const float *s = src + ih * d->in_w + p->sw * j0 + b - d->pad_left;
    if (p->sw == 1) {
      memcpy(dst + j0, s, (size_t)(j1 - j0) * sizeof(float));
    } else if (p->sw == 2 && c->isa >= KILN_ISA_AVX512 && j1 - j0 >= 16 &&
               /* the vector loop reads up to 2*(n-1)+1 + 1 past s: stay inside the row's image */
               s + 2 * (j1 - j0) <= c->x + (size_t)(d->in_c * d->in_h * d->in_w)) {
      copy_stride2_avx512(dst + j0, s, j1 - j0);
    } else {
      for (int64_t j = 0; j < j1 - j0; j++) dst[j0 + j] = s[j * p->sw];
    }
    memset(dst + j1, 0, (size_t)(p->QW - j1) * sizeof(float));
  }
}

static void fill_fn(void *ctx, int64_t begin, int64_t end, int ti) {
  (void)ti;
  run_ctx *c = ctx;
  const kiln_cpu_conv_desc *d = c->d;
  const plan *p = &c->p;
  for (int64_t it = begin; it < end; it++) {
    int64_t ph = it / d->in_c, ic = it % d->in_c;
    if (ph < 64 && !c->phase_used[ph]) continue;
    fill_rows(c, ph, ic, 0, p->QH, c->qw + (size_t)((ph * d->in_c + ic) * p->plane));
  }
}

/* ---- epilogue helpers ---------------------------------------------------------------------------- */

static inline float epi_scalar(const kiln_cpu_conv_desc *d, float v, float r) {
  const kiln_epilogue *e = &d->epilogue;
  if (d->has_residual && e->residual_before_act) v += r;
  v = kiln_act_apply_scalar(v, e->act, e->alpha, e->beta);
  if (d->has_residual && !e->residual_before_act) v += r;
  return v;
}

/* ---- scalar ---------------------------------------------------------------------------------------- */

static void tile_scalar(const run_ctx *c, int64_t g, int64_t tile, int64_t ocb0, int64_t ocb1) {
  const kiln_cpu_conv_desc *d = c->d;
  const plan *p = &c->p;
  const int64_t q0 = tile * NT;
  const int nv = (int)(p->nq - q0 < NT ? p->nq - q0 : NT);
  const float *B = c->q + (size_t)(g * p->icg * p->plane) + q0;
  seg segs[MAXSEG];
  int ns = make_segs(c, q0, NT, segs);
  for (int64_t ob = ocb0; ob < ocb1; ob++) {
    const float *A = c->w + (size_t)((g * p->nocb + ob) * p->K * MR);
    float acc[MR][NT];
    memset(acc, 0, sizeof acc);
    for (int64_t ic = 0; ic < p->icg; ic++)
      for (int64_t t = 0; t < p->T; t++, A += MR) {
        const float *b = B + ic * p->plane + c->toff[t];
        for (int r = 0; r < MR; r++)
          for (int j = 0; j < nv; j++) acc[r][j] += A[r] * b[j];
      }
    for (int r = 0; r < MR && ob * MR + r < p->ocg; r++) {
      int64_t oc = g * p->ocg + ob * MR + r;
      float *yo = c->y + oc * p->ohw;
      const float *ro = c->res ? c->res + oc * p->ohw : NULL;
      for (int s = 0; s < ns; s++)
        for (int l = segs[s].l0; l < segs[s].l1; l++) {
          int64_t o = q0 + l + segs[s].delta;
          yo[o] = epi_scalar(d, acc[r][l] + c->bias[oc], ro ? ro[o] : 0.0f);
        }
    }
  }
}

static void dw_scalar(const run_ctx *c, int64_t ch, int64_t tile) {
  const kiln_cpu_conv_desc *d = c->d;
  const plan *p = &c->p;
  const int64_t q0 = tile * NT;
  const int nv = (int)(p->nq - q0 < NT ? p->nq - q0 : NT);
  const float *B = c->q + (size_t)(ch * p->plane) + q0;
  const float *wt = c->w + ch * p->T;
  float acc[NT] = {0};
  for (int64_t t = 0; t < p->T; t++) {
    const float *b = B + c->toff[t];
    for (int j = 0; j < nv; j++) acc[j] += wt[t] * b[j];
  }
  seg segs[MAXSEG];
  int ns = make_segs(c, q0, NT, segs);
  float *yo = c->y + ch * p->ohw;
  const float *ro = c->res ? c->res + ch * p->ohw : NULL;
  for (int s = 0; s < ns; s++)
    for (int l = segs[s].l0; l < segs[s].l1; l++) {
      int64_t o = q0 + l + segs[s].delta;
      yo[o] = epi_scalar(d, acc[l] + c->bias[ch], ro ? ro[o] : 0.0f);
    }
}

/* ---- AVX-512 --------------------------------------------------------------------------------------- */

KILN_TARGET_AVX512 static inline __mmask16 lanes512(int l0, int l1) {
  return (__mmask16)(((1u << l1) - 1u) & ~((1u << l0) - 1u));
}

/* Epilogue + store of one 16-lane accumulator at q position qv for output channel oc. */
KILN_TARGET_AVX512 static inline void store512(const run_ctx *c, __m512 v, int64_t oc, int64_t qv,
                                               const seg *s, int ns) {
  const kiln_cpu_conv_desc *d = c->d;
  const kiln_epilogue *e = &d->epilogue;
  float *yo = c->y + oc * c->p.ohw + qv;
  v = _mm512_add_ps(v, _mm512_set1_ps(c->bias[oc]));
  __m512 r = _mm512_setzero_ps();
  if (c->res) {
    const float *ro = c->res + oc * c->p.ohw + qv;
    for (int i = 0; i < ns; i++) r = _mm512_mask_loadu_ps(r, lanes512(s[i].l0, s[i].l1), ro + s[i].delta);
    if (e->residual_before_act) v = _mm512_add_ps(v, r);
  }
  v = kiln_act_apply_avx512(v, e->act, e->alpha, e->beta);
  if (c->res && !e->residual_before_act) v = _mm512_add_ps(v, r);
  for (int i = 0; i < ns; i++) _mm512_mask_storeu_ps(yo + s[i].delta, lanes512(s[i].l0, s[i].l1), v);
}

/* The 8 x 48 register block: 24 named accumulators (an indexed array gets spilled by GCC every
 * iteration), stored to acc only once after the K loop. */
KILN_TARGET_AVX512 static inline __attribute__((always_inline)) void
mk_avx512(const float *A, const float *B, int64_t icg, int64_t plane, const int64_t *toff, int64_t T,
          __mmask16 m0, __mmask16 m1, __mmask16 m2, __m512 acc[MR][3]) {
#define Z _mm512_setzero_ps()
  __m512 c00 = Z, c01 = Z, c02 = Z, c10 = Z, c11 = Z, c12 = Z, c20 = Z, c21 = Z, c22 = Z, c30 = Z, c31 = Z,
         c32 = Z, c40 = Z, c41 = Z, c42 = Z, c50 = Z, c51 = Z, c52 = Z, c60 = Z, c61 = Z, c62 = Z, c70 = Z,
         c71 = Z, c72 = Z;
#undef Z
  for (int64_t ic = 0; ic < icg; ic++) {
    const float *bi = B + ic * plane;
    for (int64_t t = 0; t < T; t++, A += MR) {
      const float *b = bi + toff[t];
      __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
      __m512 b1 = _mm512_maskz_loadu_ps(m1, b + 16);
      __m512 b2 = _mm512_maskz_loadu_ps(m2, b + 32);
      __m512 a;
#define ROW(r)                                                                                       \
  a = _mm512_set1_ps(A[r]);                                                                          \
  c##r##0 = _mm512_fmadd_ps(a, b0, c##r##0);                                                         \
  c##r##1 = _mm512_fmadd_ps(a, b1, c##r##1);                                                         \
  c##r##2 = _mm512_fmadd_ps(a, b2, c##r##2);
      ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7)
#undef ROW
    }
  }
#define OUT(r) acc[r][0] = c##r##0, acc[r][1] = c##r##1, acc[r][2] = c##r##2;
  OUT(0) OUT(1) OUT(2) OUT(3) OUT(4) OUT(5) OUT(6) OUT(7)
#undef OUT
}

/* The in-place variant: every tap has its own three load masks (lanes whose input pixel lies
 * outside the image read zero: the padding), loaded from mk[t][0..2]. Same 8 x 48 block. */
KILN_TARGET_AVX512 static inline __attribute__((always_inline)) void
mk_avx512_masked(const float *A, const float *B, int64_t icg, int64_t plane, const int64_t *toff, int64_t T,
                 const __mmask16 (*mk)[3], __m512 acc[MR][3]) {
#define Z _mm512_setzero_ps()
  __m512 c00 = Z, c01 = Z, c02 = Z, c10 = Z, c11 = Z, c12 = Z, c20 = Z, c21 = Z, c22 = Z, c30 = Z, c31 = Z,
         c32 = Z, c40 = Z, c41 = Z, c42 = Z, c50 = Z, c51 = Z, c52 = Z, c60 = Z, c61 = Z, c62 = Z, c70 = Z,
         c71 = Z, c72 = Z;
#undef Z
  for (int64_t ic = 0; ic < icg; ic++) {
    const float *bi = B + ic * plane;
    for (int64_t t = 0; t < T; t++, A += MR) {
      const float *b = bi + toff[t];
      __m512 b0 = _mm512_maskz_loadu_ps(mk[t][0], b);
      __m512 b1 = _mm512_maskz_loadu_ps(mk[t][1], b + 16);
      __m512 b2 = _mm512_maskz_loadu_ps(mk[t][2], b + 32);
      __m512 a;
#define ROW(r)                                                                                       \
  a = _mm512_set1_ps(A[r]);                                                                          \
  c##r##0 = _mm512_fmadd_ps(a, b0, c##r##0);                                                         \
  c##r##1 = _mm512_fmadd_ps(a, b1, c##r##1);                                                         \
  c##r##2 = _mm512_fmadd_ps(a, b2, c##r##2);
      ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5) ROW(6) ROW(7)
#undef ROW
    }
  }
#define OUT(r) acc[r][0] = c##r##0, acc[r][1] = c##r##1, acc[r][2] = c##r##2;
  OUT(0) OUT(1) OUT(2) OUT(3) OUT(4) OUT(5) OUT(6) OUT(7)
#undef OUT
}

/* Load masks of the 48 lanes of the tile at q0 for every tap, in place: lane q = oh * W + ow reads
 * input (oh + kh*dh - pt, ow + kw*dw - pl), valid iff inside the image (which also keeps every
 * enabled lane's address inside this channel's plane). Row and column validity are separable:
 * one 48-bit mask per kernel row and per kernel column, ANDed per tap. */
static void inplace_masks(const run_ctx *c, int64_t q0, __mmask16 (*mk)[3]) {
  const kiln_cpu_conv_desc *d = c->d;
  const int64_t W = d->in_w, H = d->in_h;
  uint64_t rowm[INPLACE_MAXK], colm[INPLACE_MAXK];
  for (int64_t k = 0; k < d->kernel_h; k++) rowm[k] = 0;
  for (int64_t k = 0; k < d->kernel_w; k++) colm[k] = 0;
  int64_t oh = q0 / W, ow = q0 % W;
  for (int l = 0; l < NT; l++) {
    for (int64_t k = 0; k < d->kernel_h; k++) {
      int64_t ih = oh + k * d->dilation_h - d->pad_top;
      if (ih >= 0 && ih < H) rowm[k] |= 1ull << l;
    }
    for (int64_t k = 0; k < d->kernel_w; k++) {
      int64_t iw = ow + k * d->dilation_w - d->pad_left;
      if (iw >= 0 && iw < W) colm[k] |= 1ull << l;
    }
    if (++ow == W) ow = 0, oh++;
  }
  for (int64_t kh = 0; kh < d->kernel_h; kh++)
    for (int64_t kw = 0; kw < d->kernel_w; kw++) {
      uint64_t m = rowm[kh] & colm[kw];
      __mmask16 *o = mk[kh * d->kernel_w + kw];
      o[0] = (__mmask16)m, o[1] = (__mmask16)(m >> 16), o[2] = (__mmask16)(m >> 32);
    }
}

/* Spread the low 8 bits of m to the even bits of a 16-bit mask (lane l -> element 2l). */
static inline uint32_t spread8(uint32_t m) {
  m &= 0xff;
  m = (m | m << 4) & 0x0f0f;
  m = (m | m << 2) & 0x3333;
  m = (m | m << 1) & 0x5555;
  return m;
}

/* Stride-2 in place: q = oh * OW + ow (no junk columns; OW >= 16), so each of a tile's 3 vectors
 * of 16 lanes covers at most two output rows: lanes [0, n) of row oh (segment A), the rest of row
 * oh + 1 (segment B). Lane l of a segment reads input element base + 2l + toff[t] (toff as in the
 * stride-1 in-place path); base is per vector and segment. Per tap, vector and segment: two 16-float
 * load masks (even elements of the valid lanes), computed arithmetically (valid lanes are a range). */
typedef struct s2tile {
  int64_t base[3][2];
  int cross[3];
  __mmask16 mk[INPLACE_MAXT][3][4]; /* lo A, hi A, lo B, hi B */
} s2tile;

/* Lanes [l0, l1) hold output row r, lane l at column ow0 + l - l0: the mask of those reading inside
 * the image for the tap's offset (rowoff rows, off columns) in input pixels. */
static uint32_t s2_lanes(const kiln_cpu_conv_desc *d, int64_t r, int64_t ow0, int l0, int l1, int64_t rowoff,
                         int64_t off) {
  int64_t ih = 2 * r + rowoff;
  if (l1 <= l0 || r >= d->out_h || ih < 0 || ih >= d->in_h) return 0;
  int64_t wlo = off >= 0 ? 0 : (-off + 1) / 2, whi = d->in_w - off <= 0 ? 0 : (d->in_w - off + 1) / 2;
  if (whi > d->out_w) whi = d->out_w;
  int64_t lo = l0 + wlo - ow0, hi = l0 + whi - ow0;
  if (lo < l0) lo = l0;
  if (hi > l1) hi = l1;
  return hi > lo ? (uint32_t)(((1ull << hi) - 1ull) & ~((1ull << lo) - 1ull)) : 0;
}

static void inplace_s2_masks(const run_ctx *c, int64_t q0, s2tile *st) {
  const kiln_cpu_conv_desc *d = c->d;
  const int64_t W = d->in_w, OW = d->out_w;
  for (int j = 0; j < 3; j++) {
    int64_t qv = q0 + 16 * j, oh = qv / OW, ow = qv % OW;
    int n = OW - ow < 16 ? (int)(OW - ow) : 16;
    st->base[j][0] = 2 * oh * W + 2 * ow;
    st->base[j][1] = 2 * (oh + 1) * W - 2 * n;
    st->cross[j] = n < 16 && oh + 1 < d->out_h;
    for (int64_t kh = 0; kh < d->kernel_h; kh++) {
      int64_t rowoff = kh * d->dilation_h - d->pad_top;
      for (int64_t kw = 0; kw < d->kernel_w; kw++) {
        int64_t off = kw * d->dilation_w - d->pad_left;
        uint32_t a = s2_lanes(d, oh, ow, 0, n, rowoff, off);
        uint32_t b = st->cross[j] ? s2_lanes(d, oh + 1, 0, n, 16, rowoff, off) : 0;
        __mmask16 *o = st->mk[kh * d->kernel_w + kw][j];
        o[0] = (__mmask16)spread8(a), o[1] = (__mmask16)spread8(a >> 8);
        o[2] = (__mmask16)spread8(b), o[3] = (__mmask16)spread8(b >> 8);
      }
    }
  }
}

KILN_TARGET_AVX512 static inline __attribute__((always_inline)) __m512
ld_s2(const float *b, __mmask16 lo, __mmask16 hi, __m512i even) {
  return _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(lo, b), even, _mm512_maskz_loadu_ps(hi, b + 16));
}

/* Stride-2 in place, one tile: its B panel (K x 48, the even-column picks of every tap, zeros
 * for the padding) is gathered once into this thread's panel (L1/L2-resident), then every block of
 * 8 output channels runs the plain 8 x 48 kernel over it: the permutes are paid once per tile, not
 * once per channel block, and no band of the input is copied. */
KILN_TARGET_AVX512 static void tile_s2_avx512(const run_ctx *c, int64_t g, int64_t tile, int64_t ocb0,
                                              int64_t ocb1, float *panel) {
  const plan *p = &c->p;
  const int64_t q0 = tile * NT, T = p->T;
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  s2tile st;
  inplace_s2_masks(c, q0, &st);
  const float *B = c->q + (size_t)(g * p->icg * p->plane);
  float *pp = panel;
  for (int64_t ic = 0; ic < p->icg; ic++) {
    const float *bi = B + ic * p->plane;
    for (int64_t t = 0; t < T; t++, pp += NT) {
      const float *b = bi + c->toff[t];
      for (int j = 0; j < 3; j++) {
        const __mmask16 *m = st.mk[t][j];
        __m512 v = ld_s2(b + st.base[j][0], m[0], m[1], even);
        if (st.cross[j]) v = _mm512_add_ps(v, ld_s2(b + st.base[j][1], m[2], m[3], even));
        _mm512_store_ps(pp + 16 * j, v);
      }
    }
  }
  int64_t ptoff[INPLACE_MAXT];
  for (int64_t t = 0; t < T; t++) ptoff[t] = t * NT;
  seg segs[3][MAXSEG];
  int ns[3];
  for (int j = 0; j < 3; j++) ns[j] = make_segs(c, q0 + 16 * j, 16, segs[j]);
  for (int64_t ob = ocb0; ob < ocb1; ob++) {
    const float *A = c->w + (size_t)((g * p->nocb + ob) * p->K * MR);
    __m512 acc[MR][3];
    mk_avx512(A, panel, p->icg, T * NT, ptoff, T, 0xffff, 0xffff, 0xffff, acc);
    for (int r = 0; r < MR && ob * MR + r < p->ocg; r++) {
      int64_t oc = g * p->ocg + ob * MR + r;
      for (int j = 0; j < 3; j++)
        if (ns[j]) store512(c, acc[r][j], oc, q0 + 16 * j, segs[j], ns[j]);
    }
  }
}

KILN_TARGET_AVX512 static void tile_avx512(const run_ctx *c, int64_t g, int64_t tile, int64_t ocb0,
                                           int64_t ocb1) {
  const plan *p = &c->p;
  const int64_t q0 = tile * NT;
  const int nv = (int)(p->nq - q0 < NT ? p->nq - q0 : NT);
  if (p->inplace) {
    __mmask16 mk[INPLACE_MAXT][3];
    inplace_masks(c, q0, mk);
    const float *B = c->q + (size_t)(g * p->icg * p->plane) + q0;
    seg segs[3][MAXSEG];
    int ns[3];
    for (int j = 0; j < 3; j++) ns[j] = make_segs(c, q0 + 16 * j, 16, segs[j]);
    for (int64_t ob = ocb0; ob < ocb1; ob++) {
      const float *A = c->w + (size_t)((g * p->nocb + ob) * p->K * MR);
      __m512 acc[MR][3];
      mk_avx512_masked(A, B, p->icg, p->plane, c->toff, p->T, (const __mmask16(*)[3])mk, acc);
      for (int r = 0; r < MR && ob * MR + r < p->ocg; r++) {
        int64_t oc = g * p->ocg + ob * MR + r;
        for (int j = 0; j < 3; j++)
          if (ns[j]) store512(c, acc[r][j], oc, q0 + 16 * j, segs[j], ns[j]);
      }
    }
    return;
  }
  /* Load masks matter only when reading the input in place (no slack after it). */
  __mmask16 m0 = 0xffff, m1 = 0xffff, m2 = 0xffff;
  if (p->direct && nv < NT) {
    m0 = lanes512(0, nv < 16 ? nv : 16);
    m1 = nv > 16 ? lanes512(0, nv < 32 ? nv - 16 : 16) : 0;
    m2 = nv > 32 ? lanes512(0, nv - 32) : 0;
  }
  const float *B = c->q + (size_t)(g * p->icg * p->plane) + q0;
  seg segs[3][MAXSEG];
  int ns[3];
  for (int j = 0; j < 3; j++) ns[j] = make_segs(c, q0 + 16 * j, 16, segs[j]);
  const int64_t T = p->T, icg = p->icg, plane = p->plane;
  const int64_t *toff = c->toff;
  for (int64_t ob = ocb0; ob < ocb1; ob++) {
    const float *A = c->w + (size_t)((g * p->nocb + ob) * p->K * MR);
    __m512 acc[MR][3];
    mk_avx512(A, B, icg, plane, toff, T, m0, m1, m2, acc);
    for (int r = 0; r < MR && ob * MR + r < p->ocg; r++) {
      int64_t oc = g * p->ocg + ob * MR + r;
      for (int j = 0; j < 3; j++)
        if (ns[j]) store512(c, acc[r][j], oc, q0 + 16 * j, segs[j], ns[j]);
    }
  }
}

KILN_TARGET_AVX512 static void dw_avx512(const run_ctx *c, int64_t ch, int64_t tile) {
  const plan *p = &c->p;
  const int64_t q0 = tile * NT;
  const float *B = c->q + (size_t)(ch * p->plane) + q0; /* never direct: dw 1x1 is rare, has slack */
  const float *wt = c->w + ch * p->T;
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0;
  for (int64_t t = 0; t < p->T; t++) {
    const float *b = B + c->toff[t];
    __m512 w = _mm512_set1_ps(wt[t]);
    a0 = _mm512_fmadd_ps(w, _mm512_loadu_ps(b), a0);
    a1 = _mm512_fmadd_ps(w, _mm512_loadu_ps(b + 16), a1);
    a2 = _mm512_fmadd_ps(w, _mm512_loadu_ps(b + 32), a2);
  }
  __m512 acc[3] = {a0, a1, a2};
  for (int j = 0; j < 3; j++) {
    seg s[MAXSEG];
    int ns = make_segs(c, q0 + 16 * j, 16, s);
    if (ns) store512(c, acc[j], ch, q0 + 16 * j, s, ns);
  }
}

/* ---- AVX2 ------------------------------------------------------------------------------------------ */

KILN_TARGET_AVX2 static inline __m256i lanes256(int l0, int l1) {
  __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i ge = _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(l0 - 1));
  __m256i lt = _mm256_cmpgt_epi32(_mm256_set1_epi32(l1), idx);
  return _mm256_and_si256(ge, lt);
}

KILN_TARGET_AVX2 static inline void store256(const run_ctx *c, __m256 v, int64_t oc, int64_t qv,
                                             const seg *s, int ns) {
  const kiln_epilogue *e = &c->d->epilogue;
  float *yo = c->y + oc * c->p.ohw + qv;
  v = _mm256_add_ps(v, _mm256_set1_ps(c->bias[oc]));
  __m256 r = _mm256_setzero_ps();
  if (c->res) {
    const float *ro = c->res + oc * c->p.ohw + qv;
    for (int i = 0; i < ns; i++) {
      __m256i m = lanes256(s[i].l0, s[i].l1);
      r = _mm256_blendv_ps(r, _mm256_maskload_ps(ro + s[i].delta, m), _mm256_castsi256_ps(m));
    }
    if (e->residual_before_act) v = _mm256_add_ps(v, r);
  }
  v = kiln_act_apply_avx2(v, e->act, e->alpha, e->beta);
  if (c->res && !e->residual_before_act) v = _mm256_add_ps(v, r);
  for (int i = 0; i < ns; i++) _mm256_maskstore_ps(yo + s[i].delta, lanes256(s[i].l0, s[i].l1), v);
}

/* 4 output channels (rows r0..r0+3 of an 8-block) x 24 positions; 12 accumulators + 3 B + 1 A of the
 * 16 ymm registers. `masked` loads only for the in-place 1x1 path's last tile. */
KILN_TARGET_AVX2 static inline __attribute__((always_inline)) void
mk_avx2(const run_ctx *c, const float *A, const float *B, int masked, __m256i m0, __m256i m1, __m256i m2,
        __m256 acc[4][3]) {
  const int64_t T = c->p.T, icg = c->p.icg, plane = c->p.plane;
  const int64_t *toff = c->toff;
#define Z _mm256_setzero_ps()
  __m256 c00 = Z, c01 = Z, c02 = Z, c10 = Z, c11 = Z, c12 = Z, c20 = Z, c21 = Z, c22 = Z, c30 = Z, c31 = Z,
         c32 = Z;
#undef Z
  for (int64_t ic = 0; ic < icg; ic++) {
    const float *bi = B + ic * plane;
    for (int64_t t = 0; t < T; t++, A += MR) {
      const float *b = bi + toff[t];
      __m256 b0, b1, b2, a;
      if (masked) {
        b0 = _mm256_maskload_ps(b, m0);
        b1 = _mm256_maskload_ps(b + 8, m1);
        b2 = _mm256_maskload_ps(b + 16, m2);
      } else {
        b0 = _mm256_loadu_ps(b);
        b1 = _mm256_loadu_ps(b + 8);
        b2 = _mm256_loadu_ps(b + 16);
      }
#define ROW(r)                                                                                       \
  a = _mm256_broadcast_ss(A + r);                                                                    \
  c##r##0 = _mm256_fmadd_ps(a, b0, c##r##0);                                                         \
  c##r##1 = _mm256_fmadd_ps(a, b1, c##r##1);                                                         \
  c##r##2 = _mm256_fmadd_ps(a, b2, c##r##2);
      ROW(0) ROW(1) ROW(2) ROW(3)
#undef ROW
    }
  }
#define OUT(r) acc[r][0] = c##r##0, acc[r][1] = c##r##1, acc[r][2] = c##r##2;
  OUT(0) OUT(1) OUT(2) OUT(3)
#undef OUT
}

KILN_TARGET_AVX2 static void tile_avx2(const run_ctx *c, int64_t g, int64_t tile, int64_t ocb0, int64_t ocb1) {
  const plan *p = &c->p;
  const int64_t q0 = tile * NT;
  const int nv = (int)(p->nq - q0 < NT ? p->nq - q0 : NT);
  const int masked = p->direct && nv < NT;
  const float *B = c->q + (size_t)(g * p->icg * p->plane) + q0;
  seg segs[6][MAXSEG];
  int ns[6];
  for (int j = 0; j < 6; j++) ns[j] = make_segs(c, q0 + 8 * j, 8, segs[j]);
  for (int64_t ob = ocb0; ob < ocb1; ob++) {
    const float *A = c->w + (size_t)((g * p->nocb + ob) * p->K * MR);
    for (int half = 0; half < 2; half++) {
      int64_t qh = 24 * half;
      if (qh >= nv) break;
      __m256i m[3];
      for (int j = 0; j < 3; j++) {
        int lo = (int)qh + 8 * j, cnt = nv - lo;
        m[j] = lanes256(0, cnt < 0 ? 0 : cnt > 8 ? 8 : cnt);
      }
      for (int rh = 0; rh < 2; rh++) {
        if (ob * MR + rh * 4 >= p->ocg) break;
        __m256 acc[4][3];
        if (masked)
          mk_avx2(c, A + rh * 4, B + qh, 1, m[0], m[1], m[2], acc);
        else
          mk_avx2(c, A + rh * 4, B + qh, 0, m[0], m[1], m[2], acc);
        for (int r = 0; r < 4 && ob * MR + rh * 4 + r < p->ocg; r++) {
          int64_t oc = g * p->ocg + ob * MR + rh * 4 + r;
          for (int j = 0; j < 3; j++) {
            int vj = half * 3 + j;
            if (ns[vj]) store256(c, acc[r][j], oc, q0 + 8 * vj, segs[vj], ns[vj]);
          }
        }
      }
    }
  }
}

/* ---- driver -------------------------------------------------------------------------------------- */

static void compute_fn(void *ctx, int64_t begin, int64_t end, int ti) {
  run_ctx *c = ctx;
  const plan *p = &c->p;
  for (int64_t it = begin; it < end; it++) {
    if (p->dw) {
      int64_t ch = it / c->ntiles, tile = it % c->ntiles;
      if (c->isa >= KILN_ISA_AVX512)
        dw_avx512(c, ch, tile);
      else
        dw_scalar(c, ch, tile);
      continue;
    }
    /* Item order: oc chunk fastest, so the threads share one tile's input in L2/L3 at a time. */
    int64_t os = it % c->nocs, rest = it / c->nocs;
    int64_t tile = rest % c->ntiles, g = rest / c->ntiles;
    int64_t ob0 = os * c->ocb_per, ob1 = ob0 + c->ocb_per;
    if (ob1 > p->nocb) ob1 = p->nocb;
    if (ob0 >= ob1) continue;
    if (p->inplace_s2)
      tile_s2_avx512(c, g, tile, ob0, ob1, c->panels + (size_t)ti * c->panel_floats);
    else if (c->isa >= KILN_ISA_AVX512)
      tile_avx512(c, g, tile, ob0, ob1);
    else if (c->isa == KILN_ISA_AVX2)
      tile_avx2(c, g, tile, ob0, ob1);
    else
      tile_scalar(c, g, tile, ob0, ob1);
  }
}

static void band_fn(void *ctx, int64_t begin, int64_t end, int ti) {
  (void)ti;
  const run_ctx *c = ctx;
  const kiln_cpu_conv_desc *d = c->d;
  const plan *p = &c->p;
  for (int64_t band = begin; band < end; band++) {
    const int64_t r0 = band * p->BR, nr = d->out_h - r0 < p->BR ? d->out_h - r0 : p->BR;
    float *buf = c->qw + (size_t)band * p->band_floats;
    for (int64_t ph = 0; ph < p->sh * p->sw; ph++) {
      if (ph < 64 && !c->phase_used[ph]) continue;
      for (int64_t ic = 0; ic < d->in_c; ic++)
        fill_rows(c, ph, ic, r0, p->BQH, buf + (size_t)((ph * d->in_c + ic) * p->bplane));
    }
    /* The band as a small image of nr output rows: same kernels, local q space, shifted output. */
    run_ctx bc = *c;
    kiln_cpu_conv_desc bd = *d;
    bd.out_h = nr;
    bc.d = &bd;
    bc.q = buf;
    bc.p.plane = p->bplane;
    bc.p.nq = nr * p->QW;
    bc.y = c->y + r0 * d->out_w;
    bc.res = c->res ? c->res + r0 * d->out_w : NULL;
    const int64_t nt = cdiv(bc.p.nq, NT);
    for (int64_t g = 0; g < p->G; g++)
      for (int64_t t = 0; t < nt; t++) {
        if (c->isa >= KILN_ISA_AVX512)
          tile_avx512(&bc, g, t, 0, p->nocb);
        else if (c->isa == KILN_ISA_AVX2)
          tile_avx2(&bc, g, t, 0, p->nocb);
        else
          tile_scalar(&bc, g, t, 0, p->nocb);
      }
  }
}

void kiln_cpu_conv_run(const kiln_cpu_conv_desc *d, const void *packed, const float *x,
                       const float *residual, float *y, void *workspace, kiln_threadpool *tp) {
  run_ctx c;
  memset(&c, 0, sizeof c);
  c.d = d;
  make_plan(d, &c.p);
  const plan *p = &c.p;
  c.isa = eff_isa(d);
  c.w = packed;
  c.bias = c.w + p->w_floats;
  /* In place (AVX-512, stride 1, output as wide as the input): q = oh * W + ow indexes the input
   * plane directly; no junk columns, no copy. */
  c.p.inplace = c.isa >= KILN_ISA_AVX512 && !p->direct && !p->dw && p->sh == 1 && p->sw == 1 &&
                d->out_w == d->in_w && d->kernel_h <= INPLACE_MAXK && d->kernel_w <= INPLACE_MAXK &&
                p->T <= INPLACE_MAXT;
  c.p.inplace_s2 = c.isa >= KILN_ISA_AVX512 && !p->direct && !p->dw && p->sh == 2 && p->sw == 2 &&
                   S2_OK(d->out_w, p->nocb) && d->kernel_h <= INPLACE_MAXK && d->kernel_w <= INPLACE_MAXK &&
                   p->T <= INPLACE_MAXT;
  /* The panels live in the workspace sized for the phase-image path (ISA-independent); use the
   * path only where they fit (always, for images of more than a few rows). */
  c.panel_floats = (size_t)(p->K * NT);
  if (c.p.inplace_s2 && (size_t)kiln_threadpool_size(tp) * c.panel_floats > p->q_floats) c.p.inplace_s2 = 0;
  if (c.p.inplace_s2) {
    c.p.banded = 0;
    c.p.QW = d->out_w;
    c.p.QH = d->out_h;
    c.p.plane = d->in_h * d->in_w;
    c.p.nq = d->out_h * d->out_w;
  }
  if (c.p.inplace) {
    c.p.QW = d->in_w;
    c.p.QH = d->in_h;
    c.p.plane = d->in_h * d->in_w;
    c.p.nq = d->out_h * d->in_w;
  }
  int64_t *toff = workspace;
  c.toff = toff;
  c.qw = (float *)((char *)workspace + p->toff_bytes);
  c.panels = c.qw;
  /* Tap offsets in the phase images: tap (kh,kw) reads phase (kh*dh % sh, kw*dw % sw) at row/col
   * offset (kh*dh / sh, kw*dw / sw). */
  for (int64_t kh = 0; kh < d->kernel_h; kh++)
    for (int64_t kw = 0; kw < d->kernel_w; kw++) {
      int64_t oh = kh * d->dilation_h, ow = kw * d->dilation_w;
      int64_t ph = (oh % p->sh) * p->sw + ow % p->sw;
      if (ph < 64) c.phase_used[ph] = 1;
      toff[kh * d->kernel_w + kw] =
          p->direct    ? 0
          : p->inplace || p->inplace_s2 ? (oh - d->pad_top) * d->in_w + ow - d->pad_left
                       : ph * d->in_c * (p->banded ? p->bplane : p->plane) + (oh / p->sh) * p->QW + ow / p->sw;
    }
  if (p->sh * p->sw > 64)
    for (int i = 0; i < 64; i++) c.phase_used[i] = 1;
  const int64_t in_bs = d->in_batch_stride ? d->in_batch_stride : d->in_c * d->in_h * d->in_w;
  const int64_t out_bs = d->out_batch_stride ? d->out_batch_stride : d->out_c * p->ohw;
  const int64_t res_bs = d->residual_batch_stride ? d->residual_batch_stride : d->out_c * p->ohw;
  c.ntiles = cdiv(p->nq, NT);
  const int nth = kiln_threadpool_size(tp);
  /* Split the output channels only as far as needed to give every thread several items: each split
   * re-reads the tile's input, but small late layers (20x20) have too few tiles otherwise. */
  int64_t want = 8 * (int64_t)nth, have = p->G * c.ntiles;
  c.nocs = have >= want ? 1 : cdiv(want, have);
  if (c.nocs > p->nocb) c.nocs = p->nocb;
  if (c.nocs < 1) c.nocs = 1;
  c.ocb_per = cdiv(p->nocb, c.nocs);
  c.nocs = cdiv(p->nocb, c.ocb_per);
  for (int64_t b = 0; b < d->batch; b++) {
    c.x = x + b * in_bs;
    c.y = y + b * out_bs;
    c.res = d->has_residual ? residual + b * res_bs : NULL;
    if (p->banded) {
      kiln_threadpool_run(tp, p->nbands, 1, band_fn, &c);
      continue;
    }
    if (p->direct || p->inplace || p->inplace_s2) {
      c.q = c.x;
    } else {
      /* Split over the pool: the fill is memory-bound and for the large early layers (MBs per
       * image) it took up to 15% of the layer on the caller alone while the workers spun. Small
       * fills (< ~64 KB) stay on the caller, where a pool round trip would cost more. */
      const int64_t fill_items = p->sh * p->sw * d->in_c;
      if ((int64_t)p->plane * fill_items < 16384 || nth == 1)
        fill_fn(&c, 0, fill_items, 0);
      else
        kiln_threadpool_run(tp, fill_items, cdiv(fill_items, 4 * (int64_t)nth), fill_fn, &c);
      c.q = c.qw;
    }
    int64_t items = p->dw ? p->G * c.ntiles : p->G * c.ntiles * c.nocs;
    /* Contiguous chunks (~8 per thread): one atomic per item would cost more than a small tile's
     * work, and neighbouring tiles on different threads false-share their boundary cache lines. */
    kiln_threadpool_run(tp, items, cdiv(items, 8 * (int64_t)nth), compute_fn, &c);
  }
}
