/* Fast CPU convolution (conv_fast.h) against a naive double-precision convolution, on odd shapes,
 * every activation, bias/residual combinations, batch views, at every ISA level this CPU runs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#include "backend/cpu/conv_fast.h"
#include "backend/cpu/simd_math.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* uniform [-1, 1) */
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng_state >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static double act_ref(double v, const kiln_epilogue *e) {
  switch (e->act) {
  case KILN_ACT_NONE: return v;
  case KILN_ACT_RELU: return v > 0 ? v : 0;
  case KILN_ACT_LEAKY_RELU: return v < 0 ? e->alpha * v : v;
  case KILN_ACT_CLIP: return v < e->alpha ? e->alpha : v > e->beta ? e->beta : v;
  case KILN_ACT_SIGMOID: return 1 / (1 + exp(-v));
  case KILN_ACT_SILU: return v < -700 ? -0.0 : v / (1 + exp(-v));
  case KILN_ACT_HARDSWISH: {
    double t = v / 6 + 0.5;
    return v * (t < 0 ? 0 : t > 1 ? 1 : t);
  }
  case KILN_ACT_HARDSIGMOID: {
    double t = e->alpha * v + e->beta;
    return t < 0 ? 0 : t > 1 ? 1 : t;
  }
  case KILN_ACT_TANH: return tanh(v);
  case KILN_ACT_GELU: return v < -40 ? -0.0 : 0.5 * v * erfc(-v / sqrt(2.0));
  }
  return v;
}

/* Naive conv straight from the ONNX definition; also returns the sum of |terms| per output so the
 * tolerance scales with the magnitude that went into it (cancellation makes plain relative error
 * meaningless near 0). */
static void conv_ref(const kiln_cpu_conv_desc *d, const float *x, const float *w, const float *bias,
                     const float *res, double *out, double *mag) {
  int64_t icg = d->in_c / d->group, ocg = d->out_c / d->group;
  int64_t ibs = d->in_batch_stride, obs = d->out_c * d->out_h * d->out_w, rbs = d->residual_batch_stride;
  for (int64_t b = 0; b < d->batch; b++)
    for (int64_t oc = 0; oc < d->out_c; oc++) {
      int64_t g = oc / ocg;
      for (int64_t oh = 0; oh < d->out_h; oh++)
        for (int64_t ow = 0; ow < d->out_w; ow++) {
          double s = d->has_bias ? bias[oc] : 0, m = fabs(s);
          for (int64_t ic = 0; ic < icg; ic++)
            for (int64_t kh = 0; kh < d->kernel_h; kh++)
              for (int64_t kw = 0; kw < d->kernel_w; kw++) {
                int64_t ih = oh * d->stride_h + kh * d->dilation_h - d->pad_top;
                int64_t iw = ow * d->stride_w + kw * d->dilation_w - d->pad_left;
                if (ih < 0 || ih >= d->in_h || iw < 0 || iw >= d->in_w) continue;
                double t = (double)x[b * ibs + ((g * icg + ic) * d->in_h + ih) * d->in_w + iw] *
                           w[((oc * icg + ic) * d->kernel_h + kh) * d->kernel_w + kw];
                s += t;
                m += fabs(t);
              }
          int64_t o = (oc * d->out_h + oh) * d->out_w + ow;
          double r = d->has_residual ? res[b * rbs + o] : 0;
          if (d->has_residual && d->epilogue.residual_before_act) s += r;
          s = act_ref(s, &d->epilogue);
          if (d->has_residual && !d->epilogue.residual_before_act) s += r;
          out[b * obs + o] = s;
          mag[b * obs + o] = m + fabs(r) + 1e-3;
        }
    }
}

typedef struct shape {
  int64_t n, ic, ih, iw, oc, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw, g;
} shape;

static int n_isas(void) {
  kiln_isa best = kiln_cpu_isa();
  return best >= KILN_ISA_AVX512 ? 3 : (int)best + 1;
}

