/* CUDA kernels (src/backend/cuda) against naive host loops, on odd shapes, with outputs poisoned
 * (0xFF bytes: NaN in fp32 and fp16) before each run so an unwritten element fails, and with the bytes
 * outside a strided / offset output checked to stay poisoned (Concat buffers written in place).
 * Without a GPU (CI) or without CUDA at build time every test skips.
 *
 * `test_cuda_kernels --bench [batch...]` instead times the convolution paths on YOLOv8n's conv shapes
 * with CUDA events and prints a table (used by bench/gpu.sh). */
#include "testlib.h"

#include "backend/cuda/cuda_device.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef KILN_HAVE_CUDA
#include <cuda_runtime.h>

#include "backend/cuda/conv_cuda.h"
#include "backend/cuda/conv_stem_cuda.h"
#include "backend/cuda/eltwise_cuda.h"
#include "backend/cuda/spatial_cuda.h"
#endif

static int have_gpu(void) { return kiln_cuda_device_count() > 0; }
#define REQUIRE_GPU()                                                                                \
  do {                                                                                               \
    if (!have_gpu()) skip();                                                                         \
  } while (0)

#ifdef KILN_HAVE_CUDA

/* ---- host helpers ------------------------------------------------------------------------------ */
static uint32_t rng = 12345;
static float frand(void) { /* uniform [-1, 1) */
  rng = rng * 1664525u + 1013904223u;
  return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static uint16_t f2h(float f) { /* round to nearest even */
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u : 0));
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
  if (a < 0x38800000u) {
    float v;
    memcpy(&v, &a, 4);
    return (uint16_t)(sign | (uint32_t)lrintf(v * 16777216.0f));
  }
  uint32_t h = (((a >> 23) - 112) << 10) | ((a & 0x7fffffu) >> 13), rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
  return (uint16_t)(sign | h);
}
static float h2f(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, x;
  if (e == 0) {
    float v = (float)m / 16777216.0f;
    return sign ? -v : v;
  }
  if (e == 31) x = sign | 0x7f800000u | (m << 13);
  else x = sign | ((e + 112) << 23) | (m << 13);
  float f;
  memcpy(&f, &x, 4);
  return f;
}
static float round_h(float f) { return h2f(f2h(f)); }

/* A host tensor of n floats plus its device copy in dtype dt. */
typedef struct dbuf {
  void *d;
  size_t n, es;
  kiln_cuda_dtype dt;
} dbuf;

static dbuf dev_new(size_t n, kiln_cuda_dtype dt) {
  dbuf b = {NULL, n, dt == KILN_CUDA_F16 ? 2 : 4, dt};
  assert_int_equal(cudaMalloc(&b.d, n * b.es + 16), cudaSuccess);
  assert_int_equal(cudaMemset(b.d, 0xFF, n * b.es + 16), cudaSuccess); /* poison: NaN */
  return b;
}
static dbuf dev_up(const float *h, size_t n, kiln_cuda_dtype dt) {
  dbuf b = dev_new(n, dt);
  void *tmp = malloc(n * b.es);
  for (size_t i = 0; i < n; i++) {
    if (dt == KILN_CUDA_F16) ((uint16_t *)tmp)[i] = f2h(h[i]);
    else ((float *)tmp)[i] = h[i];
  }
  assert_int_equal(cudaMemcpy(b.d, tmp, n * b.es, cudaMemcpyHostToDevice), cudaSuccess);
  free(tmp);
  return b;
}
/* Download as floats; raw poison (all-ones bytes) comes back as NaN either way. */
static float *dev_down(const dbuf *b) {
  assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
  void *tmp = malloc(b->n * b->es);
  assert_int_equal(cudaMemcpy(tmp, b->d, b->n * b->es, cudaMemcpyDeviceToHost), cudaSuccess);
  float *out = malloc(b->n * sizeof(float));
  for (size_t i = 0; i < b->n; i++) out[i] = b->dt == KILN_CUDA_F16 ? h2f(((uint16_t *)tmp)[i]) : ((float *)tmp)[i];
  free(tmp);
  return out;
}
static void dev_free(dbuf *b) { cudaFree(b->d); }

static float *rand_vec(size_t n, int round16) {
  float *v = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) v[i] = round16 ? round_h(frand()) : frand();
  return v;
}

/* Element i must be close to want; poison (NaN) or a wrong value fails with its index. */
static void check_close(const char *what, size_t i, float got, double want, double tol) {
  if (!(fabs((double)got - want) <= tol * (1.0 + fabs(want)))) {
    print_error("%s: element %zu: got %.7g, want %.7g (tol %g)\n", what, i, got, want, tol);
    fail();
  }
}

static double act_ref(double v, kiln_epilogue ep) {
  switch (ep.act) {
  case KILN_ACT_RELU: return v > 0 ? v : 0;
  case KILN_ACT_LEAKY_RELU: return v < 0 ? ep.alpha * v : v;
  case KILN_ACT_SIGMOID: return 1 / (1 + exp(-v));
  case KILN_ACT_SILU: return v / (1 + exp(-v));
  default: return v;
  }
}

/* ---- convolution ------------------------------------------------------------------------------- */
typedef struct conv_case {
  int n, ic, ih, iw, oc, kh, kw, s, pad, dil, g;
} conv_case;

static const conv_case conv_cases[] = {
    {2, 3, 17, 19, 13, 3, 3, 2, 1, 1, 1},   /* first-layer like: IC 3, scalar gather */
    {1, 16, 15, 13, 40, 3, 3, 1, 1, 1, 1},  /* vec8 path, OC not a tile multiple */
    {2, 24, 11, 9, 70, 1, 1, 1, 0, 1, 1},   /* 1x1 */
    {1, 32, 9, 10, 33, 3, 3, 2, 1, 2, 1},   /* dilation 2, stride 2 */
    {1, 8, 7, 9, 8, 5, 5, 1, 2, 1, 1},      /* 5x5 */
    {3, 40, 6, 5, 129, 3, 3, 1, 1, 1, 1},   /* K spans several tiles, 3 images */
    {2, 24, 9, 11, 24, 3, 3, 2, 1, 1, 24},  /* depthwise */
    {1, 12, 8, 7, 18, 3, 3, 1, 1, 1, 3},    /* grouped */
    {2, 16, 20, 21, 24, 3, 3, 1, 1, 1, 1},  /* M = 840: several 256-row tiles, partial last tile */
    {1, 8, 13, 11, 150, 1, 1, 1, 0, 1, 1},  /* 1x1, K = 8 (one short K tile), OC over 128 */
    {1, 64, 9, 7, 17, 3, 3, 1, 1, 1, 1},    /* K = 576: 18 K tiles (split-K), odd OC */
    {2, 32, 19, 23, 40, 3, 3, 2, 1, 1, 1},  /* stride 2 (halo kernel: strided window) */
    {1, 80, 11, 13, 80, 3, 3, 1, 1, 1, 1},  /* IC 80: five 16-channel halo chunks, OC 80 */
    {1, 48, 10, 9, 150, 3, 3, 1, 1, 2, 1},  /* dilation 2, OC over 128 (two halo column blocks) */
};

/* Runs one conv case through the API and checks it against a double-precision host loop that uses the
 * same (fp16-rounded, for fp16) inputs. Output written at channel offset 3 of a pixel stride oc + 5. */
/* opts: tactic (0 = heuristic), zpad (input pixel stride round_up(ic, 8) with zero padding channels and
 * in_zero_padded set), in_extra (input pixel stride ic + in_extra, the extra channels poisoned). */
typedef struct conv_opts {
  int tactic, zpad, in_extra;
} conv_opts;

static int run_conv_case_opts(const conv_case *c, kiln_cuda_dtype compute, kiln_cuda_dtype out_dt,
                              kiln_epilogue ep, int with_res, conv_opts o) {
  int oh = (c->ih + 2 * c->pad - c->dil * (c->kh - 1) - 1) / c->s + 1;
  int ow = (c->iw + 2 * c->pad - c->dil * (c->kw - 1) - 1) / c->s + 1;
  int icg = c->ic / c->g, ocg = c->oc / c->g;
  const int off = 3, ops = c->oc + 5;
  int r16 = compute == KILN_CUDA_F16;
  const int ips = o.zpad ? (c->ic + 7) / 8 * 8 : c->ic + o.in_extra;
  size_t nx = (size_t)c->n * c->ih * c->iw * c->ic, nw = (size_t)c->oc * icg * c->kh * c->kw;
  size_t npix = (size_t)c->n * oh * ow;
  float *x = rand_vec(nx, r16), *w = rand_vec(nw, r16), *bias = rand_vec((size_t)c->oc, 0);
  float *res = rand_vec(npix * c->oc, out_dt == KILN_CUDA_F16);

  kiln_cuda_conv_desc d;
  memset(&d, 0, sizeof d);
  d.batch = c->n, d.in_c = c->ic, d.in_h = c->ih, d.in_w = c->iw, d.out_c = c->oc, d.out_h = oh, d.out_w = ow;
  d.kernel_h = c->kh, d.kernel_w = c->kw, d.stride_h = d.stride_w = c->s, d.pad_top = d.pad_left = c->pad;
  d.dilation_h = d.dilation_w = c->dil, d.group = c->g;
  d.out_pixel_stride = ops, d.out_c_offset = off;
  d.compute = compute, d.out_dtype = out_dt, d.has_bias = 1, d.has_residual = with_res, d.epilogue = ep;
  d.in_pixel_stride = ips, d.in_zero_padded = o.zpad, d.tactic = o.tactic;
  if (o.tactic > kiln_cuda_conv_tactic_count(&d)) { /* this shape has fewer candidates */
    free(x), free(w), free(bias), free(res);
    return 0;
  }
  ASSERT_OK(kiln_cuda_conv_validate(&d));
  size_t psz = kiln_cuda_conv_packed_size(&d);
  assert_int_equal(psz % 256, 0);
  void *blob = malloc(psz);
  ASSERT_OK(kiln_cuda_conv_pack(&d, w, bias, blob));
  void *dblob;
  assert_int_equal(cudaMalloc(&dblob, psz), cudaSuccess);
  assert_int_equal(cudaMemcpy(dblob, blob, psz, cudaMemcpyHostToDevice), cudaSuccess);
  /* input with pixel stride ips: padding channels zero (zpad) or poisoned NaN (in_extra) */
  size_t nxs = (size_t)c->n * c->ih * c->iw * ips;
  float *xs = malloc(nxs * sizeof(float));
  for (size_t px = 0; px < (size_t)c->n * c->ih * c->iw; px++)
    for (int ch = 0; ch < ips; ch++) xs[px * ips + ch] = ch < c->ic ? x[px * c->ic + ch] : (o.zpad ? 0.f : NAN);
  dbuf dx = dev_up(xs, nxs, compute), dres = dev_up(res, npix * c->oc, out_dt), dy = dev_new(npix * ops, out_dt);
  free(xs);
  size_t wsz = kiln_cuda_conv_workspace_size(&d);
  assert_int_equal(wsz % 256, 0);
  void *dws = NULL;
  if (wsz) assert_int_equal(cudaMalloc(&dws, wsz), cudaSuccess);
  ASSERT_OK(kiln_cuda_conv_run(&d, dblob, dx.d, with_res ? dres.d : NULL, dy.d, dws, NULL));
  float *y = dev_down(&dy);

  double tol = compute == KILN_CUDA_F32 ? 1e-4 : (out_dt == KILN_CUDA_F16 ? 1e-2 : 5e-3);
  char what[160];
  snprintf(what, sizeof what, "conv %s n%d ic%d(ps%d) %dx%d oc%d k%dx%d s%d p%d d%d g%d act%d res%d",
           kiln_cuda_conv_kernel_name(&d), c->n, c->ic, ips, c->ih, c->iw, c->oc, c->kh, c->kw, c->s, c->pad, c->dil,
           c->g, (int)ep.act, with_res);
  for (int b = 0; b < c->n; b++)
    for (int y0 = 0; y0 < oh; y0++)
      for (int x0 = 0; x0 < ow; x0++) {
        size_t pix = ((size_t)b * oh + y0) * ow + x0;
        for (int o = 0; o < ops; o++) {
          float got = y[pix * ops + o];
          int oc = o - off;
          if (oc < 0 || oc >= c->oc) { /* outside this conv's channels: must stay poisoned */
            if (!isnan(got)) {
              print_error("%s: wrote outside its channels at pixel %zu channel %d\n", what, pix, o);
              fail();
            }
            continue;
          }
          double acc = bias[oc];
          int grp = oc / ocg;
          for (int kh = 0; kh < c->kh; kh++)
            for (int kw = 0; kw < c->kw; kw++) {
              int ih = y0 * c->s - c->pad + kh * c->dil, iw = x0 * c->s - c->pad + kw * c->dil;
              if (ih < 0 || ih >= c->ih || iw < 0 || iw >= c->iw) continue;
              for (int ci = 0; ci < icg; ci++)
                acc += (double)x[(((size_t)b * c->ih + ih) * c->iw + iw) * c->ic + grp * icg + ci] *
                       w[(((size_t)oc * icg + ci) * c->kh + kh) * c->kw + kw];
            }
          double r = with_res ? res[pix * c->oc + oc] : 0;
          if (ep.residual_before_act) acc += r;
          acc = act_ref(acc, ep);
          if (!ep.residual_before_act) acc += r;
          check_close(what, pix * ops + o, got, acc, tol);
        }
      }
  free(y), free(x), free(w), free(bias), free(res), free(blob);
  cudaFree(dblob);
  if (dws) cudaFree(dws);
  dev_free(&dx), dev_free(&dres), dev_free(&dy);
  return 1;
}

