/* CUDA GEMM, reductions, strided copy / gather / pad and general Resize against naive host loops written
 * here (double precision where math is involved), on odd shapes. Device outputs are filled with 0xFF
 * bytes (NaN in fp32 and fp16) before each run, so an element a kernel forgets fails the comparison, and
 * bytes a strided output must leave alone are checked to stay poisoned.
 * Without a GPU or without CUDA at build time every test skips. */
#include "testlib.h"

#include "backend/cuda/cuda_device.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef KILN_HAVE_CUDA
#include <cuda_runtime.h>

#include "backend/cuda/copy_cuda.h"
#include "backend/cuda/gemm_cuda.h"
#include "backend/cuda/reduce_cuda.h"
#include "backend/cuda/resize_cuda.h"
#endif

#define REQUIRE_GPU()                                                                                \
  do {                                                                                               \
    if (kiln_cuda_device_count() <= 0) skip();                                                       \
  } while (0)

#ifdef KILN_HAVE_CUDA

/* ---- host helpers ------------------------------------------------------------------------------ */
static uint32_t seed = 0x2545F491u;
static uint32_t next_u32(void) { /* xorshift32 */
  seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;
  return seed;
}
static float urand(void) { return (float)(next_u32() >> 8) / 8388608.0f - 1.0f; } /* [-1, 1) */