/* Runs one shape at every ISA level with the given epilogue; returns the worst error ratio. */
static void check_shape(const shape *s, kiln_epilogue ep, int has_bias, int has_residual) {
  kiln_cpu_conv_desc d;
  memset(&d, 0, sizeof d);
  d.batch = s->n;
  d.in_c = s->ic;
  d.in_h = s->ih;
  d.in_w = s->iw;
  d.out_c = s->oc;
  d.kernel_h = s->kh;
  d.kernel_w = s->kw;
  d.stride_h = s->sh;
  d.stride_w = s->sw;
  d.pad_top = s->pt;
  d.pad_left = s->pl;
  d.dilation_h = s->dh;
  d.dilation_w = s->dw;
  d.group = s->g;
  d.out_h = (s->ih + s->pt + s->pb - s->dh * (s->kh - 1) - 1) / s->sh + 1;
  d.out_w = (s->iw + s->pl + s->pr - s->dw * (s->kw - 1) - 1) / s->sw + 1;
  d.has_bias = has_bias;
  d.has_residual = has_residual;
  d.epilogue = ep;
  /* Views: images further apart than their size (batch > 1 gets an extra gap). */
  int64_t isz = d.in_c * d.in_h * d.in_w, osz = d.out_c * d.out_h * d.out_w;
  d.in_batch_stride = isz + (s->n > 1 ? 13 : 0);
  d.out_batch_stride = osz + (s->n > 1 ? 7 : 0);
  d.residual_batch_stride = osz + (s->n > 1 ? 5 : 0);
  int64_t wsz = d.out_c * (d.in_c / d.group) * d.kernel_h * d.kernel_w;
  float *x = malloc(sizeof(float) * (size_t)(d.in_batch_stride * d.batch));
  float *w = malloc(sizeof(float) * (size_t)wsz);
  float *bias = malloc(sizeof(float) * (size_t)d.out_c);
  float *res = malloc(sizeof(float) * (size_t)(d.residual_batch_stride * d.batch));
  float *y = malloc(sizeof(float) * (size_t)(d.out_batch_stride * d.batch));
  double *ref = malloc(sizeof(double) * (size_t)(osz * d.batch));
  double *mag = malloc(sizeof(double) * (size_t)(osz * d.batch));
  for (int64_t i = 0; i < d.in_batch_stride * d.batch; i++) x[i] = frand();
  for (int64_t i = 0; i < wsz; i++) w[i] = frand() * 0.5f;
  for (int64_t i = 0; i < d.out_c; i++) bias[i] = frand();
  for (int64_t i = 0; i < d.residual_batch_stride * d.batch; i++) res[i] = frand();
  conv_ref(&d, x, w, bias, res, ref, mag);

  kiln_threadpool *tp = NULL;
  ASSERT_OK(kiln_threadpool_create(2, &tp));
  for (int li = 0; li < n_isas(); li++) {
    d.isa = (kiln_isa)li;
    ASSERT_OK(kiln_cpu_conv_validate(&d));
    size_t psz = kiln_cpu_conv_packed_size(&d), wssz = kiln_cpu_conv_workspace_size(&d, 2);
    assert_int_equal(psz % 64, 0);
    void *packed = aligned_alloc(64, psz);
    void *ws = aligned_alloc(64, wssz ? (wssz + 63) / 64 * 64 : 64);
    ASSERT_OK(kiln_cpu_conv_pack(&d, w, has_bias ? bias : NULL, packed));
    /* Poison: outputs never written stay NaN and fail; the gaps between images must stay NaN. */
    for (int64_t i = 0; i < d.out_batch_stride * d.batch; i++) y[i] = NAN;
    for (int rep = 0; rep < 2; rep++) /* twice: the workspace is reused dirty */
      kiln_cpu_conv_run(&d, packed, x, has_residual ? res : NULL, y, ws, rep ? tp : NULL);
    double worst = 0;
    int64_t worst_i = -1;
    for (int64_t b = 0; b < d.batch; b++) {
      for (int64_t i = 0; i < osz; i++) {
        double got = y[b * d.out_batch_stride + i], want = ref[b * osz + i];
        double err = fabs(got - want) / (1e-4 * (mag[b * osz + i] + fabs(want)));
        if (!(err <= worst)) {
          worst = isnan(err) ? INFINITY : err;
          worst_i = b * osz + i;
        }
      }
      for (int64_t i = osz; i < d.out_batch_stride && b + 1 < d.batch; i++)
        assert_true(isnan(y[b * d.out_batch_stride + i]));
    }
    if (worst > 1) {
      print_error("%s: n%lld ic%lld %lldx%lld oc%lld k%lldx%lld s%lldx%lld p%lld,%lld,%lld,%lld d%lldx%lld g%lld "
                  "act %d bias %d res %d(before %d): worst err ratio %g at %lld (got %g want %g)\n",
                  kiln_cpu_conv_kernel_name(&d), (long long)s->n, (long long)s->ic, (long long)s->ih,
                  (long long)s->iw, (long long)s->oc, (long long)s->kh, (long long)s->kw, (long long)s->sh,
                  (long long)s->sw, (long long)s->pt, (long long)s->pl, (long long)s->pb, (long long)s->pr,
                  (long long)s->dh, (long long)s->dw, (long long)s->g, (int)ep.act, has_bias, has_residual,
                  ep.residual_before_act, worst, (long long)worst_i,
                  (double)y[(worst_i / osz) * d.out_batch_stride + worst_i % osz], ref[worst_i]);
      fail();
    }
    free(packed);
    free(ws);
  }
  kiln_threadpool_destroy(tp);
  free(x);
  free(w);
  free(bias);
  free(res);
  free(y);
  free(ref);
  free(mag);
}