static void run_conv_case(const conv_case *c, kiln_cuda_dtype compute, kiln_cuda_dtype out_dt, kiln_epilogue ep,
                          int with_res) {
  conv_opts o = {0, 0, 0};
  assert_true(run_conv_case_opts(c, compute, out_dt, ep, with_res, o));
}

static void conv_all(kiln_cuda_dtype compute, kiln_cuda_dtype out_dt) {
  kiln_epilogue eps[4] = {{KILN_ACT_SILU, 0, 0, 0}, {KILN_ACT_NONE, 0, 0, 0}, {KILN_ACT_RELU, 0, 0, 1},
                          {KILN_ACT_LEAKY_RELU, 0.1f, 0, 0}};
  for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
    int e = (int)(i % 4);
    run_conv_case(&conv_cases[i], compute, out_dt, eps[e], e >= 1);
    run_conv_case(&conv_cases[i], compute, out_dt, (kiln_epilogue){KILN_ACT_SIGMOID, 0, 0, 0}, 0);
  }
}

static void test_conv_f16_out_f16(void **state) {
  (void)state;
  REQUIRE_GPU();
  conv_all(KILN_CUDA_F16, KILN_CUDA_F16);
}
static void test_conv_f16_out_f32(void **state) {
  (void)state;
  REQUIRE_GPU();
  conv_all(KILN_CUDA_F16, KILN_CUDA_F32);
}
static void test_conv_f32_exact(void **state) {
  (void)state;
  REQUIRE_GPU();
  conv_all(KILN_CUDA_F32, KILN_CUDA_F32);
}

/* Every fp16 tile / split-K candidate (d.tactic) on the group-1 cases, input with a poisoned wider pixel
 * stride; then the zero-padded stem (in_zero_padded) under the heuristic and every tactic. */
static void test_conv_f16_tactics(void **state) {
  (void)state;
  REQUIRE_GPU();
  kiln_epilogue eps[3] = {{KILN_ACT_SILU, 0, 0, 0}, {KILN_ACT_RELU, 0, 0, 1}, {KILN_ACT_NONE, 0, 0, 0}};
  for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
    const conv_case *c = &conv_cases[i];
    if (c->g != 1 || c->ic % 8) continue;
    /* the shape's own count decides how many run (halo-tile configs follow the 66 im2col ones) */
    int ran = 0;
    for (int t = 1; t <= 128; t++) {
      conv_opts o = {t, 0, 8};
      ran += run_conv_case_opts(c, KILN_CUDA_F16, t % 2 ? KILN_CUDA_F16 : KILN_CUDA_F32, eps[t % 3], t % 3 != 2, o);
    }
    assert_true(ran >= 66); /* 11 im2col tiles x 6 splits, then the halo configs */
    if (c->kh == 3 && c->ic % 16 == 0) assert_true(ran > 66); /* the halo kernel took part */
  }
  const conv_case stems[] = {{2, 3, 17, 19, 13, 3, 3, 2, 1, 1, 1}, {1, 3, 33, 30, 16, 3, 3, 2, 1, 1, 1},
                             {1, 5, 9, 8, 40, 3, 3, 1, 1, 1, 1}};
  for (size_t i = 0; i < 3; i++) {
    conv_opts o = {0, 1, 0};
    run_conv_case_opts(&stems[i], KILN_CUDA_F16, KILN_CUDA_F16, eps[0], 0, o);
    run_conv_case_opts(&stems[i], KILN_CUDA_F16, KILN_CUDA_F32, eps[1], 1, o);
    kiln_cuda_conv_desc d;
    memset(&d, 0, sizeof d);
    d.group = 1, d.compute = KILN_CUDA_F16, d.in_c = stems[i].ic, d.in_pixel_stride = 8, d.in_zero_padded = 1;
    int nt = kiln_cuda_conv_tactic_count(&d);
    assert_true(nt > 1);
    for (int t = 1; t <= nt; t++) {
      o.tactic = t;
      assert_true(run_conv_case_opts(&stems[i], KILN_CUDA_F16, KILN_CUDA_F16, eps[t % 3], t % 3 == 1, o));
    }
  }
}

/* The direct stem path (in_layout_nchw): LINEAR NCHW input of in_dt, fp32 weights (not rounded), NHWC
 * output written at channel offset `off` of pixels `ops` apart, neighbours poisoned. vec: offset 8 and a
 * pixel stride that is a multiple of 8 (16-byte stores); else offset 3, stride oc + 5 (scalar stores). */
static void run_conv_nchw_case(const conv_case *c, kiln_cuda_dtype in_dt, kiln_cuda_dtype compute, kiln_cuda_dtype out_dt,
                               kiln_epilogue ep, int with_res, int vec) {
  int oh = (c->ih + 2 * c->pad - c->dil * (c->kh - 1) - 1) / c->s + 1;
  int ow = (c->iw + 2 * c->pad - c->dil * (c->kw - 1) - 1) / c->s + 1;
  const int off = vec ? 8 : 3, ops = vec ? (c->oc + 7) / 8 * 8 + 16 : c->oc + 5;
  size_t nx = (size_t)c->n * c->ic * c->ih * c->iw, nw = (size_t)c->oc * c->ic * c->kh * c->kw;
  size_t npix = (size_t)c->n * oh * ow;
  float *x = rand_vec(nx, in_dt == KILN_CUDA_F16), *w = rand_vec(nw, 0), *bias = rand_vec((size_t)c->oc, 0);
  float *res = rand_vec(npix * c->oc, out_dt == KILN_CUDA_F16);

  kiln_cuda_conv_desc d;
  memset(&d, 0, sizeof d);
  d.batch = c->n, d.in_c = c->ic, d.in_h = c->ih, d.in_w = c->iw, d.out_c = c->oc, d.out_h = oh, d.out_w = ow;
  d.kernel_h = c->kh, d.kernel_w = c->kw, d.stride_h = d.stride_w = c->s, d.pad_top = d.pad_left = c->pad;
  d.dilation_h = d.dilation_w = c->dil, d.group = 1;
  d.out_pixel_stride = ops, d.out_c_offset = off;
  d.compute = compute, d.out_dtype = out_dt, d.has_bias = 1, d.has_residual = with_res, d.epilogue = ep;
  d.in_layout_nchw = 1, d.in_dtype = in_dt;
  assert_true(kiln_cuda_conv_nchw_supported(&d));
  ASSERT_OK(kiln_cuda_conv_validate(&d));
  assert_int_equal(kiln_cuda_conv_tactic_count(&d), 0);
  assert_int_equal(kiln_cuda_conv_workspace_size(&d), 0);
  size_t psz = kiln_cuda_conv_packed_size(&d);
  assert_int_equal(psz % 256, 0);
  void *blob = malloc(psz), *dblob;
  ASSERT_OK(kiln_cuda_conv_pack(&d, w, bias, blob));
  assert_int_equal(cudaMalloc(&dblob, psz), cudaSuccess);
  assert_int_equal(cudaMemcpy(dblob, blob, psz, cudaMemcpyHostToDevice), cudaSuccess);
  dbuf dx = dev_up(x, nx, in_dt), dres = dev_up(res, npix * c->oc, out_dt);
  /* pass 0: the launch heuristic; pass 1: 3 row tiles per block (the double-buffered loop, a partial
   * last group when the tile count is not a multiple of 3) */
  for (int pass = 0; pass < 2; pass++) {
    dbuf dy = dev_new(npix * ops, out_dt);
    if (pass == 0) ASSERT_OK(kiln_cuda_conv_run(&d, dblob, dx.d, with_res ? dres.d : NULL, dy.d, NULL, NULL));
    else ASSERT_OK(kiln_cuda_conv_nchw_run_tiles(&d, dblob, dx.d, with_res ? dres.d : NULL, dy.d, NULL, 3));
    float *y = dev_down(&dy);

    double tol = compute == KILN_CUDA_F32 ? 1e-4 : (out_dt == KILN_CUDA_F16 ? 1e-2 : 5e-3);
    char what[200];
    snprintf(what, sizeof what, "conv %s in%s n%d ic%d %dx%d oc%d k%dx%d s%d p%d d%d act%d res%d vec%d tiles%d",
             kiln_cuda_conv_kernel_name(&d), in_dt == KILN_CUDA_F16 ? "f16" : "f32", c->n, c->ic, c->ih, c->iw, c->oc,
             c->kh, c->kw, c->s, c->pad, c->dil, (int)ep.act, with_res, vec, pass ? 3 : 0);
    for (int b = 0; b < c->n; b++)
      for (int y0 = 0; y0 < oh; y0++)
        for (int x0 = 0; x0 < ow; x0++) {
          size_t pix = ((size_t)b * oh + y0) * ow + x0;
          for (int o = 0; o < ops; o++) {
            float got = y[pix * ops + o];
            int oc = o - off;
            if (oc < 0 || oc >= c->oc) { /* outside this conv's channels: must stay poisoned */
              if (!isnan(got)) {
                print_error("%s: wrote outside its channels at pixel %zu channel %d\n", what, pix, o);
                fail();
              }
              continue;
            }
            double acc = bias[oc];
            for (int ci = 0; ci < c->ic; ci++)
              for (int kh = 0; kh < c->kh; kh++)
                for (int kw = 0; kw < c->kw; kw++) {
                  int ih = y0 * c->s - c->pad + kh * c->dil, iw = x0 * c->s - c->pad + kw * c->dil;
                  if (ih < 0 || ih >= c->ih || iw < 0 || iw >= c->iw) continue;
                  acc += (double)x[(((size_t)b * c->ic + ci) * c->ih + ih) * c->iw + iw] *
                         w[(((size_t)oc * c->ic + ci) * c->kh + kh) * c->kw + kw];
                }
            double r = with_res ? res[pix * c->oc + oc] : 0;
            if (ep.residual_before_act) acc += r;
            acc = act_ref(acc, ep);
            if (!ep.residual_before_act) acc += r;
            check_close(what, pix * ops + o, got, acc, tol);
          }
        }
    free(y);
    dev_free(&dy);
  }
  free(x), free(w), free(bias), free(res), free(blob);
  cudaFree(dblob);
  dev_free(&dx), dev_free(&dres);
}