/* fp32 -> fp16 bits, round to nearest even; fp16 bits -> fp32. */
static uint16_t to_half(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  uint32_t s = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(s | 0x7e00u);
  if (a >= 0x477ff000u) return (uint16_t)(s | 0x7c00u); /* rounds to inf */
  if (a < 0x38800000u) {                                 /* subnormal half: multiples of 2^-24 */
    float v;
    memcpy(&v, &a, 4);
    return (uint16_t)(s | (uint32_t)nearbyintf(v * 16777216.0f));
  }
  uint32_t h = ((a >> 13) - (112u << 10)), rest = a & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
  return (uint16_t)(s | h);
}
static float from_half(uint16_t h) {
  uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
  if (e == 0) {
    float v = (float)m / 16777216.0f;
    return s ? -v : v;
  }
  u = e == 31 ? (s | 0x7f800000u | (m << 13)) : (s | ((e + 112u) << 23) | (m << 13));
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static size_t dt_size(kiln_cuda_dtype dt) { return dt == KILN_CUDA_F16 ? 2 : 4; }

/* Random floats in [lo, hi), already representable in fp16 when half is set (so host and device see the
 * same inputs). */
static float *host_rand(size_t n, float lo, float hi, int half) {
  float *v = malloc(n * sizeof(float) + 4);
  for (size_t i = 0; i < n; i++) {
    float f = lo + (urand() + 1.0f) * 0.5f * (hi - lo);
    v[i] = half ? from_half(to_half(f)) : f;
  }
  return v;
}

/* Device buffer of n elements of dt, poisoned with 0xFF bytes. */
static void *dev_poisoned(size_t bytes) {
  void *d = NULL;
  assert_int_equal(cudaMalloc(&d, bytes ? bytes : 1), cudaSuccess);
  assert_int_equal(cudaMemset(d, 0xFF, bytes ? bytes : 1), cudaSuccess);
  return d;
}
static void *dev_floats(const float *h, size_t n, kiln_cuda_dtype dt) {
  void *d = dev_poisoned(n * dt_size(dt));
  void *tmp = malloc(n * dt_size(dt) + 1);
  for (size_t i = 0; i < n; i++) {
    if (dt == KILN_CUDA_F16) ((uint16_t *)tmp)[i] = to_half(h[i]);
    else ((float *)tmp)[i] = h[i];
  }
  assert_int_equal(cudaMemcpy(d, tmp, n * dt_size(dt), cudaMemcpyHostToDevice), cudaSuccess);
  free(tmp);
  return d;
}
/* Synchronizes (surfacing asynchronous faults), then downloads n elements as floats. */
static float *host_floats(const void *d, size_t n, kiln_cuda_dtype dt) {
  assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
  void *tmp = malloc(n * dt_size(dt) + 1);
  assert_int_equal(cudaMemcpy(tmp, d, n * dt_size(dt), cudaMemcpyDeviceToHost), cudaSuccess);
  float *f = malloc(n * sizeof(float) + 4);
  for (size_t i = 0; i < n; i++) f[i] = dt == KILN_CUDA_F16 ? from_half(((uint16_t *)tmp)[i]) : ((float *)tmp)[i];
  free(tmp);
  return f;
}
static void *dev_bytes(const void *h, size_t bytes) {
  void *d = dev_poisoned(bytes);
  assert_int_equal(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice), cudaSuccess);
  return d;
}
static void *host_bytes(const void *d, size_t bytes) {
  assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
  void *h = malloc(bytes + 1);
  assert_int_equal(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  return h;
}

static int n_fail;
/* |got - want| <= tol * (1 + |want|); NaN (poison) always fails. Reports the first few misses. */
static void expect_near(const char *what, size_t i, float got, double want, double tol) {
  if (fabs((double)got - want) <= tol * (1.0 + fabs(want))) return;
  if (isnan(want) && isnan(got)) return;
  if (isinf(want) && got == (float)want) return;
  if (n_fail++ < 8) print_error("%s: element %zu: got %.8g, want %.8g (tol %g)\n", what, i, got, want, tol);
}
static void end_case(void) {
  int f = n_fail;
  n_fail = 0;
  if (f) fail_msg("%d mismatching elements", f);
}

/* ---- GEMM -------------------------------------------------------------------------------------- */
typedef struct gemm_case {
  int m, n, k, ta, tb;
  int brank, bdims[2], a_bcast[2], b_bcast[2]; /* bcast: the operand has size 1 in that batch dim */
  int bias;                                    /* 0 none, 1 [N], 2 [M,1], 3 [M,N], 4 scalar */
  float alpha, beta;
  int ldy_pad; /* y rows are n + ldy_pad wide; the pad must stay poisoned */
} gemm_case;

static const gemm_case gemm_cases[] = {
    {1, 1, 1, 0, 0, 0, {0}, {0}, {0}, 0, 1.f, 0.f, 0},
    {37, 53, 29, 0, 0, 0, {0}, {0}, {0}, 1, 1.f, 1.f, 0},      /* Gemm + bias [N] */
    {70, 65, 130, 1, 0, 0, {0}, {0}, {0}, 2, 0.5f, 2.f, 3},    /* transA, bias [M,1], strided y */
    {33, 129, 17, 0, 1, 0, {0}, {0}, {0}, 3, 1.f, -1.f, 0},    /* transB (Linear weights), bias [M,N] */
    {65, 31, 47, 1, 1, 0, {0}, {0}, {0}, 4, 1.5f, 0.5f, 1},    /* both transposed, scalar bias */
    {17, 9, 40, 0, 0, 2, {2, 3}, {0, 1}, {1, 0}, 0, 1.f, 0.f, 0}, /* A [2,1,M,K] x B [1,3,K,N] */
    {5, 77, 64, 0, 1, 1, {7}, {0}, {0}, 1, 1.f, 1.f, 0},       /* attention-like batch, K = 64 */
    {130, 8, 3, 0, 0, 1, {3}, {0}, {1}, 0, 1.f, 0.f, 2},       /* B shared by the batch (MatMul with weights) */
};

/* Batch strides of an operand of `mat` elements per matrix, given which batch dims it broadcasts;
 * returns the operand's total element count. */
static size_t bstrides(const gemm_case *c, const int *bc, size_t mat, int64_t *st) {
  size_t s = mat;
  for (int d = c->brank - 1; d >= 0; d--) {
    st[d] = bc[d] ? 0 : (int64_t)s;
    if (!bc[d]) s *= (size_t)c->bdims[d];
  }
  return s;
}

static void gemm_run(const gemm_case *c, kiln_cuda_dtype compute, kiln_cuda_dtype out_dt) {
  int half = compute == KILN_CUDA_F16;
  kiln_cuda_gemm_desc d;
  memset(&d, 0, sizeof d);
  d.m = c->m, d.n = c->n, d.k = c->k, d.trans_a = c->ta, d.trans_b = c->tb;
  d.ldy = c->n + c->ldy_pad, d.batch_rank = c->brank, d.alpha = c->alpha, d.beta = c->beta;
  d.compute = compute, d.out_dtype = out_dt, d.c_dtype = compute;
  size_t batch = 1;
  for (int i = 0; i < c->brank; i++) d.batch_dims[i] = c->bdims[i], batch *= (size_t)c->bdims[i];
  size_t na = bstrides(c, c->a_bcast, (size_t)c->m * c->k, d.a_batch_stride);
  size_t nb = bstrides(c, c->b_bcast, (size_t)c->k * c->n, d.b_batch_stride);
  size_t nc = 0;
  switch (c->bias) {
  case 1: nc = (size_t)c->n, d.c_stride_m = 0, d.c_stride_n = 1; break;
  case 2: nc = (size_t)c->m, d.c_stride_m = 1, d.c_stride_n = 0; break;
  case 3: nc = (size_t)c->m * c->n, d.c_stride_m = c->n, d.c_stride_n = 1; break;
  case 4: nc = 1; break;
  }
  size_t ny = batch * c->m * (size_t)d.ldy;
  float *a = host_rand(na, -1, 1, half), *b = host_rand(nb, -1, 1, half), *bias = host_rand(nc + 1, -1, 1, half);
  void *da = dev_floats(a, na, compute), *db = dev_floats(b, nb, compute), *dc = dev_floats(bias, nc + 1, compute);
  void *dy = dev_poisoned(ny * dt_size(out_dt));
  ASSERT_OK(kiln_cuda_gemm(&d, da, db, c->bias ? dc : NULL, dy, NULL));
  float *y = host_floats(dy, ny, out_dt);
  double tol = half || out_dt == KILN_CUDA_F16 ? 1e-2 : (c->k <= 32 ? 1e-5 : 1e-4);
  char what[96];
  snprintf(what, sizeof what, "gemm %dx%dx%d ta%d tb%d %s->%s", c->m, c->n, c->k, c->ta, c->tb,
           half ? "f16" : "f32", out_dt == KILN_CUDA_F16 ? "f16" : "f32");
  for (size_t bz = 0; bz < batch; bz++) {
    size_t oa = 0, ob = 0, rem = bz;
    for (int dd = c->brank - 1; dd >= 0; dd--) {
      size_t i = rem % (size_t)c->bdims[dd];
      rem /= (size_t)c->bdims[dd];
      oa += i * (size_t)d.a_batch_stride[dd], ob += i * (size_t)d.b_batch_stride[dd];
    }
    for (int i = 0; i < c->m; i++)
      for (int j = 0; j < (int)d.ldy; j++) {
        size_t yi = (bz * c->m + i) * (size_t)d.ldy + j;
        if (j >= c->n) { /* the pad columns of a strided y */
          if (!isnan(y[yi])) expect_near(what, yi, y[yi], NAN, 0);
          continue;
        }
        double s = 0;
        for (int kk = 0; kk < c->k; kk++) {
          double av = c->ta ? a[oa + (size_t)kk * c->m + i] : a[oa + (size_t)i * c->k + kk];
          double bv = c->tb ? b[ob + (size_t)j * c->k + kk] : b[ob + (size_t)kk * c->n + j];
          s += av * bv;
        }
        double want = c->alpha * s;
        if (c->bias) want += c->beta * bias[(size_t)i * d.c_stride_m + (size_t)j * d.c_stride_n];
        expect_near(what, yi, y[yi], want, tol);
      }
  }
  end_case();
  free(a), free(b), free(bias), free(y);
  cudaFree(da), cudaFree(db), cudaFree(dc), cudaFree(dy);
}

static void test_gemm_f32(void **state) {
  (void)state;
  REQUIRE_GPU();
  for (size_t i = 0; i < sizeof gemm_cases / sizeof *gemm_cases; i++) gemm_run(&gemm_cases[i], KILN_CUDA_F32, KILN_CUDA_F32);
  gemm_run(&gemm_cases[2], KILN_CUDA_F32, KILN_CUDA_F16);
}

static void test_gemm_f16(void **state) {
  (void)state;
  REQUIRE_GPU();
  for (size_t i = 0; i < sizeof gemm_cases / sizeof *gemm_cases; i++) {
    gemm_run(&gemm_cases[i], KILN_CUDA_F16, KILN_CUDA_F16);
    gemm_run(&gemm_cases[i], KILN_CUDA_F16, KILN_CUDA_F32);
  }
}

static void test_gemm_errors(void **state) {
  (void)state;
  REQUIRE_GPU();
  kiln_cuda_gemm_desc d;
  memset(&d, 0, sizeof d);
  d.m = 4, d.n = 4, d.k = 4, d.compute = KILN_CUDA_F32, d.out_dtype = KILN_CUDA_F32, d.c_dtype = KILN_CUDA_F32;
  ASSERT_OK(kiln_cuda_gemm_validate(&d));
  d.lda = 3; /* shorter than a row of K = 4 */
  expect_error(kiln_cuda_gemm_validate(&d), KILN_ERR_INVALID_ARGUMENT, "leading dimension");
  d.lda = 0, d.batch_rank = 5;
  expect_error(kiln_cuda_gemm_validate(&d), KILN_ERR_INVALID_ARGUMENT, "batch rank");
}

/* ---- reductions -------------------------------------------------------------------------------- */
static double reduce_ref(kiln_cuda_reduce_op op, const float *x, int64_t len, int64_t inner) {
  double a;
  switch (op) {
  case KILN_CUDA_REDUCE_PROD: a = 1; break;
  case KILN_CUDA_REDUCE_MAX: a = -INFINITY; break;
  case KILN_CUDA_REDUCE_MIN: a = INFINITY; break;
  default: a = 0;
  }
  double mx = -INFINITY;
  for (int64_t j = 0; j < len; j++) mx = fmax(mx, x[j * inner]);
  for (int64_t j = 0; j < len; j++) {
    double v = x[j * inner];
    switch (op) {
    case KILN_CUDA_REDUCE_PROD: a *= v; break;
    case KILN_CUDA_REDUCE_MAX: a = fmax(a, v); break;
    case KILN_CUDA_REDUCE_MIN: a = fmin(a, v); break;
    case KILN_CUDA_REDUCE_L1: a += fabs(v); break;
    case KILN_CUDA_REDUCE_L2: case KILN_CUDA_REDUCE_SUM_SQUARE: a += v * v; break;
    case KILN_CUDA_REDUCE_LOG_SUM_EXP: a += exp(v - mx); break;
    default: a += v;
    }
  }
  switch (op) {
  case KILN_CUDA_REDUCE_MEAN: return a / (double)len;
  case KILN_CUDA_REDUCE_L2: return sqrt(a);
  case KILN_CUDA_REDUCE_LOG_SUM: return log(a);
  case KILN_CUDA_REDUCE_LOG_SUM_EXP: return mx + log(a);
  default: return a;
  }
}

typedef struct red_shape {
  int64_t outer, len, inner;
} red_shape;
static const red_shape red_shapes[] = {
    {3, 17, 1},    /* warp per row */
    {2, 3001, 1},  /* block per row */
    {5, 33, 7},    /* columns */
    {1, 1000, 3},  /* few long columns: the 8 thread rows split len */
    {7, 1, 5},     /* len 1 */
    {4, 40, 129},  /* several column blocks */
};

static void test_reduce(void **state) {
  (void)state;
  REQUIRE_GPU();
  static const char *names[] = {"sum", "mean", "max", "min", "prod", "l1", "l2", "sumsq", "logsum", "logsumexp"};
  for (int dti = 0; dti < 2; dti++) {
    kiln_cuda_dtype dt = dti ? KILN_CUDA_F16 : KILN_CUDA_F32;
    for (int op = KILN_CUDA_REDUCE_SUM; op <= KILN_CUDA_REDUCE_LOG_SUM_EXP; op++)
      for (size_t si = 0; si < sizeof red_shapes / sizeof *red_shapes; si++) {
        const red_shape *s = &red_shapes[si];
        size_t nx = (size_t)(s->outer * s->len * s->inner), ny = (size_t)(s->outer * s->inner);
        /* Prod over [0.9, 1.1) stays finite for 3000 terms; LogSum needs a positive sum; LogSumExp gets
         * large values so an unshifted exp would overflow. */
        float lo = -1, hi = 1;
        if (op == KILN_CUDA_REDUCE_PROD) lo = 0.9f, hi = 1.1f;
        if (op == KILN_CUDA_REDUCE_LOG_SUM) lo = 0.1f, hi = 2;
        if (op == KILN_CUDA_REDUCE_LOG_SUM_EXP && dt == KILN_CUDA_F32) lo = 80, hi = 100;
        float *x = host_rand(nx, lo, hi, dt == KILN_CUDA_F16);
        void *dx = dev_floats(x, nx, dt), *dy = dev_poisoned(ny * dt_size(dt));
        ASSERT_OK(kiln_cuda_reduce((kiln_cuda_reduce_op)op, dt, s->outer, s->len, s->inner, dx, dy, NULL));
        float *y = host_floats(dy, ny, dt);
        char what[80];
        snprintf(what, sizeof what, "reduce %s %s [%lld][%lld][%lld]", names[op], dti ? "f16" : "f32",
                 (long long)s->outer, (long long)s->len, (long long)s->inner);
        /* fp32 sums of up to 3000 terms accumulate in fp32: 1e-4 relative; Prod's rounding compounds. */
        double tol = dt == KILN_CUDA_F16 ? 1e-2 : (op == KILN_CUDA_REDUCE_PROD ? 1e-3 : 1e-4);
        for (int64_t o = 0; o < s->outer; o++)
          for (int64_t i = 0; i < s->inner; i++)
            expect_near(what, (size_t)(o * s->inner + i), y[o * s->inner + i],
                        reduce_ref((kiln_cuda_reduce_op)op, x + o * s->len * s->inner + i, s->len, s->inner), tol);
        end_case();
        free(x), free(y);
        cudaFree(dx), cudaFree(dy);
      }
  }
}

static void test_argreduce(void **state) {
  (void)state;
  REQUIRE_GPU();
  for (int dti = 0; dti < 2; dti++)
    for (int mode = 0; mode < 4; mode++) /* bit 0: argmin, bit 1: select_last_index */
      for (size_t si = 0; si < sizeof red_shapes / sizeof *red_shapes; si++) {
        kiln_cuda_dtype dt = dti ? KILN_CUDA_F16 : KILN_CUDA_F32;
        const red_shape *s = &red_shapes[si];
        size_t nx = (size_t)(s->outer * s->len * s->inner), ny = (size_t)(s->outer * s->inner);
        float *x = malloc(nx * sizeof(float) + 4);
        for (size_t i = 0; i < nx; i++) x[i] = (float)(int)(urand() * 4.0f); /* few levels: many ties */
        void *dx = dev_floats(x, nx, dt), *dy = dev_poisoned(ny * 8);
        ASSERT_OK(kiln_cuda_argreduce(mode & 1, mode >> 1, dt, s->outer, s->len, s->inner, dx, dy, NULL));
        int64_t *y = host_bytes(dy, ny * 8);
        for (int64_t o = 0; o < s->outer; o++)
          for (int64_t i = 0; i < s->inner; i++) {
            const float *col = x + o * s->len * s->inner + i;
            int64_t best = 0;
            for (int64_t j = 1; j < s->len; j++) {
              float v = col[j * s->inner], bv = col[best * s->inner];
              int better = (mode & 1) ? v < bv : v > bv;
              if (better || (v == bv && (mode & 2))) best = j;
            }
            if (y[o * s->inner + i] != best) {
              print_error("argreduce mode %d dt %d shape %zu: [%lld][%lld] got %lld want %lld\n", mode, dti, si,
                          (long long)o, (long long)i, (long long)y[o * s->inner + i], (long long)best);
              fail();
            }
          }
        free(x), free(y);
        cudaFree(dx), cudaFree(dy);
      }
}

/* ---- strided copy, gather, pad ----------------------------------------------------------------- */
static void fill_bytes(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(next_u32() >> 24);
}

/* ONNX Slice of x [3,5,7,9]: dim 0 [1:3], dim 1 [4:-1:-2] (4, 2, 0), dim 2 [0:7:3] (0, 3, 6),
 * dim 3 [8::-1] (reversed), checked for each element size against direct indexing. */
static void test_slice(void **state) {
  (void)state;
  REQUIRE_GPU();
  const int64_t start[4] = {1, 4, 0, 8}, step[4] = {1, -2, 3, -1}, yd[4] = {2, 3, 3, 9};
  int64_t dense[4] = {5 * 7 * 9, 7 * 9, 9, 1}, st[4], off = 0;
  for (int d = 0; d < 4; d++) st[d] = step[d] * dense[d], off += start[d] * dense[d];
  static const size_t sizes[] = {1, 2, 4, 8};
  for (int si = 0; si < 4; si++) {
    size_t es = sizes[si], nx = 3 * 5 * 7 * 9, ny = 2 * 3 * 3 * 9;
    uint8_t *x = malloc(nx * es);
    fill_bytes(x, nx * es);
    void *dx = dev_bytes(x, nx * es), *dy = dev_poisoned(ny * es);
    ASSERT_OK(kiln_cuda_strided_copy(es, 4, yd, dx, off, st, dy, NULL, NULL));
    uint8_t *y = host_bytes(dy, ny * es);
    size_t o = 0;
    for (int64_t a = 0; a < yd[0]; a++)
      for (int64_t b = 0; b < yd[1]; b++)
        for (int64_t c = 0; c < yd[2]; c++)
          for (int64_t e = 0; e < yd[3]; e++, o++) {
            int64_t src = (start[0] + a * step[0]) * dense[0] + (start[1] + b * step[1]) * dense[1] +
                          (start[2] + c * step[2]) * dense[2] + (start[3] + e * step[3]) * dense[3];
            if (memcmp(y + o * es, x + src * es, es)) {
              print_error("slice es %zu: element %zu differs\n", es, o);
              fail();
            }
          }
    free(x), free(y);
    cudaFree(dx), cudaFree(dy);
  }
}

/* Expand [3,1,5] -> [2,3,4,5] (stride 0), written into a strided dst (every other row of 5 floats of a
 * [2,3,4,10] buffer; the gaps must stay poisoned), and Tile [2,3] by (3, 2) as rank-4 copy
 * {3, 2, 2, 3} with stride 0 on the repeat dims. */
static void test_expand_tile(void **state) {
  (void)state;
  REQUIRE_GPU();
  {
    float x[15];
    for (int i = 0; i < 15; i++) x[i] = (float)i;
    const int64_t dims[4] = {2, 3, 4, 5}, ss[4] = {0, 5, 0, 1}, ds[4] = {120, 40, 10, 1};
    void *dx = dev_bytes(x, sizeof x), *dy = dev_poisoned(240 * 4);
    ASSERT_OK(kiln_cuda_strided_copy(4, 4, dims, dx, 0, ss, dy, ds, NULL));
    float *y = host_bytes(dy, 240 * 4);
    for (int a = 0; a < 2; a++)
      for (int b = 0; b < 3; b++)
        for (int c = 0; c < 4; c++)
          for (int e = 0; e < 10; e++) {
            size_t o = (size_t)a * 120 + b * 40 + c * 10 + e;
            if (e < 5) expect_near("expand", o, y[o], x[b * 5 + e], 0);
            else if (!isnan(y[o])) expect_near("expand gap", o, y[o], NAN, 0);
          }
    end_case();
    free(y);
    cudaFree(dx), cudaFree(dy);
  }
  {
    uint16_t x[6] = {1, 2, 3, 4, 5, 6}; /* [2,3] */
    const int64_t dims[4] = {3, 2, 2, 3}, ss[4] = {0, 3, 0, 1};
    void *dx = dev_bytes(x, sizeof x), *dy = dev_poisoned(36 * 2);
    ASSERT_OK(kiln_cuda_strided_copy(2, 4, dims, dx, 0, ss, dy, NULL, NULL));
    uint16_t *y = host_bytes(dy, 36 * 2);
    for (int r = 0; r < 6; r++) /* output [6, 6] */
      for (int c = 0; c < 6; c++)
        if (y[r * 6 + c] != x[(r % 2) * 3 + c % 3]) {
          print_error("tile: [%d][%d] = %u, want %u\n", r, c, y[r * 6 + c], x[(r % 2) * 3 + c % 3]);
          fail();
        }
    free(y);
    cudaFree(dx), cudaFree(dy);
  }
}

static void test_gather(void **state) {
  (void)state;
  REQUIRE_GPU();
  const int64_t outer = 3, axis = 10, inner = 5, ni = 7;
  const int64_t idx[7] = {9, -1, 0, 3, 3, -10, 10}; /* the last is out of range: zeros */
  float x[150];
  for (int i = 0; i < 150; i++) x[i] = (float)i + 0.5f;
  void *dx = dev_bytes(x, sizeof x), *di = dev_bytes(idx, sizeof idx), *dy = dev_poisoned(outer * ni * inner * 4);
  ASSERT_OK(kiln_cuda_gather(4, outer, axis, inner, dx, di, ni, dy, NULL));
  float *y = host_bytes(dy, outer * ni * inner * 4);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < ni; j++)
      for (int64_t i = 0; i < inner; i++) {
        int64_t k = idx[j] < 0 ? idx[j] + axis : idx[j];
        double want = k < axis ? x[(o * axis + k) * inner + i] : 0.0;
        expect_near("gather", (size_t)((o * ni + j) * inner + i), y[(o * ni + j) * inner + i], want, 0);
      }
  end_case();
  free(y);
  cudaFree(dx), cudaFree(di), cudaFree(dy);
}