static const shape shapes[] = {
    /* n ic ih iw oc kh kw sh sw pt pl pb pr dh dw g */
    {1, 16, 20, 20, 32, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},   /* 1x1 GEMM, in place */
    {1, 7, 9, 13, 17, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},     /* odd 1x1, partial tiles/blocks */
    {2, 3, 5, 3, 5, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1},       /* 1x1, fewer outputs than a vector */
    {1, 17, 23, 19, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},    /* 3x3 s1 */
    {1, 16, 21, 21, 24, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},   /* 3x3 s2 odd size */
    {1, 3, 32, 32, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},    /* YOLO stem-like */
    {2, 5, 11, 14, 7, 3, 3, 1, 2, 0, 2, 1, 0, 1, 1, 1},     /* asymmetric pads and strides */
    {1, 6, 13, 12, 8, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1},     /* dilation 2 */
    {1, 8, 12, 11, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 4},    /* grouped */
    {2, 12, 15, 17, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 12},  /* depthwise 3x3 */
    {1, 10, 16, 16, 10, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 10},  /* depthwise 3x3 s2 */
    {1, 6, 9, 9, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6},      /* depthwise multiplier 2 */
    {1, 7, 17, 18, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 7},     /* depthwise 1x1 */
    {1, 4, 14, 15, 6, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1},     /* 5x5 */
    {1, 3, 19, 20, 5, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1},     /* 7x7 s2 */
    {1, 9, 10, 10, 11, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1},    /* 1x1 s2 */
    {1, 5, 8, 9, 6, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1},       /* 1x1 padded */
    {1, 4, 10, 10, 4, 2, 3, 3, 1, 0, 1, 2, 0, 1, 3, 1},     /* odd kernel, stride 3, dilation 3 */
    {1, 2, 4, 3, 3, 3, 3, 1, 1, 3, 3, 3, 3, 1, 1, 1},       /* pads larger than the image */
    {1, 64, 12, 12, 80, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},   /* YOLO head-like channel counts */
    {1, 3, 130, 150, 10, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},  /* strided, big: banded fill, short last band */
    {1, 6, 400, 66, 8, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 2},    /* banded 1x1 s2, grouped, no halo */
    /* stride 2, outputs >= 16 wide, >= 64 channels per group: AVX-512 in place (vectors across
     * rows, odd widths, partial tiles); narrower outputs or fewer channels take phase images */
    {1, 16, 41, 189, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},  /* odd width, 95 wide (96 lanes) */
    {1, 5, 40, 80, 72, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},     /* 40 wide */
    {1, 5, 20, 160, 65, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},    /* 80 wide */
    {1, 6, 31, 125, 66, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 1},    /* pad 0, 15x62 (64 lanes) */
    {1, 4, 18, 127, 70, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 1},    /* asym pads, 63 wide, odd last column */
    {1, 5, 40, 40, 67, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},     /* 20 wide: every vector crosses a row */
    {1, 3, 37, 93, 64, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 1},    /* pad 0, 18x46 */
    {2, 4, 33, 64, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},     /* batch, 17x32 */
    {1, 7, 35, 90, 64, 3, 3, 2, 2, 1, 0, 0, 1, 1, 1, 1},    /* asymmetric pads, 45 wide */
    {1, 3, 40, 89, 69, 5, 5, 2, 2, 2, 2, 2, 2, 2, 2, 1},     /* 5x5 dilation 2, 43 wide */
    {1, 8, 34, 96, 128, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 2},   /* grouped, 48 wide */
    {1, 2, 31, 79, 80, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1},     /* 1x1 s2, 40 wide */
    {1, 4, 9, 33, 71, 3, 3, 2, 2, 4, 1, 4, 1, 1, 1, 1},      /* pads > kernel reach: zero rows */
    {1, 3, 14, 29, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},    /* 15 wide: phase images */
    {1, 3, 14, 61, 56, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1},    /* 31 wide, 7 blocks: phase images */
};