static void test_conv_nchw(void **state) {
  (void)state;
  REQUIRE_GPU();
  const conv_case cases[] = {
      {2, 3, 17, 19, 16, 3, 3, 2, 1, 1, 1},  /* the YOLO stem's shape class (3x3 s2 kernel), odd sizes */
      {2, 3, 37, 70, 16, 3, 3, 2, 1, 1, 1},  /* two column tiles, a partial row tile */
      {1, 1, 9, 11, 5, 3, 3, 1, 1, 1, 1},    /* IC 1, OC 5: the 8-channel block with a tail */
      {2, 4, 13, 12, 40, 5, 5, 1, 2, 1, 1},  /* IC 4, 5x5, three OC blocks, the last one partial */
      {1, 2, 21, 23, 24, 7, 7, 2, 3, 1, 1},  /* 7x7 stride 2 */
      {2, 3, 15, 14, 64, 3, 3, 1, 2, 2, 1},  /* dilation 2 (generic kernel), OC 64 */
      {1, 3, 10, 9, 16, 3, 3, 1, 1, 1, 1},   /* 3x3 stride 1 (unrolled kernel) */
      {1, 4, 8, 40, 8, 3, 3, 3, 0, 1, 1},    /* stride 3, no padding, OC 8 */
      {1, 3, 75, 36, 16, 3, 3, 2, 1, 1, 1},  /* width % 4 == 0: the specialised 3-channel s2 kernel; 5 row
                                                tiles: groups of 3 and 2 in the 3-tiles-per-block pass */
      {2, 3, 38, 68, 24, 3, 3, 2, 1, 1, 1},  /* specialised: two column tiles (the second partial), two OC blocks */
      {2, 3, 60, 9, 24, 3, 3, 1, 1, 1, 1},   /* 8 row tiles, stride 1, two OC blocks */
  };
  kiln_epilogue eps[4] = {{KILN_ACT_SILU, 0, 0, 0}, {KILN_ACT_RELU, 0, 0, 1}, {KILN_ACT_LEAKY_RELU, 0.1f, 0, 0},
                          {KILN_ACT_SIGMOID, 0, 0, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const conv_case *c = &cases[i];
    int e = (int)(i % 4);
    /* fp16 engine: fp32 input, fp16 out; fp32 engine: exact; fp16 input; fp32 out of fp16 compute */
    run_conv_nchw_case(c, KILN_CUDA_F32, KILN_CUDA_F16, KILN_CUDA_F16, eps[0], 0, 0);
    run_conv_nchw_case(c, KILN_CUDA_F32, KILN_CUDA_F16, KILN_CUDA_F16, eps[e], 1, 1);
    run_conv_nchw_case(c, KILN_CUDA_F32, KILN_CUDA_F32, KILN_CUDA_F32, eps[e], e % 2, 0);
    run_conv_nchw_case(c, KILN_CUDA_F32, KILN_CUDA_F32, KILN_CUDA_F32, eps[(e + 1) % 4], 1, 1);
    run_conv_nchw_case(c, KILN_CUDA_F16, KILN_CUDA_F16, KILN_CUDA_F16, eps[(e + 2) % 4], 1, 0);
    run_conv_nchw_case(c, KILN_CUDA_F16, KILN_CUDA_F16, KILN_CUDA_F32, eps[(e + 3) % 4], 0, 1);
  }
  /* what the path refuses */
  kiln_cuda_conv_desc d;
  memset(&d, 0, sizeof d);
  d.batch = 1, d.in_c = 5, d.in_h = d.in_w = 8, d.out_c = 4, d.out_h = d.out_w = 8, d.kernel_h = d.kernel_w = 3;
  d.pad_top = d.pad_left = 1, d.stride_h = d.stride_w = d.dilation_h = d.dilation_w = 1, d.group = 1;
  d.compute = d.out_dtype = KILN_CUDA_F32, d.in_layout_nchw = 1;
  assert_false(kiln_cuda_conv_nchw_supported(&d));
  expect_error(kiln_cuda_conv_validate(&d), KILN_ERR_UNSUPPORTED, "at most 4 input");
  d.in_c = 3;
  ASSERT_OK(kiln_cuda_conv_validate(&d));
  d.in_pixel_stride = 8;
  expect_error(kiln_cuda_conv_validate(&d), KILN_ERR_SHAPE, "pixel stride");
  d.in_pixel_stride = 0, d.kernel_h = d.kernel_w = 41, d.pad_top = d.pad_left = 20;
  expect_error(kiln_cuda_conv_validate(&d), KILN_ERR_UNSUPPORTED, "shared memory");
  d.kernel_h = d.kernel_w = 3, d.pad_top = d.pad_left = 1, d.in_layout_nchw = 0, d.in_dtype = KILN_CUDA_F16;
  expect_error(kiln_cuda_conv_validate(&d), KILN_ERR_UNSUPPORTED, "in_layout_nchw");
}

static void test_conv_validate(void **state) {
  (void)state;
  REQUIRE_GPU();
  kiln_cuda_conv_desc d;
  memset(&d, 0, sizeof d);
  d.batch = 1, d.in_c = 6, d.in_h = d.in_w = 4, d.out_c = 4, d.out_h = d.out_w = 4, d.kernel_h = d.kernel_w = 1;
  d.stride_h = d.stride_w = d.dilation_h = d.dilation_w = 1, d.group = 4;
  d.compute = d.out_dtype = KILN_CUDA_F32;
  expect_error(kiln_cuda_conv_validate(&d), KILN_ERR_SHAPE, "group");
  d.group = 1, d.out_dtype = KILN_CUDA_F16;
  expect_error(kiln_cuda_conv_validate(&d), KILN_ERR_UNSUPPORTED, "fp32");
}

/* ---- layout conversion ------------------------------------------------------------------------- */
static void test_layout(void **state) {
  (void)state;
  REQUIRE_GPU();
  const int n = 2, c = 5, h = 7, w = 9, hw = h * w, yps = 8;
  float *x = rand_vec((size_t)n * c * hw, 0);
  dbuf dx = dev_up(x, (size_t)n * c * hw, KILN_CUDA_F32);
  dbuf dh = dev_new((size_t)n * hw * yps, KILN_CUDA_F16);
  ASSERT_OK(kiln_cuda_nchw_to_nhwc(dx.d, KILN_CUDA_F32, dh.d, KILN_CUDA_F16, n, c, hw, yps, NULL));
  float *yh = dev_down(&dh);
  for (int b = 0; b < n; b++)
    for (int p = 0; p < hw; p++)
      for (int ch = 0; ch < yps; ch++) {
        float got = yh[((size_t)b * hw + p) * yps + ch];
        if (ch >= c) assert_true(isnan(got));
        else check_close("nchw_to_nhwc", (size_t)p, got, round_h(x[((size_t)b * c + ch) * hw + p]), 0);
      }
  dbuf dback = dev_new((size_t)n * c * hw, KILN_CUDA_F32);
  ASSERT_OK(kiln_cuda_nhwc_to_nchw(dh.d, KILN_CUDA_F16, yps, dback.d, KILN_CUDA_F32, n, c, hw, NULL));
  float *back = dev_down(&dback);
  for (size_t i = 0; i < (size_t)n * c * hw; i++) check_close("nhwc_to_nchw", i, back[i], round_h(x[i]), 0);
  free(x), free(yh), free(back);
  dev_free(&dx), dev_free(&dh), dev_free(&dback);

  /* the stem's padded input: 3 channels stored as 8, channels 3..7 zero (16-byte store path), then back
   * into every other row of a wider LINEAR tensor (row pitch, the head's spatial Concat) */
  const int c3 = 3, ps = 8, pitch = hw + 6;
  float *x3 = rand_vec((size_t)n * c3 * hw, 0);
  dbuf dx3 = dev_up(x3, (size_t)n * c3 * hw, KILN_CUDA_F32), dp = dev_new((size_t)n * hw * ps, KILN_CUDA_F16);
  ASSERT_OK(kiln_cuda_nchw_to_nhwc_padded(dx3.d, KILN_CUDA_F32, dp.d, KILN_CUDA_F16, n, c3, hw, ps, NULL));
  dbuf dl = dev_new((size_t)n * c3 * pitch, KILN_CUDA_F32);
  ASSERT_OK(kiln_cuda_nhwc_to_nchw_pitched(dp.d, KILN_CUDA_F16, ps, (float *)dl.d + 3, KILN_CUDA_F32, n, c3, hw, pitch, NULL));
  float *yp = dev_down(&dp), *yl = dev_down(&dl);
  for (int b = 0; b < n; b++)
    for (int p = 0; p < hw; p++)
      for (int ch = 0; ch < ps; ch++) {
        float got = yp[((size_t)b * hw + p) * ps + ch];
        float want = ch < c3 ? round_h(x3[((size_t)b * c3 + ch) * hw + p]) : 0.f;
        check_close("nchw_to_nhwc_padded", (size_t)p, got, want, 0);
        if (ch < c3) check_close("nhwc_to_nchw_pitched", (size_t)p, yl[((size_t)b * c3 + ch) * pitch + 3 + p], want, 0);
      }
  for (int row = 0; row < n * c3; row++) /* outside the slice stays poisoned */
    for (int k = 0; k < pitch; k++)
      if (k < 3 || k >= 3 + hw) assert_true(isnan(yl[(size_t)row * pitch + k]));
  /* with an activation on the way (the class scores' Sigmoid) */
  kiln_epilogue sig = {KILN_ACT_SIGMOID, 0, 0, 0};
  ASSERT_OK(kiln_cuda_nhwc_to_nchw_act(dp.d, KILN_CUDA_F16, ps, (float *)dl.d + 3, KILN_CUDA_F32, n, c3, hw, pitch, sig, NULL));
  free(yl);
  yl = dev_down(&dl);
  for (int b = 0; b < n; b++)
    for (int ch = 0; ch < c3; ch++)
      for (int p = 0; p < hw; p++) {
        float v = round_h(x3[((size_t)b * c3 + ch) * hw + p]);
        check_close("nhwc_to_nchw_act", (size_t)p, yl[((size_t)b * c3 + ch) * pitch + 3 + p], 1.f / (1.f + expf(-v)), 1e-6);
      }
  free(x3), free(yp), free(yl);
  dev_free(&dx3), dev_free(&dp), dev_free(&dl);
}

/* Several NHWC maps into the rows of one LINEAR tensor (the YOLO head's spatial Concat, cuda.convert_concat):
 * map k of hw[k] pixels, pixel stride c + extra[k], goes to columns off0 + sum(hw[<k]) of rows `pitch` apart,
 * images `img` apart (pitch and img leave gaps that must stay poisoned). */
static void maps_case(kiln_cuda_dtype xt, kiln_cuda_dtype yt, int n, int c, int nm, const int *hw, const int *extra, int off0,
                      int gap, int img_gap, kiln_epilogue act) {
  kiln_cuda_nhwc_map maps[4];
  float *xs[4];
  dbuf dxs[4];
  int cols = off0;
  for (int k = 0; k < nm; k++) {
    int xps = c + extra[k];
    size_t nx = (size_t)n * hw[k] * xps;
    xs[k] = rand_vec(nx, xt == KILN_CUDA_F16);
    for (size_t i = 0; i < nx; i++) xs[k][i] *= 4; /* a sigmoid's whole range */
    dxs[k] = dev_up(xs[k], nx, xt);
    maps[k] = (kiln_cuda_nhwc_map){dxs[k].d, hw[k], extra[k] ? xps : 0, cols};
    cols += hw[k];
  }
  const int64_t pitch = cols + gap, img = (int64_t)c * pitch + img_gap;
  dbuf dy = dev_new((size_t)(n * img), yt);
  ASSERT_OK(kiln_cuda_nhwc_to_nchw_maps(maps, nm, xt, dy.d, yt, n, c, pitch, img_gap ? img : 0, act, NULL));
  float *y = dev_down(&dy);
  char *hit = calloc((size_t)(n * img), 1);
  for (int k = 0; k < nm; k++)
    for (int b = 0; b < n; b++)
      for (int ch = 0; ch < c; ch++)
        for (int p = 0; p < hw[k]; p++) {
          size_t o = (size_t)(b * img + ch * pitch + maps[k].y_offset + p);
          float v = xs[k][((size_t)b * hw[k] + p) * (size_t)(c + extra[k]) + ch];
          double want = act_ref(xt == KILN_CUDA_F16 ? round_h(v) : v, act);
          if (yt == KILN_CUDA_F16) want = round_h((float)want);
          check_close("nhwc_to_nchw_maps", o, y[o], want, yt == KILN_CUDA_F16 ? 2e-3 : act.act ? 1e-6 : 0);
          hit[o] = 1;
        }
  for (size_t o = 0; o < (size_t)(n * img); o++) /* the gaps between columns, rows and images */
    if (!hit[o] && !isnan(y[o])) {
      print_error("nhwc_to_nchw_maps: element %zu outside the maps was written\n", o);
      fail();
    }
  free(hit), free(y);
  dev_free(&dy);
  for (int k = 0; k < nm; k++) free(xs[k]), dev_free(&dxs[k]);
}

static void test_nhwc_maps(void **state) {
  (void)state;
  REQUIRE_GPU();
  kiln_epilogue none = {KILN_ACT_NONE, 0, 0, 0}, sig = {KILN_ACT_SIGMOID, 0, 0, 0};
  const int hw3[3] = {67, 130, 5}, hw_yolo[3] = {64 * 3, 36, 4}, dense[3] = {0, 0, 0}, wide[3] = {8, 0, 16},
            odd[3] = {0, 3, 0};
  const kiln_cuda_dtype dts[2] = {KILN_CUDA_F16, KILN_CUDA_F32};
  for (int i = 0; i < 2; i++)
    for (int o = 0; o < 2; o++) {
      kiln_cuda_dtype xt = dts[i], yt = dts[o];
      /* the fast path: odd pixel counts (tile tails), 4-aligned columns (vector stores) or not (scalar),
       * an image stride wider than the rows (a row-strided Concat member), one or two channel tiles */
      maps_case(xt, yt, 3, 24, 3, hw3, dense, 0, 0, 0, sig);
      maps_case(xt, yt, 2, 80, 3, hw_yolo, wide, 4, 4, 8 * 4, sig);
      maps_case(xt, yt, 2, 16, 3, hw3, wide, 3, 5, 17, none);
      maps_case(xt, yt, 2, 136, 3, hw3, dense, 0, 2, 0, sig);
      maps_case(xt, yt, 1, 8, 1, hw3, dense, 1, 0, 0, none);
      /* the general path: channels or a pixel stride that 16-byte chunks do not divide */
      maps_case(xt, yt, 2, 12, 3, hw3, dense, 2, 3, 9, sig);
      maps_case(xt, yt, 3, 24, 3, hw3, odd, 0, 0, 40, sig);
      maps_case(xt, yt, 2, 5, 2, hw3, dense, 0, 1, 3, none);
    }
  kiln_cuda_nhwc_map m = {NULL, 10, 0, 4};
  expect_error(kiln_cuda_nhwc_to_nchw_maps(&m, 1, KILN_CUDA_F16, NULL, KILN_CUDA_F32, 1, 8, 12, 0, none, NULL),
               KILN_ERR_INVALID_ARGUMENT, "overlap");
  expect_error(kiln_cuda_nhwc_to_nchw_maps(&m, 1, KILN_CUDA_F16, NULL, KILN_CUDA_F32, 1, 8, 14, 100, none, NULL),
               KILN_ERR_INVALID_ARGUMENT, "overlap");
}

/* ---- MaxPool / Resize ---------------------------------------------------------------------------- */
static void pool_case(kiln_cuda_dtype dt, int n, int c, int ih, int iw, int k, int s, int pad, int ips, int ops) {
  int oh = (ih + 2 * pad - k) / s + 1, ow = (iw + 2 * pad - k) / s + 1;
  kiln_cuda_pool_desc d = {n, c, ih, iw, oh, ow, k, k, s, s, pad, pad, 1, 1, ips, ops, dt};
  if (!ips) ips = c; /* 0 means dense */
  if (!ops) ops = c;
  size_t nx = (size_t)n * ih * iw * ips;
  float *x = rand_vec(nx, dt == KILN_CUDA_F16);
  dbuf dx = dev_up(x, nx, dt), dy = dev_new((size_t)n * oh * ow * ops, dt);
  ASSERT_OK(kiln_cuda_maxpool2d_nhwc(&d, dx.d, dy.d, NULL));
  float *y = dev_down(&dy);
  for (int b = 0; b < n; b++)
    for (int y0 = 0; y0 < oh; y0++)
      for (int x0 = 0; x0 < ow; x0++)
        for (int ch = 0; ch < ops; ch++) {
          size_t o = (((size_t)b * oh + y0) * ow + x0) * ops + ch;
          if (ch >= c) {
            assert_true(isnan(y[o]));
            continue;
          }
          float m = -INFINITY;
          for (int kh = 0; kh < k; kh++)
            for (int kw = 0; kw < k; kw++) {
              int yy = y0 * s - pad + kh, xx = x0 * s - pad + kw;
              if (yy >= 0 && yy < ih && xx >= 0 && xx < iw) {
                float v = x[(((size_t)b * ih + yy) * iw + xx) * ips + ch];
                if (v > m) m = v;
              }
            }
          check_close("maxpool", o, y[o], m, 0);
        }
  free(x), free(y);
  dev_free(&dx), dev_free(&dy);
}

static void test_maxpool(void **state) {
  (void)state;
  REQUIRE_GPU();
  pool_case(KILN_CUDA_F16, 2, 13, 11, 9, 5, 1, 2, 16, 20); /* SPPF: 5x5 s1 p2 into a Concat slice */
  pool_case(KILN_CUDA_F32, 1, 7, 9, 10, 3, 2, 1, 7, 7);
  pool_case(KILN_CUDA_F32, 3, 4, 8, 8, 2, 2, 0, 0, 0);
  /* 16-byte vector path: channels and pixel strides multiples of 8 (fp16) / 4 (fp32) */
  pool_case(KILN_CUDA_F16, 2, 16, 11, 9, 5, 1, 2, 24, 48);
  pool_case(KILN_CUDA_F32, 1, 8, 9, 10, 3, 2, 1, 12, 8);
  /* enough 16-byte vectors for the wide units (small pools take 4-byte units, above) */
  pool_case(KILN_CUDA_F16, 4, 64, 40, 40, 5, 1, 2, 64, 128);
  pool_case(KILN_CUDA_F32, 4, 32, 36, 36, 3, 1, 1, 32, 32);
}

/* A chain of n_out same-size pools (SPPF) from x (pixel stride ips) into one buffer of pixel stride ops,
 * output k at channel offset k * c (a Concat's slices); the channels past them stay poisoned. */
static void pool_chain_case(kiln_cuda_dtype dt, int n, int c, int h, int w, int kh, int kw, int n_out, int ips, int ops) {
  kiln_cuda_pool_desc d = {n, c, h, w, h, w, kh, kw, 1, 1, (kh - 1) / 2, (kw - 1) / 2, 1, 1, ips, ops, dt};
  assert_true(kiln_cuda_maxpool_chain_supported(&d));
  size_t nx = (size_t)n * h * w * ips, ny = (size_t)n * h * w * ops, plane = (size_t)n * h * w * c;
  float *x = rand_vec(nx, dt == KILN_CUDA_F16);
  dbuf dx = dev_up(x, nx, dt), dy = dev_new(ny, dt);
  size_t es = dt == KILN_CUDA_F16 ? 2 : 4;
  void *ys[KILN_CUDA_POOL_CHAIN_MAX];
  for (int k = 0; k < n_out; k++) ys[k] = (char *)dy.d + (size_t)k * c * es;
  ASSERT_OK(kiln_cuda_maxpool_chain_nhwc(&d, n_out, dx.d, ys, NULL));
  float *y = dev_down(&dy);
  /* reference: the pools one after another, dense [n][h][w][c] */
  float *cur = malloc(plane * sizeof *cur), *nxt = malloc(plane * sizeof *nxt);
  for (size_t i = 0; i < plane; i++) cur[i] = x[(i / c) * ips + i % c];
  char what[160];
  snprintf(what, sizeof what, "maxpool chain %s n%d c%d %dx%d k%dx%d outs%d ips%d ops%d", dt == KILN_CUDA_F16 ? "f16" : "f32",
           n, c, h, w, kh, kw, n_out, ips, ops);
  for (int k = 0; k < n_out; k++) {
    for (int b = 0; b < n; b++)
      for (int y0 = 0; y0 < h; y0++)
        for (int x0 = 0; x0 < w; x0++)
          for (int ch = 0; ch < c; ch++) {
            float m = -INFINITY;
            for (int i = -(kh - 1) / 2; i <= (kh - 1) / 2; i++)
              for (int j = -(kw - 1) / 2; j <= (kw - 1) / 2; j++) {
                int yy = y0 + i, xx = x0 + j;
                if (yy >= 0 && yy < h && xx >= 0 && xx < w) {
                  float v = cur[(((size_t)b * h + yy) * w + xx) * c + ch];
                  if (v > m) m = v;
                }
              }
            size_t pix = ((size_t)b * h + y0) * w + x0;
            nxt[pix * c + ch] = m;
            check_close(what, pix * ops + k * c + ch, y[pix * ops + (size_t)k * c + ch], m, 0);
          }
    float *t = cur;
    cur = nxt, nxt = t;
  }
  for (size_t pix = 0; pix < (size_t)n * h * w; pix++)
    for (int ch = n_out * c; ch < ops; ch++)
      if (!isnan(y[pix * ops + ch])) {
        print_error("%s: wrote channel %d of pixel %zu, past its outputs\n", what, ch, pix);
        fail();
      }
  free(x), free(y), free(cur), free(nxt);
  dev_free(&dx), dev_free(&dy);
}

static void test_maxpool_chain(void **state) {
  (void)state;
  REQUIRE_GPU();
  pool_chain_case(KILN_CUDA_F16, 2, 12, 11, 9, 5, 5, 3, 16, 40);   /* 4-byte units (24-byte channel groups) */
  pool_chain_case(KILN_CUDA_F16, 33, 64, 20, 20, 5, 5, 3, 64, 200); /* SPPF at batch 33: 16-byte units */
  pool_chain_case(KILN_CUDA_F32, 1, 5, 7, 13, 3, 5, 4, 5, 23);      /* 3x5 window, four outputs */
  pool_chain_case(KILN_CUDA_F32, 70, 8, 6, 6, 3, 3, 2, 8, 16);      /* few groups: 4-byte units */
  pool_chain_case(KILN_CUDA_F32, 64, 16, 9, 7, 5, 5, 2, 20, 36);    /* 16-byte units, fp32 */
  pool_chain_case(KILN_CUDA_F16, 1, 2, 3, 2, 7, 7, 1, 2, 2);        /* window larger than the map */
  /* what does not qualify */
  kiln_cuda_pool_desc d = {1, 8, 20, 20, 10, 10, 5, 5, 2, 2, 2, 2, 1, 1, 0, 0, KILN_CUDA_F16}; /* stride 2 */
  assert_false(kiln_cuda_maxpool_chain_supported(&d));
  kiln_cuda_pool_desc e = {1, 8, 20, 20, 19, 19, 2, 2, 1, 1, 0, 0, 1, 1, 0, 0, KILN_CUDA_F16}; /* even window */
  assert_false(kiln_cuda_maxpool_chain_supported(&e));
  kiln_cuda_pool_desc f = {1, 8, 160, 160, 160, 160, 5, 5, 1, 1, 2, 2, 1, 1, 0, 0, KILN_CUDA_F16}; /* map too big */
  assert_false(kiln_cuda_maxpool_chain_supported(&f));
  void *ys[KILN_CUDA_POOL_CHAIN_MAX] = {NULL, NULL, NULL, NULL};
  expect_error(kiln_cuda_maxpool_chain_nhwc(&f, 3, NULL, ys, NULL), KILN_ERR_INVALID_ARGUMENT, "maxpool chain");
}

static void resize_case(int c, int ips, int ops) {
  const int n = 2, ih = 5, iw = 7, sh = 2, sw = 3;
  size_t nx = (size_t)n * ih * iw * ips, ny = (size_t)n * ih * sh * iw * sw * ops;
  float *x = rand_vec(nx, 1);
  dbuf dx = dev_up(x, nx, KILN_CUDA_F16), dy = dev_new(ny, KILN_CUDA_F16);
  ASSERT_OK(kiln_cuda_resize_nearest_nhwc(KILN_CUDA_F16, n, c, ih, iw, sh, sw, dx.d, ips, dy.d, ops, NULL));
  float *y = dev_down(&dy);
  for (int b = 0; b < n; b++)
    for (int y0 = 0; y0 < ih * sh; y0++)
      for (int x0 = 0; x0 < iw * sw; x0++)
        for (int ch = 0; ch < ops; ch++) {
          size_t o = (((size_t)b * ih * sh + y0) * iw * sw + x0) * ops + ch;
          if (ch >= c) assert_true(isnan(y[o]));
          else check_close("resize", o, y[o], x[(((size_t)b * ih + y0 / sh) * iw + x0 / sw) * ips + ch], 0);
        }
  free(x), free(y);
  dev_free(&dx), dev_free(&dy);
}

static void test_resize(void **state) {
  (void)state;
  REQUIRE_GPU();
  resize_case(11, 12, 17); /* element path */
  resize_case(16, 24, 40); /* 16-byte vector path, into a Concat slice */
}

/* ---- Softmax ------------------------------------------------------------------------------------ */
static void softmax_case(kiln_cuda_dtype dt, int outer, int axis, int inner) {
  size_t n = (size_t)outer * axis * inner;
  float *x = rand_vec(n, dt == KILN_CUDA_F16);
  for (size_t i = 0; i < n; i++) x[i] *= 4;
  dbuf dx = dev_up(x, n, dt), dy = dev_new(n, dt);
  ASSERT_OK(kiln_cuda_softmax(dt, outer, axis, inner, dx.d, dy.d, NULL));
  float *y = dev_down(&dy);
  for (int o = 0; o < outer; o++)
    for (int in = 0; in < inner; in++) {
      double m = -INFINITY, s = 0;
      for (int j = 0; j < axis; j++) m = fmax(m, x[((size_t)o * axis + j) * inner + in]);
      for (int j = 0; j < axis; j++) s += exp(x[((size_t)o * axis + j) * inner + in] - m);
      for (int j = 0; j < axis; j++) {
        size_t i = ((size_t)o * axis + j) * inner + in;
        check_close("softmax", i, y[i], exp(x[i] - m) / s, dt == KILN_CUDA_F16 ? 1e-2 : 1e-5);
      }
    }
  free(x), free(y);
  dev_free(&dx), dev_free(&dy);
}

/* Softmax over the middle dim + dot product with w (the fused DFL): y[o][i] = sum_j w[j] softmax_j + bias.
 * The output buffer has 5 more elements than the result; they must stay poisoned. */
static void softmax_dot_case(kiln_cuda_dtype dt, int outer, int axis, int inner, int with_bias) {
  size_t n = (size_t)outer * axis * inner, ny = (size_t)outer * inner;
  float *x = rand_vec(n, dt == KILN_CUDA_F16), *w = rand_vec((size_t)axis, 0), bias = 0.37f;
  for (size_t i = 0; i < n; i++) x[i] *= 4;
  dbuf dx = dev_up(x, n, dt), dw = dev_up(w, (size_t)axis, KILN_CUDA_F32), db = dev_up(&bias, 1, KILN_CUDA_F32);
  dbuf dy = dev_new(ny + 5, KILN_CUDA_F32);
  ASSERT_OK(kiln_cuda_softmax_dot(dt, outer, axis, inner, dx.d, dw.d, with_bias ? db.d : NULL, dy.d, NULL));
  float *y = dev_down(&dy);
  for (int o = 0; o < outer; o++)
    for (int in = 0; in < inner; in++) {
      double m = -INFINITY, s = 0, d = 0;
      for (int j = 0; j < axis; j++) m = fmax(m, x[((size_t)o * axis + j) * inner + in]);
      for (int j = 0; j < axis; j++) {
        double e = exp(x[((size_t)o * axis + j) * inner + in] - m);
        s += e, d += e * w[j];
      }
      check_close("softmax_dot", (size_t)o * inner + in, y[(size_t)o * inner + in], d / s + (with_bias ? bias : 0), 1e-5);
    }
  for (size_t i = ny; i < ny + 5; i++)
    if (!isnan(y[i])) {
      print_error("softmax_dot wrote past its output at %zu\n", i);
      fail();
    }
  free(x), free(w), free(y);
  dev_free(&dx), dev_free(&dw), dev_free(&db), dev_free(&dy);
}

/* The DFL straight from NHWC maps: n_maps maps of hw[k] pixels, pixel stride ps (0 = groups * len), into y
 * [batch][groups][total] (5 poisoned elements past it). The reference is the same double-precision math
 * as softmax_dot_case over the concatenation. */
static void softmax_dot_nhwc_case(kiln_cuda_dtype dt, int batch, int groups, int len, int n_maps, const int *hw, int ps,
                                  int with_bias) {
  const int c = groups * len, pstride = ps ? ps : c;
  int total = 0;
  for (int k = 0; k < n_maps; k++) total += hw[k];
  float *w = rand_vec((size_t)len, 0), bias = -0.61f;
  dbuf dw = dev_up(w, (size_t)len, KILN_CUDA_F32), db = dev_up(&bias, 1, KILN_CUDA_F32);
  size_t ny = (size_t)batch * groups * total;
  dbuf dy = dev_new(ny + 5, KILN_CUDA_F32);
  float *xs[8];
  dbuf dxs[8];
  kiln_cuda_nhwc_map maps[8];
  int at = 0;
  for (int k = 0; k < n_maps; k++) {
    size_t n = (size_t)batch * hw[k] * pstride;
    xs[k] = rand_vec(n, dt == KILN_CUDA_F16);
    for (size_t i = 0; i < n; i++) xs[k][i] *= 4;
    dxs[k] = dev_up(xs[k], n, dt);
    maps[k] = (kiln_cuda_nhwc_map){dxs[k].d, hw[k], ps, at};
    at += hw[k];
  }
  ASSERT_OK(kiln_cuda_softmax_dot_nhwc(maps, n_maps, dt, batch, groups, len, total, dw.d, with_bias ? db.d : NULL, dy.d, NULL));
  float *y = dev_down(&dy);
  char what[120];
  snprintf(what, sizeof what, "softmax_dot_nhwc %s b%d g%d len%d maps%d ps%d", dt == KILN_CUDA_F16 ? "f16" : "f32", batch,
           groups, len, n_maps, ps);
  for (int b = 0; b < batch; b++) {
    int off = 0;
    for (int k = 0; k < n_maps; k++) {
      for (int p = 0; p < hw[k]; p++)
        for (int g = 0; g < groups; g++) {
          const float *xv = xs[k] + ((size_t)b * hw[k] + p) * pstride + (size_t)g * len;
          double m = -INFINITY, s = 0, d = 0;
          for (int j = 0; j < len; j++) m = fmax(m, xv[j]);
          for (int j = 0; j < len; j++) {
            double e = exp(xv[j] - m);
            s += e, d += e * w[j];
          }
          size_t o = ((size_t)b * groups + g) * total + off + p;
          check_close(what, o, y[o], d / s + (with_bias ? bias : 0), 1e-5);
        }
      off += hw[k];
    }
  }
  for (size_t i = ny; i < ny + 5; i++)
    if (!isnan(y[i])) {
      print_error("%s wrote past its output at %zu\n", what, i);
      fail();
    }
  for (int k = 0; k < n_maps; k++) free(xs[k]), dev_free(&dxs[k]);
  free(w), free(y);
  dev_free(&dw), dev_free(&db), dev_free(&dy);
}

static void test_softmax_dot_nhwc(void **state) {
  (void)state;
  REQUIRE_GPU();
  const int yolo[3] = {6400, 1600, 400}, odd[3] = {37, 5, 12}, one[1] = {9};
  softmax_dot_nhwc_case(KILN_CUDA_F16, 2, 4, 16, 3, yolo, 0, 0);  /* YOLOv8's box maps: 16-byte loads */
  softmax_dot_nhwc_case(KILN_CUDA_F32, 1, 4, 16, 3, yolo, 0, 1);  /* fp32 engine */
  softmax_dot_nhwc_case(KILN_CUDA_F16, 3, 4, 16, 3, odd, 72, 1);  /* maps in a wider buffer (16-byte strides) */
  softmax_dot_nhwc_case(KILN_CUDA_F16, 2, 4, 16, 3, odd, 68, 0);  /* a pixel stride off 16 bytes: element loads */
  softmax_dot_nhwc_case(KILN_CUDA_F32, 2, 3, 5, 3, odd, 0, 1);    /* any bin count */
  softmax_dot_nhwc_case(KILN_CUDA_F16, 1, 2, 7, 1, one, 17, 0);
  kiln_cuda_nhwc_map bad = {NULL, 4, 0, 0};
  expect_error(kiln_cuda_softmax_dot_nhwc(&bad, 1, KILN_CUDA_F32, 1, 4, 16, 4, NULL, NULL, NULL, NULL),
               KILN_ERR_INVALID_ARGUMENT, "softmax_dot_nhwc");
  kiln_cuda_nhwc_map gap[2] = {{&bad, 4, 0, 0}, {&bad, 4, 0, 5}};
  float w1 = 1;
  expect_error(kiln_cuda_softmax_dot_nhwc(gap, 2, KILN_CUDA_F32, 1, 4, 16, 9, &w1, NULL, &w1, NULL),
               KILN_ERR_INVALID_ARGUMENT, "does not continue");
}

static void test_softmax(void **state) {
  (void)state;
  REQUIRE_GPU();
  softmax_dot_case(KILN_CUDA_F32, 4, 16, 8400, 0); /* YOLOv8 DFL at batch 1 */
  softmax_dot_case(KILN_CUDA_F32, 6, 13, 37, 1);
  softmax_dot_case(KILN_CUDA_F16, 3, 7, 29, 1);
  expect_error(kiln_cuda_softmax_dot(KILN_CUDA_F32, 1, 0, 1, NULL, NULL, NULL, NULL, NULL), KILN_ERR_INVALID_ARGUMENT, "bad shape");
  softmax_case(KILN_CUDA_F32, 37, 16, 1);  /* DFL-like rows */
  softmax_case(KILN_CUDA_F32, 3, 77, 1);   /* rows longer than a warp */
  softmax_case(KILN_CUDA_F32, 4, 16, 33);  /* YOLOv8 DFL: axis in the middle */
  softmax_case(KILN_CUDA_F16, 5, 9, 7);
  softmax_case(KILN_CUDA_F16, 11, 45, 1);
}

/* ---- Transpose ---------------------------------------------------------------------------------- */
static void test_transpose(void **state) {
  (void)state;
  REQUIRE_GPU();
  const int64_t dims[4] = {2, 3, 5, 7};
  const int32_t perm[4] = {0, 2, 3, 1};
  size_t n = 2 * 3 * 5 * 7;
  float *x = rand_vec(n, 0);
  dbuf dx = dev_up(x, n, KILN_CUDA_F32), dy = dev_new(n, KILN_CUDA_F32);
  ASSERT_OK(kiln_cuda_transpose(4, 4, dims, perm, dx.d, dy.d, NULL));
  float *y = dev_down(&dy);
  size_t i = 0;
  for (int a = 0; a < 2; a++)
    for (int c = 0; c < 5; c++)
      for (int d = 0; d < 7; d++)
        for (int b = 0; b < 3; b++, i++) check_close("transpose", i, y[i], x[((a * 3 + b) * 5 + c) * 7 + d], 0);
  free(y);
  /* a transpose keeping the innermost dim: whole rows move ([2,3,5,7] (1,0,2,3) = [3,2,35] rows of 35) */
  const int32_t rows_perm[4] = {1, 0, 2, 3};
  assert_int_equal(cudaMemset(dy.d, 0xFF, n * 4), cudaSuccess); /* poison again */
  ASSERT_OK(kiln_cuda_transpose(4, 4, dims, rows_perm, dx.d, dy.d, NULL));
  y = dev_down(&dy);
  i = 0;
  for (int b = 0; b < 3; b++)
    for (int a = 0; a < 2; a++)
      for (int k = 0; k < 35; k++, i++) check_close("transpose_rows", i, y[i], x[(a * 3 + b) * 35 + k], 0);
  free(y);
  /* rows of 16-byte units: [2,3,4,8] (1,0,2,3) -> [3,2,32], rows of 32 floats */
  const int64_t dims16[4] = {2, 3, 4, 8};
  dbuf dx16 = dev_up(x, 2 * 3 * 4 * 8, KILN_CUDA_F32), dy16 = dev_new(2 * 3 * 4 * 8, KILN_CUDA_F32);
  ASSERT_OK(kiln_cuda_transpose(4, 4, dims16, rows_perm, dx16.d, dy16.d, NULL));
  float *y16 = dev_down(&dy16);
  i = 0;
  for (int b = 0; b < 3; b++)
    for (int a = 0; a < 2; a++)
      for (int k = 0; k < 32; k++, i++) check_close("transpose_rows16", i, y16[i], x[(a * 3 + b) * 32 + k], 0);
  free(y16);
  dev_free(&dx16), dev_free(&dy16);
  /* rank 3, 2-byte elements: [84][1][33] -> [1][33][84] (YOLOv8's output transpose, small) */
  const int64_t d3[3] = {84, 1, 33};
  const int32_t p3[3] = {1, 2, 0};
  n = 84 * 33;
  float *x3 = rand_vec(n, 1);
  dbuf dx3 = dev_up(x3, n, KILN_CUDA_F16), dy3 = dev_new(n, KILN_CUDA_F16);
  ASSERT_OK(kiln_cuda_transpose(2, 3, d3, p3, dx3.d, dy3.d, NULL));
  float *y3 = dev_down(&dy3);
  for (int j = 0; j < 33; j++)
    for (int k = 0; k < 84; k++) check_close("transpose3", (size_t)j, y3[j * 84 + k], x3[k * 33 + j], 0);
  expect_error(kiln_cuda_transpose(4, 2, dims, (const int32_t[]){0, 0}, dx.d, dy.d, NULL), KILN_ERR_INVALID_ARGUMENT,
               "permutation");
  free(x), free(x3), free(y3);
  dev_free(&dx), dev_free(&dy), dev_free(&dx3), dev_free(&dy3);
}

/* ---- binary with broadcast, activation, concat copy --------------------------------------------- */
static double binop_ref(kiln_cuda_binop op, double a, double b) {
  switch (op) {
  case KILN_CUDA_ADD: return a + b;
  case KILN_CUDA_SUB: return a - b;
  case KILN_CUDA_MUL: return a * b;
  case KILN_CUDA_DIV: return a / b;
  case KILN_CUDA_MAX: return a > b ? a : b;
  case KILN_CUDA_MIN: return a < b ? a : b;
  default: return pow(a, b);
  }
}

static void test_binary(void **state) {
  (void)state;
  REQUIRE_GPU();
  const int64_t ad[4] = {2, 3, 5, 7}, bd[3] = {3, 1, 7};
  size_t na = 210, nb = 21;
  float *a = rand_vec(na, 1), *b = rand_vec(nb, 1);
  for (size_t i = 0; i < na; i++) a[i] = round_h(fabsf(a[i]) + 0.5f); /* positive: DIV and POW stay tame */
  for (size_t i = 0; i < nb; i++) b[i] = round_h(fabsf(b[i]) + 0.5f);
  for (int t = 0; t < 2; t++) {
    kiln_cuda_dtype dt = t ? KILN_CUDA_F16 : KILN_CUDA_F32;
    dbuf da = dev_up(a, na, dt), db = dev_up(b, nb, dt);
    for (int op = KILN_CUDA_ADD; op <= KILN_CUDA_POW; op++) {
      dbuf dy = dev_new(na, dt);
      /* b op a exercises the stretch on the other side */
      ASSERT_OK(kiln_cuda_binary((kiln_cuda_binop)op, dt, db.d, 3, bd, da.d, 4, ad, dy.d, NULL));
      float *y = dev_down(&dy);
      for (int i0 = 0; i0 < 2; i0++)
        for (int i1 = 0; i1 < 3; i1++)
          for (int i2 = 0; i2 < 5; i2++)
            for (int i3 = 0; i3 < 7; i3++) {
              size_t i = ((size_t)(i0 * 3 + i1) * 5 + i2) * 7 + i3;
              check_close("binary", i, y[i], binop_ref((kiln_cuda_binop)op, b[i1 * 7 + i3], a[i]), t ? 1e-2 : 1e-5);
            }
      free(y);
      dev_free(&dy);
    }
    dev_free(&da), dev_free(&db);
  }
  const int64_t bad[1] = {4};
  expect_error(kiln_cuda_binary(KILN_CUDA_ADD, KILN_CUDA_F32, NULL, 4, ad, NULL, 1, bad, NULL, NULL), KILN_ERR_SHAPE,
               "broadcast");
  free(a), free(b);
}

static void test_activation(void **state) {
  (void)state;
  REQUIRE_GPU();
  size_t n = 1001;
  float *x = rand_vec(n, 1);
  for (size_t i = 0; i < n; i++) x[i] = round_h(x[i] * 8);
  kiln_act acts[3] = {KILN_ACT_SILU, KILN_ACT_SIGMOID, KILN_ACT_RELU};
  for (int t = 0; t < 2; t++)
    for (int a = 0; a < 3; a++) {
      kiln_cuda_dtype dt = t ? KILN_CUDA_F16 : KILN_CUDA_F32;
      kiln_epilogue ep = {acts[a], 0, 0, 0};
      dbuf dx = dev_up(x, n, dt), dy = dev_new(n, dt);
      ASSERT_OK(kiln_cuda_activation(dt, ep, (int64_t)n, dx.d, dy.d, NULL));
      float *y = dev_down(&dy);
      for (size_t i = 0; i < n; i++) check_close("activation", i, y[i], act_ref(x[i], ep), t ? 1e-2 : 1e-5);
      free(y);
      dev_free(&dx), dev_free(&dy);
    }
  free(x);
}

/* Row-strided operands and results (Concat members and Slices at batch > 1, engine_format.h): a [3,2,5]
 * in rows 17 apart, op b broadcast as [1,2,5], [5] or a scalar, into y rows 23 apart at offset 4, with
 * the activation fused; the gaps stay poisoned. */
static void test_binary_rows(void **state) {
  (void)state;
  REQUIRE_GPU();
  const int rows = 3, len = 10, as = 17, ys = 23, yoff = 4;
  const int64_t ad[3] = {3, 2, 5}, bd1[3] = {1, 2, 5}, bd2[1] = {5};
  float *a = rand_vec((size_t)rows * as, 1), *b = rand_vec(10, 1);
  for (int i = 0; i < 10; i++) b[i] = round_h(fabsf(b[i]) + 0.5f);
  kiln_epilogue acts[2] = {{KILN_ACT_NONE, 0, 0, 0}, {KILN_ACT_SIGMOID, 0, 0, 0}};
  for (int t = 0; t < 2; t++) {
    kiln_cuda_dtype dt = t ? KILN_CUDA_F16 : KILN_CUDA_F32;
    dbuf da = dev_up(a, (size_t)rows * as, dt), db = dev_up(b, 10, dt);
    for (int bk = 0; bk < 3; bk++)
      for (int op = KILN_CUDA_ADD; op <= KILN_CUDA_DIV; op++) {
        kiln_epilogue act = acts[(bk + op) % 2];
        dbuf dy = dev_new((size_t)(yoff + rows * ys), dt);
        kiln_cuda_rows ra = {da.d, 3, ad, as};
        kiln_cuda_rows rb = {db.d, bk == 0 ? 3 : bk == 1 ? 1 : 0, bk == 0 ? bd1 : bd2, 0};
        void *yp = (char *)dy.d + yoff * dy.es;
        /* b op a for the rank-1 case: the strided operand on the other side */
        if (bk == 1) ASSERT_OK(kiln_cuda_binary_rows((kiln_cuda_binop)op, dt, rb, ra, yp, ys, act, NULL));
        else ASSERT_OK(kiln_cuda_binary_rows((kiln_cuda_binop)op, dt, ra, rb, yp, ys, act, NULL));
        float *y = dev_down(&dy);
        for (int k = 0; k < yoff + rows * ys; k++) {
          int r = (k - yoff) / ys, j = (k - yoff) % ys;
          if (k < yoff || j >= len) {
            assert_true(isnan(y[k]));
            continue;
          }
          double av = a[r * as + j], bv = bk == 0 ? b[j] : bk == 1 ? b[j % 5] : b[0], v;
          v = bk == 1 ? binop_ref((kiln_cuda_binop)op, bv, av) : binop_ref((kiln_cuda_binop)op, av, bv);
          check_close("binary_rows", (size_t)k, y[k], act_ref(v, act), t ? 1e-2 : 1e-6);
        }
        free(y);
        dev_free(&dy);
      }
    /* unary: x rows 17 apart -> y rows 23 apart */
    dbuf dy = dev_new((size_t)(yoff + rows * ys), dt);
    ASSERT_OK(kiln_cuda_activation_rows(dt, acts[1], rows, len, da.d, as, (char *)dy.d + yoff * dy.es, ys, NULL));
    float *y = dev_down(&dy);
    for (int k = 0; k < yoff + rows * ys; k++) {
      int r = (k - yoff) / ys, j = (k - yoff) % ys;
      if (k < yoff || j >= len) assert_true(isnan(y[k]));
      else check_close("activation_rows", (size_t)k, y[k], act_ref(a[r * as + j], acts[1]), t ? 1e-2 : 1e-6);
    }
    free(y);
    dev_free(&dy), dev_free(&da), dev_free(&db);
  }
  kiln_cuda_rows ra = {NULL, 3, ad, 9}, rb = {NULL, 1, bd2, 0};
  expect_error(kiln_cuda_binary_rows(KILN_CUDA_ADD, KILN_CUDA_F32, ra, rb, NULL, 0, acts[0], NULL), KILN_ERR_INVALID_ARGUMENT,
               "overlap");
  ra.row_stride = 0;
  expect_error(kiln_cuda_binary_rows(KILN_CUDA_ADD, KILN_CUDA_F32, ra, rb, NULL, 7, acts[0], NULL), KILN_ERR_INVALID_ARGUMENT,
               "overlap");
  expect_error(kiln_cuda_activation_rows(KILN_CUDA_F32, acts[0], 2, 10, NULL, 9, NULL, 0, NULL), KILN_ERR_INVALID_ARGUMENT,
               "row stride");
  free(a), free(b);
}

/* A fused pointwise program (cuda.pointwise) against the same ops in host float, one at a time: the
 * YOLOv8 box decode's shape (anchor - lt, anchor + rb, sum, difference, / 2) plus a unary sigmoid and a
 * Max with a fused ReLU; inputs broadcast ([1,2,7], a scalar, [7]) and row-strided (B: rows 20 apart),
 * one output row-strided (rows 30 apart at offset 3), intermediates never stored. fp32 must match bit for
 * bit where no exp is involved (IEEE-rounded ops, no FMA contraction). */
static void test_pointwise(void **state) {
  (void)state;
  REQUIRE_GPU();
  enum { R = 3, C = 2, W = 7, LEN = C * W, BS = 20, YS = 30, YOFF = 3, N = R * LEN };
  const int64_t dims[3] = {R, C, W}, ad[3] = {1, C, W}, dd[1] = {W};
  float *a = rand_vec(LEN, 1), *b = rand_vec(R * BS, 1), *c = rand_vec(N, 1), *d = rand_vec(W, 1), s = 2.f;
  kiln_epilogue none = {KILN_ACT_NONE, 0, 0, 0}, sig = {KILN_ACT_SIGMOID, 0, 0, 0}, relu = {KILN_ACT_RELU, 0, 0, 0};
  /* slots: 0 A, 1 B, 2 C, 3 S, 4 D, then op k -> 5 + k */
  const kiln_cuda_pw_op ops[7] = {{KILN_CUDA_SUB, 0, 1, 0, none}, {KILN_CUDA_ADD, 0, 2, 0, none}, {KILN_CUDA_ADD, 5, 6, 0, none},
                                  {KILN_CUDA_SUB, 6, 5, 0, none}, {KILN_CUDA_DIV, 7, 3, 0, none}, {-1, 8, 0, 0, sig},
                                  {KILN_CUDA_MAX, 9, 4, 0, relu}};
  const int32_t slots[3] = {8, 9, 11};
  for (int t = 0; t < 2; t++) {
    kiln_cuda_dtype dt = t ? KILN_CUDA_F16 : KILN_CUDA_F32;
    dbuf da = dev_up(a, LEN, dt), db = dev_up(b, R * BS, dt), dc = dev_up(c, N, dt), ds = dev_up(&s, 1, dt), dd_ = dev_up(d, W, dt);
    dbuf y0 = dev_new(YOFF + R * YS, dt), y1 = dev_new(N, dt), y2 = dev_new(N, dt);
    kiln_cuda_rows in[5] = {{da.d, 3, ad, 0}, {db.d, 3, dims, BS}, {dc.d, 3, dims, 0}, {ds.d, 0, NULL, 0}, {dd_.d, 1, dd, 0}};
    void *outs[3] = {(char *)y0.d + YOFF * y0.es, y1.d, y2.d};
    const int64_t ors[3] = {YS, 0, 0};
    ASSERT_OK(kiln_cuda_pointwise(dt, 3, dims, 5, in, 7, ops, 3, outs, ors, slots, NULL));
    float *h0 = dev_down(&y0), *h1 = dev_down(&y1), *h2 = dev_down(&y2);
    for (int k = 0; k < YOFF + R * YS; k++) /* rows of out 0: only their first LEN elements are written */
      if (k < YOFF || (k - YOFF) % YS >= LEN) assert_true(isnan(h0[k]));
    for (int r = 0; r < R; r++)
      for (int e = 0; e < LEN; e++) {
        int i = r * LEN + e, w = e % W;
        float t0 = a[e] - b[r * BS + e], t1 = a[e] + c[i], t2 = t0 + t1, t3 = t1 - t0, t4 = t2 / s;
        float t6 = t4 > d[w] ? t4 : d[w];
        double tol = t ? 1e-2 : 0;
        check_close("pointwise t3 (row-strided)", (size_t)i, h0[YOFF + r * YS + e], t3, tol);
        check_close("pointwise t4", (size_t)i, h1[i], t4, tol);
        check_close("pointwise max+relu", (size_t)i, h2[i], t6 > 0 ? t6 : 0, tol);
      }
    free(h0), free(h1), free(h2);
    dev_free(&da), dev_free(&db), dev_free(&dc), dev_free(&ds), dev_free(&dd_), dev_free(&y0), dev_free(&y1), dev_free(&y2);
  }
  /* the sigmoid slot as an output */
  {
    dbuf da = dev_up(a, LEN, KILN_CUDA_F32), db = dev_up(b, R * BS, KILN_CUDA_F32), dc = dev_up(c, N, KILN_CUDA_F32);
    dbuf ds = dev_up(&s, 1, KILN_CUDA_F32), dd_ = dev_up(d, W, KILN_CUDA_F32), y = dev_new(N, KILN_CUDA_F32);
    kiln_cuda_rows in[5] = {{da.d, 3, ad, 0}, {db.d, 3, dims, BS}, {dc.d, 3, dims, 0}, {ds.d, 0, NULL, 0}, {dd_.d, 1, dd, 0}};
    void *outs[1] = {y.d};
    const int64_t ors[1] = {0};
    const int32_t sl[1] = {10};
    ASSERT_OK(kiln_cuda_pointwise(KILN_CUDA_F32, 3, dims, 5, in, 7, ops, 1, outs, ors, sl, NULL));
    float *h = dev_down(&y);
    for (int r = 0; r < R; r++)
      for (int e = 0; e < LEN; e++) {
        float t0 = a[e] - b[r * BS + e], t1 = a[e] + c[r * LEN + e];
        check_close("pointwise sigmoid", (size_t)(r * LEN + e), h[r * LEN + e], act_ref(t1 - t0, sig), 1e-6);
      }
    free(h);
    dev_free(&da), dev_free(&db), dev_free(&dc), dev_free(&ds), dev_free(&dd_), dev_free(&y);
  }
  /* refused programs: an op reading its own result, an output slot past the program, a bad broadcast */
  kiln_cuda_pw_op bad[2] = {{KILN_CUDA_ADD, 0, 1, 0, none}, {KILN_CUDA_ADD, 0, 3, 0, none}};
  kiln_cuda_rows in2[2] = {{NULL, 3, dims, 0}, {NULL, 3, dims, 0}};
  void *o1[1] = {NULL};
  const int64_t z[1] = {0};
  int32_t sl = 2;
  expect_error(kiln_cuda_pointwise(KILN_CUDA_F32, 3, dims, 2, in2, 2, bad, 1, o1, z, &sl, NULL), KILN_ERR_INVALID_ARGUMENT,
               "not computed yet");
  sl = 4;
  expect_error(kiln_cuda_pointwise(KILN_CUDA_F32, 3, dims, 2, in2, 1, bad, 1, o1, z, &sl, NULL), KILN_ERR_INVALID_ARGUMENT,
               "bad slot");
  const int64_t five[1] = {5};
  in2[1].rank = 1, in2[1].dims = five;
  sl = 2;
  expect_error(kiln_cuda_pointwise(KILN_CUDA_F32, 3, dims, 2, in2, 1, bad, 1, o1, z, &sl, NULL), KILN_ERR_SHAPE, "broadcast");
  free(a), free(b), free(c), free(d);
}

static void test_concat_copy(void **state) {
  (void)state;
  REQUIRE_GPU();
  const size_t pix = 37, c = 5, total = 12, off = 4;
  float *x = rand_vec(pix * c, 0);
  dbuf dx = dev_up(x, pix * c, KILN_CUDA_F32), dy = dev_new(pix * total, KILN_CUDA_F32);
  ASSERT_OK(kiln_cuda_copy_2d((float *)dy.d + off, total * 4, dx.d, c * 4, c * 4, pix, NULL));
  float *y = dev_down(&dy);
  for (size_t p = 0; p < pix; p++)
    for (size_t ch = 0; ch < total; ch++) {
      float got = y[p * total + ch];
      if (ch < off || ch >= off + c) assert_true(isnan(got));
      else check_close("concat", p, got, x[p * c + ch - off], 0);
    }
  free(x), free(y);
  dev_free(&dx), dev_free(&dy);
}

/* ---- microbenchmark: YOLOv8n conv shapes (640x640) ------------------------------------------- */
typedef struct bench_shape {
  const char *name;
  int count; /* how many convs of this shape yolov8n has */
  int ic, h, w, oc, k, s;
} bench_shape;

static const bench_shape yolo_convs[] = {
    {"b0 stem", 1, 3, 640, 640, 16, 3, 2},   {"b1 down", 1, 16, 320, 320, 32, 3, 2},
    {"b2 cv1", 1, 32, 160, 160, 32, 1, 1},   {"b2 m3x3", 2, 16, 160, 160, 16, 3, 1},
    {"b2 cv2", 1, 48, 160, 160, 32, 1, 1},   {"b3 down", 1, 32, 160, 160, 64, 3, 2},
    {"b4 cv1", 1, 64, 80, 80, 64, 1, 1},     {"b4/h15 m3x3", 6, 32, 80, 80, 32, 3, 1},
    {"b4 cv2", 1, 128, 80, 80, 64, 1, 1},    {"b5 down", 1, 64, 80, 80, 128, 3, 2},
    {"b6 cv1", 1, 128, 40, 40, 128, 1, 1},   {"b6/h m3x3", 8, 64, 40, 40, 64, 3, 1},
    {"b6 cv2", 1, 256, 40, 40, 128, 1, 1},   {"b7 down", 1, 128, 40, 40, 256, 3, 2},
    {"b8 cv1", 1, 256, 20, 20, 256, 1, 1},   {"b8/h m3x3", 4, 128, 20, 20, 128, 3, 1},
    {"b8/h cv2", 2, 384, 20, 20, 256, 1, 1}, {"sppf cv1", 1, 256, 20, 20, 128, 1, 1},
    {"sppf cv2", 1, 512, 20, 20, 256, 1, 1}, {"h12 cv1", 1, 384, 40, 40, 128, 1, 1},
    {"h12/18 cv2", 2, 192, 40, 40, 128, 1, 1}, {"h15 cv1", 1, 192, 80, 80, 64, 1, 1},
    {"h15 cv2", 1, 96, 80, 80, 64, 1, 1},    {"h16 down", 1, 64, 80, 80, 64, 3, 2},
    {"h18 cv1", 1, 192, 40, 40, 128, 1, 1},  {"h19 down", 1, 128, 40, 40, 128, 3, 2},
    {"h21 cv1", 1, 384, 20, 20, 256, 1, 1},  {"P3 box 3x3", 2, 64, 80, 80, 64, 3, 1},
    {"P3 cls 3x3a", 1, 64, 80, 80, 80, 3, 1}, {"P3 cls 3x3b", 1, 80, 80, 80, 80, 3, 1},
    {"P3 box 1x1", 1, 64, 80, 80, 64, 1, 1}, {"P3 cls 1x1", 1, 80, 80, 80, 80, 1, 1},
    {"P4 box 3x3a", 1, 128, 40, 40, 64, 3, 1}, {"P4 box 3x3b", 1, 64, 40, 40, 64, 3, 1},
    {"P4 cls 3x3a", 1, 128, 40, 40, 80, 3, 1}, {"P4 cls 3x3b", 1, 80, 40, 40, 80, 3, 1},
    {"P5 box 3x3a", 1, 256, 20, 20, 64, 3, 1}, {"P5 box 3x3b", 1, 64, 20, 20, 64, 3, 1},
    {"P5 cls 3x3a", 1, 256, 20, 20, 80, 3, 1}, {"P5 cls 3x3b", 1, 80, 20, 20, 80, 3, 1},
};

/* Mean time of one run: `iters` back-to-back runs captured in a CUDA graph (as the engine replays a network,
 * so launch overhead is mostly gone), the graph replayed once to warm up and then timed. */
static float time_conv(const kiln_cuda_conv_desc *d, const void *blob, const void *x, void *y, void *ws, int iters) {
  cudaEvent_t e0, e1;
  cudaStream_t s;
  cudaGraph_t g;
  cudaGraphExec_t ge;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  cudaEventCreate(&e0), cudaEventCreate(&e1);
  kiln_status_destroy(kiln_cuda_conv_run(d, blob, x, NULL, y, ws, s)); /* first call: smem opt-in */
  cudaStreamSynchronize(s);
  cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
  for (int i = 0; i < iters; i++) kiln_status_destroy(kiln_cuda_conv_run(d, blob, x, NULL, y, ws, s));
  cudaStreamEndCapture(s, &g);
  cudaGraphInstantiate(&ge, g, 0);
  cudaGraphLaunch(ge, s);
  cudaEventRecord(e0, s);
  cudaGraphLaunch(ge, s);
  cudaEventRecord(e1, s);
  cudaEventSynchronize(e1);
  float ms = 0;
  cudaEventElapsedTime(&ms, e0, e1);
  cudaGraphExecDestroy(ge), cudaGraphDestroy(g);
  cudaEventDestroy(e0), cudaEventDestroy(e1);
  cudaStreamDestroy(s);
  return ms / iters;
}

/* The old route's input conversion before the stem (fp32 NCHW -> fp16 NHWC, 8-channel pixels), timed like
 * time_conv, so the stem row can show conversion + conv against the direct NCHW stem. */
static float time_convert(const void *x, void *y, int64_t n, int64_t c, int64_t hw, int iters) {
  cudaEvent_t e0, e1;
  cudaStream_t s;
  cudaGraph_t g;
  cudaGraphExec_t ge;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  cudaEventCreate(&e0), cudaEventCreate(&e1);
  cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
  for (int i = 0; i < iters; i++)
    kiln_status_destroy(kiln_cuda_nchw_to_nhwc_padded(x, KILN_CUDA_F32, y, KILN_CUDA_F16, n, c, hw, 8, s));
  cudaStreamEndCapture(s, &g);
  cudaGraphInstantiate(&ge, g, 0);
  cudaGraphLaunch(ge, s);
  cudaEventRecord(e0, s);
  cudaGraphLaunch(ge, s);
  cudaEventRecord(e1, s);
  cudaEventSynchronize(e1);
  float ms = 0;
  cudaEventElapsedTime(&ms, e0, e1);
  cudaGraphExecDestroy(ge), cudaGraphDestroy(g);
  cudaEventDestroy(e0), cudaEventDestroy(e1);
  cudaStreamDestroy(s);
  return ms / iters;
}

/* The stem as engines now run it: the direct NCHW kernel reading the fp32 network input (fp16 out for fp16
 * engines, fp32 for fp32 engines), printed as an extra "nchw" row under the stem, with the old route's
 * input conversion time; the totals keep the old route so they compare with earlier tables. */
static int bench_stem_nchw(const bench_shape *b, int batch) {
  int pad = b->k / 2, oh = (b->h + 2 * pad - b->k) / b->s + 1, ow = (b->w + 2 * pad - b->k) / b->s + 1;
  double flops = 2.0 * batch * oh * ow * b->oc * (double)b->ic * b->k * b->k;
  size_t nx = (size_t)batch * b->ic * b->h * b->w, ny = (size_t)batch * oh * ow * b->oc;
  size_t nw = (size_t)b->oc * b->ic * b->k * b->k;
  float *w = rand_vec(nw, 0), *bias = rand_vec((size_t)b->oc, 0);
  void *dx, *dy, *dpad;
  cudaMalloc(&dx, nx * 4), cudaMalloc(&dy, ny * 4), cudaMalloc(&dpad, (size_t)batch * b->h * b->w * 8 * 2);
  cudaMemset(dx, 0x11, nx * 4);
  int iters = flops * 20 > 1e12 ? 20 : 100;
  float t[2];
  const char *kname = "";
  for (int p = 0; p < 2; p++) {
    kiln_cuda_conv_desc d;
    memset(&d, 0, sizeof d);
    d.batch = batch, d.in_c = b->ic, d.in_h = b->h, d.in_w = b->w, d.out_c = b->oc, d.out_h = oh, d.out_w = ow;
    d.kernel_h = d.kernel_w = b->k, d.stride_h = d.stride_w = b->s, d.pad_top = d.pad_left = pad;
    d.dilation_h = d.dilation_w = 1, d.group = 1;
    d.compute = d.out_dtype = p ? KILN_CUDA_F32 : KILN_CUDA_F16;
    d.has_bias = 1, d.epilogue.act = KILN_ACT_SILU;
    d.in_layout_nchw = 1, d.in_dtype = KILN_CUDA_F32;
    size_t psz = kiln_cuda_conv_packed_size(&d);
    void *blob = malloc(psz), *dblob;
    kiln_status st = kiln_cuda_conv_pack(&d, w, bias, blob);
    if (st) {
      fprintf(stderr, "%s\n", kiln_status_message(st));
      kiln_status_destroy(st);
      return 1;
    }
    cudaMalloc(&dblob, psz);
    cudaMemcpy(dblob, blob, psz, cudaMemcpyHostToDevice);
    t[p] = time_conv(&d, dblob, dx, dy, NULL, iters);
    if (!p) kname = kiln_cuda_conv_kernel_name(&d);
    /* KILN_BENCH_STEM_TILES="1 2 4": the fp16 stem again with that many row tiles per block each */
    const char *tiles = getenv("KILN_BENCH_STEM_TILES");
    for (const char *q = tiles; !p && q && *q;) {
      char *end;
      long tpb = strtol(q, &end, 10);
      if (end == q) break;
      q = end;
      cudaEvent_t e0, e1;
      cudaEventCreate(&e0), cudaEventCreate(&e1);
      kiln_status_destroy(kiln_cuda_conv_nchw_run_tiles(&d, dblob, dx, NULL, dy, NULL, (int)tpb));
      cudaEventRecord(e0, NULL);
      for (int i = 0; i < iters; i++) kiln_status_destroy(kiln_cuda_conv_nchw_run_tiles(&d, dblob, dx, NULL, dy, NULL, (int)tpb));
      cudaEventRecord(e1, NULL);
      cudaEventSynchronize(e1);
      float ms = 0;
      cudaEventElapsedTime(&ms, e0, e1);
      printf("#   stem nchw f16, %ld row tiles per block: %.1f us\n", tpb, ms * 1e3 / iters);
      cudaEventDestroy(e0), cudaEventDestroy(e1);
    }
    cudaFree(dblob);
    free(blob);
  }
  float tc = time_convert(dx, dpad, batch, b->ic, (int64_t)b->h * b->w, iters);
  cudaFree(dx), cudaFree(dy), cudaFree(dpad);
  free(w), free(bias);
  cudaError_t e = cudaDeviceSynchronize();
  if (e != cudaSuccess) {
    fprintf(stderr, "CUDA error: %s\n", cudaGetErrorString(e));
    return 1;
  }
  double tf16 = flops / (t[0] * 1e-3) / 1e12, tf32 = flops / (t[1] * 1e-3) / 1e12;
  printf("%-13s %3d %4d %4d %4d %2d %1d | %-38s %8.1f %7.1f %5.1f%% | %8.1f %7.1f\n", "b0 stem nchw", b->count, b->ic,
         b->h, b->oc, b->k, b->s, kname, t[0] * 1e3, tf16, 100 * tf16 / 990, t[1] * 1e3, tf32);
  printf("#   old route: input conversion (fp32 NCHW -> fp16 NHWC x8) %.1f us + the stem row above; "
         "the NCHW stem replaces both (fp32 input %.1f MB, fp16 output %.1f MB)\n",
         tc * 1e3, nx * 4 / 1e6, ny * 2 / 1e6);
  return 0;
}

/* KILN_BENCH_TACTICS=1: also time every fp16 candidate (d.tactic) per layer and print the best one, so
 * one GPU run shows how far the built-in heuristic is from the per-layer optimum. The stem runs as the
 * engine will feed it: NHWC with pixel stride 8, channels 3..7 zero (in_zero_padded). */
static int bench(int batch) {
  kiln_cuda_device_info info;
  kiln_status st = kiln_cuda_device_query(0, &info);
  if (st) {
    fprintf(stderr, "%s\n", kiln_status_message(st));
    return 1;
  }
  const char *tenv = getenv("KILN_BENCH_TACTICS"), *only = getenv("KILN_BENCH_LAYER");
  const char *force = getenv("KILN_BENCH_TACTIC"), *no32 = getenv("KILN_BENCH_NO_FP32");
  int sweep = tenv ? atoi(tenv) : 0;
  printf("\n# conv microbenchmark: YOLOv8n 640x640 conv shapes, batch %d, %s (sm_%d%d, %d SMs)\n", batch,
         info.name, info.cc_major, info.cc_minor, info.sm_count);
  printf("# fp16: mma.sync tensor-core path, fp16 out, SiLU+bias epilogue; vs ~990 dense fp16 TFLOP/s\n");
  printf("# fp32: exact FMA path; vs ~67 fp32 TFLOP/s. Times: CUDA events, mean of back-to-back runs.\n");
  printf("%-13s %3s %4s %4s %4s %2s %1s | %-38s %8s %7s %6s | %8s %7s", "layer", "cnt", "ic", "hw", "oc", "k", "s",
         "fp16 kernel (heuristic)", "us", "TFLOP/s", "%peak", "fp32 us", "TFLOP/s");
  if (sweep) printf(" | %-38s %8s", "best fp16 tactic", "us");
  printf("\n");
  double tot16 = 0, tot32 = 0, totbest = 0, flops_all = 0;
  for (size_t i = 0; i < sizeof yolo_convs / sizeof yolo_convs[0]; i++) {
    const bench_shape *b = &yolo_convs[i];
    if (only && strcmp(only, b->name) != 0) continue;
    int pad = b->k / 2, oh = (b->h + 2 * pad - b->k) / b->s + 1, ow = (b->w + 2 * pad - b->k) / b->s + 1;
    double flops = 2.0 * batch * oh * ow * b->oc * (double)b->ic * b->k * b->k;
    float t[2], tbest = 1e30f;
    const char *kname = "", *bestname = "";
    for (int p = 0; p < 2; p++) {
      kiln_cuda_conv_desc d;
      memset(&d, 0, sizeof d);
      d.batch = batch, d.in_c = b->ic, d.in_h = b->h, d.in_w = b->w, d.out_c = b->oc, d.out_h = oh, d.out_w = ow;
      d.kernel_h = d.kernel_w = b->k, d.stride_h = d.stride_w = b->s, d.pad_top = d.pad_left = pad;
      d.dilation_h = d.dilation_w = 1, d.group = 1;
      d.compute = d.out_dtype = p ? KILN_CUDA_F32 : KILN_CUDA_F16;
      d.has_bias = 1, d.epilogue.act = KILN_ACT_SILU;
      int ips = b->ic;
      if (!p && b->ic % 8) ips = (b->ic + 7) / 8 * 8, d.in_pixel_stride = ips, d.in_zero_padded = 1;
      size_t nw = (size_t)b->oc * b->ic * b->k * b->k, psz = kiln_cuda_conv_packed_size(&d);
      float *w = rand_vec(nw, 0), *bias = rand_vec((size_t)b->oc, 0);
      for (size_t j = 0; j < nw; j++) w[j] *= 0.05f;
      void *blob = malloc(psz), *dblob, *dx, *dy, *dws = NULL;
      kiln_status ps = kiln_cuda_conv_pack(&d, w, bias, blob);
      if (ps) {
        fprintf(stderr, "%s\n", kiln_status_message(ps));
        return 1;
      }
      size_t es = p ? 4 : 2;
      size_t nx = (size_t)batch * b->h * b->w * ips, ny = (size_t)batch * oh * ow * b->oc;
      /* workspace: the largest any candidate needs */
      size_t wsz = kiln_cuda_conv_workspace_size(&d);
      int nt = p ? 0 : kiln_cuda_conv_tactic_count(&d);
      for (int tt = 1; tt <= nt; tt++) {
        d.tactic = tt;
        size_t w2 = kiln_cuda_conv_workspace_size(&d);
        if (w2 > wsz) wsz = w2;
      }
      d.tactic = !p && force ? atoi(force) : 0;
      if (p && no32) {
        t[1] = 1e-9f;
        free(blob), free(w), free(bias);
        continue;
      }
      cudaMalloc(&dblob, psz), cudaMalloc(&dx, nx * es), cudaMalloc(&dy, ny * es);
      if (wsz) cudaMalloc(&dws, wsz);
      cudaMemcpy(dblob, blob, psz, cudaMemcpyHostToDevice);
      cudaMemset(dx, 0x11, nx * es); /* small finite values in both fp16 and fp32 */
      int iters = flops * 20 > 1e12 ? 20 : 100;
      t[p] = time_conv(&d, dblob, dx, dy, dws, iters);
      if (!p) kname = kiln_cuda_conv_kernel_name(&d);
      for (int tt = 1; sweep && tt <= nt; tt++) {
        d.tactic = tt;
        float tm = time_conv(&d, dblob, dx, dy, dws, iters);
        if (sweep > 1) {
          if (tt == 1) printf("T,%d,%s", batch, b->name);
          printf(",%.1f", tm * 1e3);
          if (tt == nt) printf("\n");
        }
        if (tm < tbest) tbest = tm, bestname = kiln_cuda_conv_kernel_name(&d);
      }
      cudaFree(dblob), cudaFree(dx), cudaFree(dy);
      if (dws) cudaFree(dws);
      free(blob), free(w), free(bias);
    }
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) {
      fprintf(stderr, "CUDA error: %s\n", cudaGetErrorString(e));
      return 1;
    }
    if (tbest > t[0]) tbest = t[0], bestname = kname;
    double tf16 = flops / (t[0] * 1e-3) / 1e12, tf32 = flops / (t[1] * 1e-3) / 1e12;
    printf("%-13s %3d %4d %4d %4d %2d %1d | %-38s %8.1f %7.1f %5.1f%% | %8.1f %7.1f", b->name, b->count, b->ic, b->h,
           b->oc, b->k, b->s, kname, t[0] * 1e3, tf16, 100 * tf16 / 990, t[1] * 1e3, tf32);
    if (sweep) printf(" | %-38s %8.1f", bestname, tbest * 1e3);
    printf("\n");
    tot16 += b->count * t[0], tot32 += b->count * t[1], totbest += b->count * tbest, flops_all += b->count * flops;
    if (b->ic <= 4 && bench_stem_nchw(b, batch)) return 1;
  }
  printf("# all %d-image yolov8n convs (weighted by count): fp16 %.3f ms (%.1f TFLOP/s), fp32 %.3f ms (%.1f TFLOP/s),"
         " %.2f GFLOP\n",
         batch, tot16, flops_all / (tot16 * 1e-3) / 1e12, tot32, flops_all / (tot32 * 1e-3) / 1e12, flops_all / 1e9);
  if (sweep)
    printf("# best fp16 tactic per layer, summed: %.3f ms (%.1f TFLOP/s)\n", totbest,
           flops_all / (totbest * 1e-3) / 1e12);
  return 0;
}