/* Reflect index the slow way: bounce off the edges one step at a time. */
static int64_t reflect_slow(int64_t k, int64_t n) {
  if (n == 1) return 0;
  while (k < 0 || k >= n) k = k < 0 ? -k : 2 * (n - 1) - k;
  return k;
}

static void test_pad(void **state) {
  (void)state;
  REQUIRE_GPU();
  const int64_t in[4] = {2, 3, 5, 4}, pb[4] = {0, 1, 2, 3}, pe[4] = {1, 0, -1, 2};
  int64_t out[4];
  size_t nx = 2 * 3 * 5 * 4, ny = 1;
  for (int d = 0; d < 4; d++) out[d] = in[d] + pb[d] + pe[d], ny *= (size_t)out[d];
  float *x = host_rand(nx, -1, 1, 0), value = 7.5f;
  void *dx = dev_bytes(x, nx * 4);
  for (int mode = 0; mode < 3; mode++) {
    void *dy = dev_poisoned(ny * 4);
    ASSERT_OK(kiln_cuda_pad(4, (kiln_cuda_pad_mode)mode, 4, in, pb, pe, &value, dx, dy, NULL));
    float *y = host_bytes(dy, ny * 4);
    size_t o = 0;
    for (int64_t a = 0; a < out[0]; a++)
      for (int64_t b = 0; b < out[1]; b++)
        for (int64_t c = 0; c < out[2]; c++)
          for (int64_t e = 0; e < out[3]; e++, o++) {
            int64_t k[4] = {a - pb[0], b - pb[1], c - pb[2], e - pb[3]};
            int inside = 1;
            for (int d = 0; d < 4; d++) {
              if (k[d] >= 0 && k[d] < in[d]) continue;
              inside = 0;
              if (mode == KILN_CUDA_PAD_EDGE) k[d] = k[d] < 0 ? 0 : in[d] - 1;
              if (mode == KILN_CUDA_PAD_REFLECT) k[d] = reflect_slow(k[d], in[d]);
            }
            double want = (!inside && mode == KILN_CUDA_PAD_CONSTANT)
                              ? value
                              : x[((k[0] * in[1] + k[1]) * in[2] + k[2]) * in[3] + k[3]];
            expect_near(mode == 0 ? "pad constant" : mode == 1 ? "pad edge" : "pad reflect", o, y[o], want, 0);
          }
    end_case();
    free(y);
    cudaFree(dy);
  }
  free(x);
  cudaFree(dx);
}