static void test_shapes_silu_bias_residual(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
    kiln_epilogue ep = {KILN_ACT_SILU, 0, 0, 0};
    check_shape(&shapes[i], ep, 1, 0);
    check_shape(&shapes[i], ep, 0, 1);
    ep.residual_before_act = 1;
    check_shape(&shapes[i], ep, 1, 1);
  }
}

static void test_every_activation(void **state) {
  (void)state;
  const shape s3 = {2, 5, 9, 11, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  const shape s1 = {1, 7, 6, 7, 10, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1};
  const shape sd = {1, 6, 9, 8, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 6};
  for (int a = KILN_ACT_NONE; a <= KILN_ACT_GELU; a++) {
    kiln_epilogue ep = {(kiln_act)a, 0.1f, 0.6f, 0};
    if (a == KILN_ACT_CLIP) ep.alpha = -0.5f;
    if (a == KILN_ACT_HARDSIGMOID) ep.alpha = 0.2f, ep.beta = 0.5f;
    for (int r = 0; r < 3; r++) {
      ep.residual_before_act = r == 2;
      check_shape(&s3, ep, r != 1, r != 0);
      check_shape(&s1, ep, r != 1, r != 0);
      check_shape(&sd, ep, r != 1, r != 0);
    }
  }
}

static void test_random_shapes(void **state) {
  (void)state;
  for (int i = 0; i < 60; i++) {
    shape s;
    rng_state = 1000 + (uint64_t)i * 7919;
#define R(lo, hi) ((lo) + (int64_t)((frand() * 0.5f + 0.5f) * ((hi) - (lo) + 1)) % ((hi) - (lo) + 1))
    s.kh = R(1, 5), s.kw = R(1, 5), s.sh = R(1, 3), s.sw = R(1, 3), s.dh = R(1, 2), s.dw = R(1, 2);
    s.pt = R(0, 2), s.pl = R(0, 2), s.pb = R(0, 2), s.pr = R(0, 2);
    s.g = R(1, 3);
    s.ic = s.g * R(1, 6), s.oc = s.g * R(1, 11), s.n = R(1, 2);
    s.ih = R(1, 20) + (s.kh - 1) * s.dh, s.iw = R(1, 20) + (s.kw - 1) * s.dw;
#undef R
    kiln_epilogue ep = {(kiln_act)(i % (KILN_ACT_GELU + 1)), 0.1f, 0.6f, i % 2};
    if (ep.act == KILN_ACT_CLIP) ep.alpha = -0.5f;
    check_shape(&s, ep, i % 3 != 0, i % 4 == 1);
  }
}

static void test_validate_and_names(void **state) {
  (void)state;
  kiln_cpu_conv_desc d = {.batch = 1, .in_c = 6, .in_h = 8, .in_w = 8, .out_c = 4, .out_h = 8, .out_w = 8,
                          .kernel_h = 1, .kernel_w = 1, .stride_h = 1, .stride_w = 1, .dilation_h = 1,
                          .dilation_w = 1, .group = 4, .isa = KILN_ISA_AVX512};
  expect_error(kiln_cpu_conv_validate(&d), KILN_ERR_INVALID_ARGUMENT, "group");
  d.group = 1;
  ASSERT_OK(kiln_cpu_conv_validate(&d));
  assert_string_equal(kiln_cpu_conv_kernel_name(&d), "conv1x1.avx512");
  d.kernel_h = d.kernel_w = 3;
  d.pad_top = d.pad_left = 1;
  d.isa = KILN_ISA_AVX2;
  assert_string_equal(kiln_cpu_conv_kernel_name(&d), "conv_igemm.avx2");
  kiln_cpu_conv_desc s2 = d;
  s2.in_h = s2.in_w = 64, s2.out_h = s2.out_w = 32, s2.stride_h = s2.stride_w = 2, s2.out_c = 64;
  s2.isa = KILN_ISA_AVX512;
  assert_string_equal(kiln_cpu_conv_kernel_name(&s2), "conv_igemm_inplace_s2.avx512");
  s2.out_c = 56; /* 7 channel blocks: phase images */
  assert_string_equal(kiln_cpu_conv_kernel_name(&s2), "conv_igemm.avx512");
  d.stride_h = 0;
  expect_error(kiln_cpu_conv_validate(&d), KILN_ERR_INVALID_ARGUMENT, ">= 1");
}

/* simd_math.h against libm over a sweep that includes the tails and special values. */
KILN_TARGET_AVX512 static void act16_avx512(kiln_act a, const float *x, float *y) {
  _mm512_storeu_ps(y, kiln_act_apply_avx512(_mm512_loadu_ps(x), a, 0.1f, 0.6f));
}
KILN_TARGET_AVX2 static void act16_avx2(kiln_act a, const float *x, float *y) {
  _mm256_storeu_ps(y, kiln_act_apply_avx2(_mm256_loadu_ps(x), a, 0.1f, 0.6f));
  _mm256_storeu_ps(y + 8, kiln_act_apply_avx2(_mm256_loadu_ps(x + 8), a, 0.1f, 0.6f));
}

static void test_simd_math(void **state) {
  (void)state;
  int levels = n_isas();
  for (int a = KILN_ACT_NONE; a <= KILN_ACT_GELU; a++) {
    kiln_epilogue ep = {(kiln_act)a, 0.1f, 0.6f, 0};
    for (int lv = 0; lv < levels; lv++)
      for (float base = -100.0f; base < 100.0f; base += 0.37f * 16) {
        float x[16], y[16];
        for (int i = 0; i < 16; i++) x[i] = base + 0.37f * (float)i;
        if (base < -99) x[0] = -INFINITY, x[1] = INFINITY, x[2] = 1e-30f, x[3] = -1e-30f;
        if (lv == 2) act16_avx512((kiln_act)a, x, y);
        else if (lv == 1) act16_avx2((kiln_act)a, x, y);
        else for (int i = 0; i < 16; i++) y[i] = kiln_act_apply_scalar(x[i], (kiln_act)a, 0.1f, 0.6f);
        for (int i = 0; i < 16; i++) {
          double want = act_ref(x[i], &ep);
          /* few ulp relative, or tiny absolute where the result underflows toward denormals */
          double tol = 4e-7 * fabs(want) + 1e-37;
          if (a == KILN_ACT_GELU) tol = 2e-5 * fabs(want) + 1e-37; /* float rounding of x/sqrt2 in the erfc tail */
          if (!(fabs(y[i] - want) <= tol) && !(isinf(want) && y[i] == (float)want) && !(isnan(want) && isnan(y[i]))) {
            print_error("act %d level %d x=%g: got %.9g want %.9g\n", a, lv, (double)x[i], (double)y[i], want);
            fail();
          }
        }
      }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_simd_math),
      cmocka_unit_test(test_validate_and_names),
      cmocka_unit_test(test_shapes_silu_bias_residual),
      cmocka_unit_test(test_every_activation),
      cmocka_unit_test(test_random_shapes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