#define GPU_TESTS                                                                                    \
  cmocka_unit_test(test_conv_validate), cmocka_unit_test(test_conv_f16_out_f16),                     \
      cmocka_unit_test(test_conv_f16_out_f32), cmocka_unit_test(test_conv_f32_exact),                \
      cmocka_unit_test(test_conv_f16_tactics), cmocka_unit_test(test_conv_nchw),                      \
      cmocka_unit_test(test_layout), cmocka_unit_test(test_maxpool), cmocka_unit_test(test_maxpool_chain), cmocka_unit_test(test_resize),  \
      cmocka_unit_test(test_softmax), cmocka_unit_test(test_softmax_dot_nhwc), cmocka_unit_test(test_transpose), cmocka_unit_test(test_binary), \
      cmocka_unit_test(test_activation), cmocka_unit_test(test_concat_copy), cmocka_unit_test(test_nhwc_maps), \
      cmocka_unit_test(test_binary_rows), cmocka_unit_test(test_pointwise)

#else /* no CUDA at build time: one test that skips */

static void test_cuda_not_built(void **state) {
  (void)state;
  skip();
}
static int bench(int batch) {
  (void)batch;
  fprintf(stderr, "kiln was built without CUDA\n");
  return 1;
}
#define GPU_TESTS cmocka_unit_test(test_cuda_not_built)
#endif

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
    if (!have_gpu()) {
      fprintf(stderr, "no CUDA device\n");
      return 1;
    }
    int rc = 0;
    if (argc == 2) return bench(1);
    for (int i = 2; i < argc; i++) rc |= bench(atoi(argv[i]));
    return rc;
  }
  const struct CMUnitTest tests[] = {GPU_TESTS};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