/* ---- Resize ------------------------------------------------------------------------------------ */
/* The ONNX spec's coordinate transforms, written out per mode in fp32 (no FMA contraction in strict C11
 * on x86-64), so nearest's rounding ties come out as on the device. */
static float spec_coord(kiln_cuda_resize_coord m, int xo, int in, int out, float scale) {
  float x = (float)xo;
  switch (m) {
  case KILN_CUDA_COORD_HALF_PIXEL: return (x + 0.5f) / scale - 0.5f;
  case KILN_CUDA_COORD_HALF_PIXEL_SYMMETRIC: {
    float adjustment = (float)out / (scale * (float)in);
    float center = (float)in * 0.5f;
    float offset = center * (1.f - adjustment);
    return offset + (x + 0.5f) / scale - 0.5f;
  }
  case KILN_CUDA_COORD_PYTORCH_HALF_PIXEL: return out > 1 ? (x + 0.5f) / scale - 0.5f : 0.f;
  case KILN_CUDA_COORD_ALIGN_CORNERS: return out == 1 ? 0.f : x * (float)(in - 1) / (float)(out - 1);
  case KILN_CUDA_COORD_ASYMMETRIC: return x / scale;
  default: return (x + 0.5f) / scale; /* tf_half_pixel_for_nn */
  }
}
static int spec_nearest(kiln_cuda_resize_nearest m, float x, int in) {
  double r;
  switch (m) {
  case KILN_CUDA_NEAREST_ROUND_PREFER_CEIL: r = (x - floorf(x) == 0.5f) ? ceilf(x) : roundf(x); break;
  case KILN_CUDA_NEAREST_FLOOR: r = floorf(x); break;
  case KILN_CUDA_NEAREST_CEIL: r = ceilf(x); break;
  default: r = (x - floorf(x) == 0.5f) ? floorf(x) : roundf(x); break;
  }
  return r < 0 ? 0 : (r > in - 1 ? in - 1 : (int)r);
}
/* Linear along one axis: value at float coordinate x of a row given by get(i), the ONNX reference's edge
 * padding (indices clamped). */
static void spec_linear(float x, int in, int *i0, int *i1, double *w1) {
  double f = floor(x);
  *w1 = (double)x - f;
  int a = (int)f, b = a + 1;
  *i0 = a < 0 ? 0 : (a > in - 1 ? in - 1 : a);
  *i1 = b < 0 ? 0 : (b > in - 1 ? in - 1 : b);
}

typedef struct rs_case {
  int n, c, ih, iw, oh, ow;
  float sh, sw; /* 0: sizes given (scale = out / in) */
} rs_case;
static const rs_case rs_cases[] = {
    {2, 3, 7, 5, 11, 13, 0, 0},       /* non-integer upscale by sizes */
    {1, 5, 9, 8, 4, 3, 0.45f, 0.4f},  /* downscale by scales (out = floor(in * scale)) */
    {1, 2, 6, 4, 12, 8, 2, 2},        /* YOLO's x2 */
    {2, 4, 1, 6, 1, 15, 1, 2.5f},     /* 1-high: align_corners / pytorch_half_pixel degenerate rows */
};

static void resize_case(const rs_case *c, kiln_cuda_dtype dt, int nhwc, kiln_cuda_resize_mode mode,
                        kiln_cuda_resize_coord coord, kiln_cuda_resize_nearest nm) {
  int ips = nhwc ? c->c + 3 : c->c, ops = nhwc ? c->c + 2 : c->c; /* NHWC: channel slices of wider buffers */
  size_t nx = (size_t)c->n * c->ih * c->iw * ips, ny = (size_t)c->n * c->oh * c->ow * ops;
  float *x = host_rand(nx, -1, 1, dt == KILN_CUDA_F16);
  void *dx = dev_floats(x, nx, dt), *dy = dev_poisoned(ny * dt_size(dt));
  kiln_cuda_resize_desc d = {.batch = c->n, .channels = c->c, .in_h = c->ih, .in_w = c->iw, .out_h = c->oh,
                             .out_w = c->ow, .scale_h = c->sh, .scale_w = c->sw, .nhwc = nhwc,
                             .in_pixel_stride = nhwc ? ips : 0, .out_pixel_stride = nhwc ? ops : 0, .mode = mode,
                             .coord = coord, .nearest = nm, .dtype = dt};
  ASSERT_OK(kiln_cuda_resize(&d, dx, dy, NULL));
  float *y = host_floats(dy, ny, dt);
  float sh = c->sh > 0 ? c->sh : (float)c->oh / (float)c->ih, sw = c->sw > 0 ? c->sw : (float)c->ow / (float)c->iw;
  char what[96];
  snprintf(what, sizeof what, "resize %dx%d->%dx%d %s %s mode %d coord %d nearest %d", c->ih, c->iw, c->oh, c->ow,
           nhwc ? "nhwc" : "nchw", dt == KILN_CUDA_F16 ? "f16" : "f32", mode, coord, nm);
  double tol = mode == KILN_CUDA_RESIZE_NEAREST ? 0 : (dt == KILN_CUDA_F16 ? 1e-2 : 1e-5);
  for (int b = 0; b < c->n; b++)
    for (int ch = 0; ch < (nhwc ? ops : c->c); ch++)
      for (int oy = 0; oy < c->oh; oy++)
        for (int ox = 0; ox < c->ow; ox++) {
          size_t yi = nhwc ? (((size_t)b * c->oh + oy) * c->ow + ox) * ops + ch
                           : (((size_t)b * c->c + ch) * c->oh + oy) * c->ow + ox;
          if (ch >= c->c) { /* channels of the wider NHWC buffer that are not ours */
            if (!isnan(y[yi])) expect_near(what, yi, y[yi], NAN, 0);
            continue;
          }
#define XAT(r, q)                                                                                    \
  (nhwc ? x[(((size_t)b * c->ih + (r)) * c->iw + (q)) * ips + ch] : x[(((size_t)b * c->c + ch) * c->ih + (r)) * c->iw + (q)])
          float fy = spec_coord(coord, oy, c->ih, c->oh, sh), fx = spec_coord(coord, ox, c->iw, c->ow, sw);
          double want;
          if (mode == KILN_CUDA_RESIZE_NEAREST) {
            want = XAT(spec_nearest(nm, fy, c->ih), spec_nearest(nm, fx, c->iw));
          } else {
            int y0, y1, x0, x1;
            double wy, wx;
            spec_linear(fy, c->ih, &y0, &y1, &wy);
            spec_linear(fx, c->iw, &x0, &x1, &wx);
            want = (1 - wy) * ((1 - wx) * XAT(y0, x0) + wx * XAT(y0, x1)) + wy * ((1 - wx) * XAT(y1, x0) + wx * XAT(y1, x1));
          }
#undef XAT
          expect_near(what, yi, y[yi], want, tol);
        }
  end_case();
  free(x), free(y);
  cudaFree(dx), cudaFree(dy);
}

static void test_resize_nearest(void **state) {
  (void)state;
  REQUIRE_GPU();
  for (size_t ci = 0; ci < sizeof rs_cases / sizeof *rs_cases; ci++)
    for (int coord = 0; coord <= KILN_CUDA_COORD_TF_HALF_PIXEL_FOR_NN; coord++)
      for (int nm = 0; nm <= KILN_CUDA_NEAREST_CEIL; nm++)
        for (int nhwc = 0; nhwc < 2; nhwc++)
          resize_case(&rs_cases[ci], nhwc ? KILN_CUDA_F16 : KILN_CUDA_F32, nhwc, KILN_CUDA_RESIZE_NEAREST,
                      (kiln_cuda_resize_coord)coord, (kiln_cuda_resize_nearest)nm);
}

static void test_resize_linear(void **state) {
  (void)state;
  REQUIRE_GPU();
  for (size_t ci = 0; ci < sizeof rs_cases / sizeof *rs_cases; ci++)
    for (int coord = 0; coord <= KILN_CUDA_COORD_TF_HALF_PIXEL_FOR_NN; coord++)
      for (int dti = 0; dti < 2; dti++)
        for (int nhwc = 0; nhwc < 2; nhwc++)
          resize_case(&rs_cases[ci], dti ? KILN_CUDA_F16 : KILN_CUDA_F32, nhwc, KILN_CUDA_RESIZE_LINEAR,
                      (kiln_cuda_resize_coord)coord, KILN_CUDA_NEAREST_ROUND_PREFER_FLOOR);
}

/* Known values, independent of the formulas above: [0, 1] upsampled to 4 bilinear with half_pixel is
 * PyTorch's align_corners=False result [0, .25, .75, 1]; with align_corners [0, 1/3, 2/3, 1]; nearest
 * asymmetric floor of [a, b, c] by 2 is [a, a, b, b, c, c]; half_pixel round_prefer_floor by 1.5 of
 * [a, b] is [a, a, b] (coordinates -1/6, 0.5 (a tie: floor), 7/6). */
static void test_resize_known(void **state) {
  (void)state;
  REQUIRE_GPU();
  const float x2[2] = {0, 1}, x3[3] = {10, 20, 30};
  struct {
    const float *x;
    int iw, ow;
    kiln_cuda_resize_mode mode;
    kiln_cuda_resize_coord coord;
    kiln_cuda_resize_nearest nm;
    float want[6];
  } k[] = {
      {x2, 2, 4, KILN_CUDA_RESIZE_LINEAR, KILN_CUDA_COORD_HALF_PIXEL, 0, {0, 0.25f, 0.75f, 1}},
      {x2, 2, 4, KILN_CUDA_RESIZE_LINEAR, KILN_CUDA_COORD_ALIGN_CORNERS, 0, {0, 1 / 3.f, 2 / 3.f, 1}},
      {x3, 3, 6, KILN_CUDA_RESIZE_NEAREST, KILN_CUDA_COORD_ASYMMETRIC, KILN_CUDA_NEAREST_FLOOR, {10, 10, 20, 20, 30, 30}},
      {x2, 2, 3, KILN_CUDA_RESIZE_NEAREST, KILN_CUDA_COORD_HALF_PIXEL, KILN_CUDA_NEAREST_ROUND_PREFER_FLOOR, {0, 0, 1}},
      {x2, 2, 3, KILN_CUDA_RESIZE_NEAREST, KILN_CUDA_COORD_HALF_PIXEL, KILN_CUDA_NEAREST_ROUND_PREFER_CEIL, {0, 1, 1}},
  };
  for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
    void *dx = dev_floats(k[i].x, (size_t)k[i].iw, KILN_CUDA_F32), *dy = dev_poisoned((size_t)k[i].ow * 4);
    kiln_cuda_resize_desc d = {.batch = 1, .channels = 1, .in_h = 1, .in_w = k[i].iw, .out_h = 1, .out_w = k[i].ow,
                               .mode = k[i].mode, .coord = k[i].coord, .nearest = k[i].nm, .dtype = KILN_CUDA_F32};
    ASSERT_OK(kiln_cuda_resize(&d, dx, dy, NULL));
    float *y = host_floats(dy, (size_t)k[i].ow, KILN_CUDA_F32);
    for (int j = 0; j < k[i].ow; j++) expect_near("resize known values", i * 10 + (size_t)j, y[j], k[i].want[j], 1e-6);
    end_case();
    free(y);
    cudaFree(dx), cudaFree(dy);
  }
}

#define GPU_TESTS                                                                                    \
  cmocka_unit_test(test_gemm_f32), cmocka_unit_test(test_gemm_f16), cmocka_unit_test(test_gemm_errors), \
      cmocka_unit_test(test_reduce), cmocka_unit_test(test_argreduce), cmocka_unit_test(test_slice),    \
      cmocka_unit_test(test_expand_tile), cmocka_unit_test(test_gather), cmocka_unit_test(test_pad),    \
      cmocka_unit_test(test_resize_nearest), cmocka_unit_test(test_resize_linear),                     \
      cmocka_unit_test(test_resize_known)

#else /* built without CUDA: one test that skips */
static void test_cuda_not_built(void **state) {
  (void)state;
  skip();
}
#define GPU_TESTS cmocka_unit_test(test_cuda_not_built)
#endif

int main(void) {
  const struct CMUnitTest tests[] = {GPU_TESTS};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
