/* Fast CPU kernels (src/backend/cpu/fast_*): each kernel against the reference kernel on a one-node
 * graph (binary ops, pools, Resize, Softmax) or a naive loop (activations, copy, transpose, GEMM), on
 * odd shapes, broadcasting and strided operands, for every ISA this machine has (forced through the
 * `isa` field), with outputs poisoned with NaN before each run. KILN_FAST_BENCH=1 also prints the
 * speed of the YOLOv8n shapes in GB/s next to memcpy's. */
#include "testlib.h"

#include "backend/cpu/fast_copy.h"
#include "backend/cpu/fast_eltwise.h"
#include "backend/cpu/fast_gemm.h"
#include "backend/cpu/fast_pool.h"
#include "backend/cpu/fast_resize.h"
#include "backend/cpu/fast_softmax.h"
#include "backend/cpu/fast_transpose.h"
#include "backend/cpu/reference/reference.h"
#include "core/dtype.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static kiln_threadpool *g_tp;
static kiln_isa g_isas[3];
static int g_n_isas;

static uint32_t rng_state = 777;
static float frand(void) { /* uniform [-2, 2) */
  rng_state = rng_state * 1664525u + 1013904223u;
  return (float)((rng_state >> 8) & 0xffff) / 16384.0f - 2.0f;
}
static int irand(int n) {
  rng_state = rng_state * 1664525u + 1013904223u;
  return (int)((rng_state >> 8) % (uint32_t)n);
}
static float *rand_buf(int64_t n) {
  float *b = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) b[i] = frand();
  return b;
}
static float *nan_buf(int64_t n) {
  float *b = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
  for (int64_t i = 0; i < n; i++) b[i] = NAN;
  return b;
}
static void poison(float *b, int64_t n) {
  for (int64_t i = 0; i < n; i++) b[i] = NAN;
}
static int64_t prod(const int64_t *d, int r) {
  int64_t p = 1;
  for (int i = 0; i < r; i++) p *= d[i];
  return p;
}

/* |got - want| <= atol + rtol |want| everywhere (NaN fails). */
static void check_close(const char *what, const float *got, const float *want, int64_t n, double rtol, double atol) {
  for (int64_t i = 0; i < n; i++) {
    double g = got[i], w = want[i];
    if (g != w && !(fabs(g - w) <= atol + rtol * fabs(w))) { /* == first: inf == inf */
      print_error("%s: element %lld: got %.9g, want %.9g\n", what, (long long)i, g, w);
      fail();
    }
  }
}

/* ---- one-node graphs for the reference kernels ------------------------------------------------- */

typedef struct tgraph {
  kiln_graph *g;
  int32_t node;
} tgraph;

typedef struct tin {
  kiln_dtype dt;
  int32_t rank; /* -2: omitted input */
  int64_t dims[KILN_MAX_RANK];
  const void *data; /* constant contents, or NULL (then `feed` is passed to the kernel) */
  const void *feed;
} tin;

static tgraph make_node(int64_t opset, const char *op, int n_in, const tin *ins) {
  tgraph t;
  ASSERT_OK(kiln_graph_create(&t.g));
  t.g->opset = opset;
  int32_t in[8], out[1];
  for (int i = 0; i < n_in; i++) {
    char name[16];
    snprintf(name, sizeof name, "in%d", i);
    if (ins[i].rank < -1) {
      in[i] = -1;
      continue;
    }
    in[i] = test_add_tensor(t.g, name, ins[i].dt, ins[i].rank < 0 ? 0 : ins[i].rank, ins[i].dims);
    if (ins[i].data) {
      kiln_shape s = t.g->values[in[i]].shape;
      ASSERT_OK(kiln_value_set_constant(t.g, in[i], ins[i].dt, &s, ins[i].data));
    }
  }
  ASSERT_OK(kiln_graph_add_value(t.g, "out0", &out[0]));
  ASSERT_OK(kiln_graph_add_node(t.g, "n", "", op, in, n_in, out, 1, &t.node));
  return t;
}

static kiln_node *node_of(tgraph *t) { return &t->g->nodes[t->node]; }

/* Parse, infer and run the reference kernel; returns the (malloc'd) output and its dims. */
static float *run_ref(tgraph *t, const tin *ins, int32_t *rank, int64_t *dims) {
  kiln_node *n = node_of(t);
  ASSERT_OK(kiln_node_parse(t->g, n));
  ASSERT_OK(kiln_node_infer(t->g, n));
  kiln_tensor in[8], out;
  for (int i = 0; i < n->n_inputs; i++) {
    memset(&in[i], 0, sizeof in[i]);
    if (n->inputs[i] < 0) continue;
    kiln_value_as_tensor(&t->g->values[n->inputs[i]], &in[i]);
    if (!in[i].data) in[i].data = (void *)ins[i].feed;
  }
  kiln_value_as_tensor(&t->g->values[n->outputs[0]], &out);
  int64_t cnt = kiln_tensor_numel(&out);
  out.data = nan_buf(cnt);
  ASSERT_OK(kiln_reference_run(t->g, n, in, &out));
  *rank = out.rank;
  memcpy(dims, out.dims, sizeof(int64_t) * (size_t)out.rank);
  return out.data;
}

/* ---- binary ops with broadcasting vs the reference ---------------------------------------------- */

typedef struct bcase {
  int32_t ra, rb;
  int64_t da[6], db[6];
} bcase;

static void test_binary_ref(void **state) {
  (void)state;
  static const char *ops[] = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"};
  static const kiln_fast_binop fops[] = {KILN_FAST_ADD, KILN_FAST_SUB, KILN_FAST_MUL, KILN_FAST_DIV,
                                         KILN_FAST_MAX, KILN_FAST_MIN, KILN_FAST_POW};
  static const bcase cases[] = {
      {4, 4, {2, 3, 17, 19}, {2, 3, 17, 19}},     /* same shape */
      {4, 0, {2, 3, 17, 19}, {0}},                /* scalar */
      {4, 3, {2, 5, 7, 9}, {5, 1, 1}},            /* per-channel vector */
      {3, 4, {5, 1, 1}, {2, 5, 7, 9}},            /* per-channel on the left */
      {4, 3, {2, 1, 17, 1}, {3, 1, 19}},          /* both broadcast (outer product) */
      {3, 1, {1, 2, 8400}, {8400}},               /* YOLO anchors row */
      {5, 5, {2, 1, 3, 1, 5}, {1, 4, 3, 6, 1}},   /* alternating */
      {6, 2, {2, 3, 2, 3, 2, 13}, {1, 13}},       /* rank 6 */
      {4, 3, {1, 32, 80, 80}, {32, 1, 1}},        /* big: parallel path */
      {4, 4, {1, 16, 120, 120}, {1, 16, 120, 120}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int o = 0; o < 7; o++) {
      const bcase *bc = &cases[c];
      int64_t na = prod(bc->da, bc->ra), nb = prod(bc->db, bc->rb);
      float *a = rand_buf(na), *b = rand_buf(nb);
      if (fops[o] == KILN_FAST_POW) /* positive bases; exponents: tensor, or the special scalars */
        for (int64_t i = 0; i < na; i++) a[i] = fabsf(a[i]) + 0.1f;
      if (fops[o] == KILN_FAST_POW && nb == 1) b[0] = (float[]){2.0f, 0.5f, 1.7f}[c % 3];
      if (fops[o] == KILN_FAST_DIV)
        for (int64_t i = 0; i < nb; i++) b[i] = b[i] < 0 ? b[i] - 0.25f : b[i] + 0.25f;
      tin in[2] = {{KILN_DTYPE_FLOAT32, bc->ra, {0}, NULL, a}, {KILN_DTYPE_FLOAT32, bc->rb, {0}, NULL, b}};
      memcpy(in[0].dims, bc->da, sizeof bc->da);
      memcpy(in[1].dims, bc->db, sizeof bc->db);
      tgraph t = make_node(14, ops[o], 2, in);
      int32_t r;
      int64_t od[KILN_MAX_RANK];
      float *want = run_ref(&t, in, &r, od);
      int64_t n = prod(od, r);
      float *y = nan_buf(n);
      for (int k = 0; k < g_n_isas; k++)
        for (int act = 0; act < 2; act++) { /* plain, and with a fused SiLU */
          kiln_fast_binary_desc d = {.op = fops[o], .isa = g_isas[k], .rank = r, .a_rank = bc->ra, .b_rank = bc->rb,
                                     .act = act ? KILN_ACT_SILU : KILN_ACT_NONE};
          memcpy(d.dims, od, sizeof(int64_t) * (size_t)r);
          memcpy(d.a_dims, bc->da, sizeof bc->da);
          memcpy(d.b_dims, bc->db, sizeof bc->db);
          kiln_fast_binary_plan p;
          ASSERT_OK(kiln_fast_binary_prepare(&d, &p));
          poison(y, n);
          kiln_fast_binary_run(&p, a, b, y, g_tp);
          float *w = want;
          float *ws = NULL;
          if (act) {
            ws = malloc((size_t)n * 4);
            for (int64_t i = 0; i < n; i++) ws[i] = (float)(want[i] / (1 + exp(-(double)want[i])));
            w = ws;
          }
          char what[96];
          snprintf(what, sizeof what, "%s case %zu isa %s act %d", ops[o], c, kiln_isa_name(g_isas[k]), act);
          check_close(what, y, w, n, 2e-6, 1e-6);
          free(ws);
        }
      free(y);
      free(want);
      free(a);
      free(b);
      kiln_graph_destroy(t.g);
    }
  /* shapes that do not broadcast are refused */
  kiln_fast_binary_desc d = {.op = KILN_FAST_ADD, .rank = 2, .dims = {3, 4}, .a_rank = 2, .a_dims = {3, 4},
                             .b_rank = 1, .b_dims = {3}};
  kiln_fast_binary_plan p;
  expect_error(kiln_fast_binary_prepare(&d, &p), KILN_ERR_SHAPE, "broadcast");
}

/* Operands and output that are channel slices of bigger NCHW buffers (outer stride), vs a naive loop. */
static void test_binary_strided(void **state) {
  (void)state;
  const int64_t N = 3, C = 11, H = 7, W = 13, CA = 16, CB = 14, CY = 20;
  float *abuf = rand_buf(N * CA * H * W), *bbuf = rand_buf(N * CB * H * W), *cv = rand_buf(C);
  float *ybuf = nan_buf(N * CY * H * W);
  for (int k = 0; k < g_n_isas; k++)
    for (int variant = 0; variant < 3; variant++) {
      /* a: channels [2, 13) of a [N,16,H,W]; b: channels [1, 12) of [N,14,H,W] (or a per-channel
       * [C,1,1] vector, or a [N,1,1,1] per-batch scalar); y: channels [5, 16) of [N,20,H,W] */
      const float *a = abuf + 2 * H * W, *b = variant == 0 ? bbuf + H * W : variant == 1 ? cv : bbuf;
      float *y = ybuf + 5 * H * W;
      poison(ybuf, N * CY * H * W);
      kiln_fast_binary_desc d = {.op = KILN_FAST_MUL, .isa = g_isas[k], .rank = 4, .dims = {N, C, H, W}, .a_rank = 4,
                                 .a_dims = {N, C, H, W}, .a_outer_stride = CA * H * W, .y_outer_stride = CY * H * W,
                                 .act = KILN_ACT_RELU};
      if (variant == 0) d.b_rank = 4, memcpy(d.b_dims, d.dims, sizeof d.dims), d.b_outer_stride = CB * H * W;
      else if (variant == 1) d.b_rank = 3, d.b_dims[0] = C, d.b_dims[1] = 1, d.b_dims[2] = 1;
      else d.b_rank = 4, d.b_dims[0] = N, d.b_dims[1] = d.b_dims[2] = d.b_dims[3] = 1, d.b_outer_stride = 5;
      kiln_fast_binary_plan p;
      ASSERT_OK(kiln_fast_binary_prepare(&d, &p));
      kiln_fast_binary_run(&p, a, b, y, g_tp);
      for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < CY; ch++)
          for (int64_t i = 0; i < H * W; i++) {
            float got = ybuf[(n * CY + ch) * H * W + i];
            if (ch < 5 || ch >= 5 + C) { /* untouched */
              assert_true(isnan(got));
              continue;
            }
            int64_t c = ch - 5;
            float av = a[n * CA * H * W + c * H * W + i];
            float bv = variant == 0 ? b[n * CB * H * W + c * H * W + i] : variant == 1 ? b[c] : b[n * 5];
            float want = av * bv > 0 ? av * bv : 0;
            if (got != want) {
              print_error("strided variant %d isa %d at %lld,%lld,%lld: %g vs %g\n", variant, g_isas[k], (long long)n,
                          (long long)ch, (long long)i, got, want);
              fail();
            }
          }
    }
  free(abuf), free(bbuf), free(cv), free(ybuf);
}

/* ---- unary ops vs double-precision formulas ----------------------------------------------------- */

static double ref_unary(kiln_fast_unop op, kiln_act act, double x, double al, double be) {
  if (op == KILN_FAST_UN_ACT) switch (act) {
    case KILN_ACT_NONE: return x;
    case KILN_ACT_RELU: return x > 0 ? x : 0;
    case KILN_ACT_LEAKY_RELU: return x < 0 ? al * x : x;
    case KILN_ACT_CLIP: return x < al ? al : x > be ? be : x;
    case KILN_ACT_SIGMOID: return 1 / (1 + exp(-x));
    case KILN_ACT_SILU: return x / (1 + exp(-x));
    case KILN_ACT_HARDSWISH: return x * fmin(fmax(x / 6 + 0.5, 0), 1);
    case KILN_ACT_HARDSIGMOID: return fmin(fmax(al * x + be, 0), 1);
    case KILN_ACT_TANH: return tanh(x);
    case KILN_ACT_GELU: return 0.5 * x * (1 + erf(x / sqrt(2)));
    }
  switch (op) {
  case KILN_FAST_UN_SQRT: return sqrt(x);
  case KILN_FAST_UN_EXP: return exp(x);
  case KILN_FAST_UN_NEG: return -x;
  case KILN_FAST_UN_ABS: return fabs(x);
  case KILN_FAST_UN_RECIPROCAL: return 1 / x;
  case KILN_FAST_UN_ERF: return erf(x);
  default: return 0;
  }
}

static void test_unary(void **state) {
  (void)state;
  const int64_t outer = 5, inner = 1037, xs = 1100, ys = 1050;
  float *x = rand_buf(outer * xs), *y = nan_buf(outer * ys), *want = malloc(outer * inner * 4), *got = malloc(outer * inner * 4);
  for (int64_t i = 0; i < outer * xs; i++) x[i] *= 3; /* [-6, 6): both tails of sigmoid/tanh/erf */
  x[3] = 0, x[4] = 1e-3f, x[5] = -1e-4f, x[6] = 0.5f, x[7] = -0.49f, x[8] = 20, x[9] = -20;
  for (int k = 0; k < g_n_isas; k++)
    for (int op = 0; op <= KILN_FAST_UN_ERF; op++)
      for (int act = 0; act <= (op == 0 ? KILN_ACT_GELU : 0); act++)
        for (int inplace = 0; inplace < 2; inplace++) {
          kiln_fast_unary_desc d = {.op = op, .act = act, .alpha = act == KILN_ACT_HARDSIGMOID ? 0.2f : act == KILN_ACT_CLIP ? -1.5f : 0.1f,
                                    .beta = act == KILN_ACT_HARDSIGMOID ? 0.5f : 2.5f, .outer = outer, .inner = inner,
                                    .x_stride = xs, .y_stride = ys, .isa = g_isas[k]};
          float *src = x;
          if (inplace) { /* y = f(y) in place: copy x into y's layout first */
            for (int64_t o = 0; o < outer; o++) memcpy(y + o * ys, x + o * xs, inner * 4);
            src = y;
            d.x_stride = ys;
          } else {
            poison(y, outer * ys);
          }
          for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++) {
              double v = x[o * xs + i];
              if (op == KILN_FAST_UN_SQRT) v = fabs(v);
              if (op == KILN_FAST_UN_SQRT && !inplace) x[o * xs + i] = (float)v;
              want[o * inner + i] = (float)ref_unary(op, act, v, d.alpha, d.beta);
            }
          if (op == KILN_FAST_UN_SQRT && inplace)
            for (int64_t o = 0; o < outer; o++)
              for (int64_t i = 0; i < inner; i++) y[o * ys + i] = fabsf(y[o * ys + i]);
          kiln_fast_unary_run(&d, src, y, g_tp);
          for (int64_t o = 0; o < outer; o++) {
            memcpy(got + o * inner, y + o * ys, inner * 4);
            if (!inplace)
              for (int64_t i = inner; i < ys && o + 1 < outer; i++) assert_true(isnan(y[o * ys + i])); /* gaps untouched */
          }
          char what[64];
          snprintf(what, sizeof what, "unary op %d act %d isa %s inplace %d", op, act, kiln_isa_name(g_isas[k]), inplace);
          check_close(what, got, want, outer * inner, 4e-6, 1e-6);
        }
  /* SiLU helper, big enough for the parallel path */
  int64_t n = 32 * 160 * 160 + 7;
  float *a = rand_buf(n), *s = nan_buf(n), *w = malloc(n * 4);
  for (int64_t i = 0; i < n; i++) w[i] = (float)(a[i] / (1 + exp(-(double)a[i])));
  for (int k = 0; k < g_n_isas; k++) {
    poison(s, n);
    kiln_fast_silu_run(n, a, s, g_isas[k], g_tp);
    check_close("silu", s, w, n, 4e-6, 1e-7);
  }
  free(a), free(s), free(w), free(x), free(y), free(want), free(got);
}

/* ---- pooling vs the reference ------------------------------------------------------------------- */

typedef struct pcase {
  const char *op;
  int64_t N, C, H, W;
  int kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, ceil, cip;
} pcase;

static void test_pool_ref(void **state) {
  (void)state;
  static const pcase cases[] = {
      {"MaxPool", 1, 8, 20, 20, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0},     /* SPPF */
      {"MaxPool", 2, 3, 37, 41, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0},     /* ResNet stem */
      {"MaxPool", 1, 3, 10, 11, 3, 3, 2, 2, 1, 1, 0, 0, 0, 0, 1, 0},     /* ceil_mode overhang */
      {"MaxPool", 1, 2, 13, 35, 3, 2, 1, 1, 2, 3, 2, 1, 0, 2, 0, 0},     /* dilation, asymmetric pads */
      {"MaxPool", 1, 4, 8, 9, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0},
      {"AveragePool", 1, 3, 17, 19, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
      {"AveragePool", 1, 3, 17, 19, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1}, /* count_include_pad */
      {"AveragePool", 2, 2, 11, 10, 3, 2, 2, 3, 1, 1, 1, 0, 1, 1, 1, 1}, /* ceil + pads + include */
      {"AveragePool", 1, 5, 15, 16, 5, 4, 3, 1, 1, 1, 2, 0, 2, 3, 1, 0},
      {"MaxPool", 1, 64, 40, 40, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0},    /* parallel */
      {"MaxPool", 1, 3, 9, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},      /* stride 1, row > 64 */
      {"MaxPool", 2, 3, 6, 11, 4, 3, 1, 1, 1, 1, 0, 2, 3, 0, 0, 0},      /* stride 1, asymmetric pads */
      {"MaxPool", 1, 2, 3, 5, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0},       /* kernel taller than the plane */
      {"MaxPool", 1, 2, 200, 30, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},    /* plane too big for the stack */
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const pcase *pc = &cases[c];
    int64_t nx = pc->N * pc->C * pc->H * pc->W;
    float *x = rand_buf(nx);
    tin in[1] = {{KILN_DTYPE_FLOAT32, 4, {pc->N, pc->C, pc->H, pc->W}, NULL, x}};
    tgraph t = make_node(19, pc->op, 1, in);
    ASSERT_OK(kiln_node_set_ints(node_of(&t), "kernel_shape", (int64_t[]){pc->kh, pc->kw}, 2));
    ASSERT_OK(kiln_node_set_ints(node_of(&t), "strides", (int64_t[]){pc->sh, pc->sw}, 2));
    ASSERT_OK(kiln_node_set_ints(node_of(&t), "dilations", (int64_t[]){pc->dh, pc->dw}, 2));
    ASSERT_OK(kiln_node_set_ints(node_of(&t), "pads", (int64_t[]){pc->pt, pc->pl, pc->pb, pc->pr}, 4));
    ASSERT_OK(kiln_node_set_int(node_of(&t), "ceil_mode", pc->ceil));
    if (pc->cip) ASSERT_OK(kiln_node_set_int(node_of(&t), "count_include_pad", 1));
    int32_t r;
    int64_t od[KILN_MAX_RANK];
    float *want = run_ref(&t, in, &r, od);
    int64_t n = prod(od, r);
    float *y = nan_buf(n);
    for (int k = 0; k < g_n_isas; k++) {
      kiln_fast_pool2d_desc d = {.N = pc->N, .C = pc->C, .H = pc->H, .W = pc->W, .kh = pc->kh, .kw = pc->kw,
                                 .sh = pc->sh, .sw = pc->sw, .dh = pc->dh, .dw = pc->dw, .pt = pc->pt, .pl = pc->pl,
                                 .pb = pc->pb, .pr = pc->pr, .is_max = pc->op[0] == 'M', .ceil_mode = pc->ceil,
                                 .count_include_pad = pc->cip, .isa = g_isas[k]};
      ASSERT_OK(kiln_fast_pool2d_init(&d));
      assert_int_equal(d.OH, od[2]);
      assert_int_equal(d.OW, od[3]);
      poison(y, n);
      kiln_fast_pool2d_run(&d, x, y, g_tp);
      char what[64];
      snprintf(what, sizeof what, "pool case %zu isa %s", c, kiln_isa_name(g_isas[k]));
      check_close(what, y, want, n, 2e-6, 1e-6);
    }
    free(x), free(y), free(want);
    kiln_graph_destroy(t.g);
  }
  /* global pools vs the reference */
  for (int is_max = 0; is_max < 2; is_max++) {
    int64_t dims[4] = {2, 7, 13, 11};
    float *x = rand_buf(prod(dims, 4));
    tin in[1] = {{KILN_DTYPE_FLOAT32, 4, {2, 7, 13, 11}, NULL, x}};
    tgraph t = make_node(19, is_max ? "GlobalMaxPool" : "GlobalAveragePool", 1, in);
    int32_t r;
    int64_t od[KILN_MAX_RANK];
    float *want = run_ref(&t, in, &r, od);
    float y[14];
    for (int k = 0; k < g_n_isas; k++) {
      kiln_fast_global_pool_desc d = {.planes = 14, .size = 13 * 11, .is_max = is_max, .isa = g_isas[k]};
      poison(y, 14);
      kiln_fast_global_pool_run(&d, x, y, g_tp);
      check_close("global pool", y, want, 14, 1e-6, 1e-6);
    }
    free(x), free(want);
    kiln_graph_destroy(t.g);
  }
}

/* ---- Resize vs the reference -------------------------------------------------------------------- */

typedef struct rcase {
  const char *mode, *coord, *nearest;
  int64_t N, C, H, W;
  float sh, sw;
} rcase;

static void test_resize_ref(void **state) {
  (void)state;
  static const rcase cases[] = {
      {"nearest", "asymmetric", "floor", 1, 3, 20, 20, 2, 2}, /* YOLO upsample */
      {"nearest", "asymmetric", "floor", 1, 64, 20, 20, 2, 2},
      {"nearest", "half_pixel", "round_prefer_floor", 2, 3, 7, 9, 3, 3},
      {"nearest", "half_pixel", "round_prefer_ceil", 1, 2, 9, 13, 1.5f, 0.6f},
      {"nearest", "asymmetric", "ceil", 1, 2, 10, 8, 0.5f, 2.5f},
      {"nearest", "tf_half_pixel_for_nn", "floor", 1, 2, 5, 7, 2.3f, 1.7f},
      {"nearest", "align_corners", "round_prefer_floor", 1, 2, 5, 7, 2, 2},
      {"linear", "half_pixel", "", 1, 3, 11, 13, 2, 2},
      {"linear", "align_corners", "", 2, 2, 6, 9, 1.7f, 2.2f},
      {"linear", "pytorch_half_pixel", "", 1, 2, 8, 10, 0.6f, 1.3f},
      {"linear", "asymmetric", "", 1, 3, 7, 5, 2.5f, 3},
      {"linear", "half_pixel", "", 1, 32, 40, 40, 2, 2},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const rcase *rc = &cases[c];
    int64_t nx = rc->N * rc->C * rc->H * rc->W;
    float *x = rand_buf(nx);
    float sc[4] = {1, 1, rc->sh, rc->sw};
    tin in[3] = {{KILN_DTYPE_FLOAT32, 4, {rc->N, rc->C, rc->H, rc->W}, NULL, x}, {KILN_DTYPE_FLOAT32, -2},
                 {KILN_DTYPE_FLOAT32, 1, {4}, sc}};
    tgraph t = make_node(13, "Resize", 3, in);
    ASSERT_OK(kiln_node_set_string(node_of(&t), "mode", rc->mode));
    ASSERT_OK(kiln_node_set_string(node_of(&t), "coordinate_transformation_mode", rc->coord));
    if (rc->nearest[0]) ASSERT_OK(kiln_node_set_string(node_of(&t), "nearest_mode", rc->nearest));
    int32_t r;
    int64_t od[KILN_MAX_RANK];
    float *want = run_ref(&t, in, &r, od);
    int64_t n = prod(od, r);
    float *y = nan_buf(n);
    kiln_fast_resize_coord coord = !strcmp(rc->coord, "asymmetric")           ? KILN_FAST_COORD_ASYMMETRIC
                                   : !strcmp(rc->coord, "align_corners")      ? KILN_FAST_COORD_ALIGN_CORNERS
                                   : !strcmp(rc->coord, "pytorch_half_pixel") ? KILN_FAST_COORD_PYTORCH_HALF_PIXEL
                                   : !strcmp(rc->coord, "tf_half_pixel_for_nn") ? KILN_FAST_COORD_TF_HALF_PIXEL_FOR_NN
                                                                                : KILN_FAST_COORD_HALF_PIXEL;
    kiln_fast_resize_round rnd = !strcmp(rc->nearest, "floor")               ? KILN_FAST_FLOOR
                                 : !strcmp(rc->nearest, "ceil")              ? KILN_FAST_CEIL
                                 : !strcmp(rc->nearest, "round_prefer_ceil") ? KILN_FAST_ROUND_PREFER_CEIL
                                                                             : KILN_FAST_ROUND_PREFER_FLOOR;
    for (int k = 0; k < g_n_isas; k++) {
      kiln_fast_resize2d_desc d = {.N = rc->N, .C = rc->C, .H = rc->H, .W = rc->W, .OH = od[2], .OW = od[3],
                                   .scale_h = rc->sh, .scale_w = rc->sw,
                                   .mode = rc->mode[0] == 'n' ? KILN_FAST_RESIZE_NEAREST : KILN_FAST_RESIZE_LINEAR,
                                   .coord = coord, .round = rnd, .isa = g_isas[k]};
      void *tab = malloc(kiln_fast_resize2d_table_size(&d));
      ASSERT_OK(kiln_fast_resize2d_build(&d, tab));
      poison(y, n);
      kiln_fast_resize2d_run(&d, tab, x, y, g_tp);
      char what[64];
      snprintf(what, sizeof what, "resize case %zu isa %s", c, kiln_isa_name(g_isas[k]));
      check_close(what, y, want, n, 1e-5, 1e-5);
      free(tab);
    }
    free(x), free(y), free(want);
    kiln_graph_destroy(t.g);
  }
}

/* ---- Softmax vs the reference ------------------------------------------------------------------- */

static void test_softmax_ref(void **state) {
  (void)state;
  static const struct {
    int32_t rank;
    int64_t dims[4];
    int axis;
  } cases[] = {{4, {3, 5, 7, 9}, 3}, {4, {3, 5, 7, 9}, 1}, {4, {3, 5, 7, 9}, 0}, {2, {4, 1000}, 1},
               {3, {2, 37, 3}, 1},   {4, {1, 4, 16, 8400}, 1}, {4, {1, 16, 4, 8400}, 1}, {2, {7, 1}, 1}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int lg = 0; lg < 2; lg++) {
      int64_t nx = prod(cases[c].dims, cases[c].rank);
      float *x = rand_buf(nx);
      for (int64_t i = 0; i < nx; i++) x[i] *= 10;
      tin in[1] = {{KILN_DTYPE_FLOAT32, cases[c].rank, {0}, NULL, x}};
      memcpy(in[0].dims, cases[c].dims, sizeof cases[c].dims);
      tgraph t = make_node(13, lg ? "LogSoftmax" : "Softmax", 1, in);
      ASSERT_OK(kiln_node_set_int(node_of(&t), "axis", cases[c].axis));
      int32_t r;
      int64_t od[KILN_MAX_RANK];
      float *want = run_ref(&t, in, &r, od);
      float *y = nan_buf(nx);
      int ax = cases[c].axis;
      kiln_fast_softmax_desc d = {.outer = prod(cases[c].dims, ax), .axis = cases[c].dims[ax],
                                  .inner = prod(cases[c].dims + ax + 1, cases[c].rank - ax - 1), .log = lg};
      for (int k = 0; k < g_n_isas; k++) {
        d.isa = g_isas[k];
        poison(y, nx);
        kiln_fast_softmax_run(&d, x, y, g_tp);
        char what[64];
        snprintf(what, sizeof what, "softmax case %zu log %d isa %s", c, lg, kiln_isa_name(g_isas[k]));
        check_close(what, y, want, nx, 2e-6, lg ? 2e-6 : 1e-7); /* log: absolute error ~ eps of log(sum) */
        /* in place */
        memcpy(y, x, (size_t)nx * 4);
        kiln_fast_softmax_run(&d, y, y, g_tp);
        check_close(what, y, want, nx, 2e-6, lg ? 2e-6 : 1e-7); /* log: absolute error ~ eps of log(sum) */
      }
      free(x), free(y), free(want);
      kiln_graph_destroy(t.g);
    }
}

/* ---- copy / transpose vs naive loops ------------------------------------------------------------ */

static void fill_bytes(uint8_t *p, int64_t n) {
  for (int64_t i = 0; i < n; i++) p[i] = (uint8_t)irand(256);
}

static void test_copy(void **state) {
  (void)state;
  static const int esz[] = {1, 2, 3, 4, 8, 12};
  for (int it = 0; it < 60; it++) {
    int r = 1 + irand(5), e = esz[it % 6];
    kiln_fast_copy_desc d = {.rank = r, .elem_size = e, .isa = g_isas[it % g_n_isas]};
    int64_t sd[8], dd[8]; /* the containing buffers: each dim a bit bigger (slice / concat) */
    int64_t soff = 0, doff = 0;
    for (int i = 0; i < r; i++) {
      d.dims[i] = 1 + irand(it % 10 == 0 ? 60 : 9);
      sd[i] = d.dims[i] + (irand(3) == 0 ? irand(4) : 0);
      dd[i] = d.dims[i] + (irand(3) == 0 ? irand(4) : 0);
    }
    if (it % 7 == 3) d.dims[r - 1] = 1; /* trailing unit dim */
    kiln_fast_contiguous_strides(r, sd, d.src_strides);
    kiln_fast_contiguous_strides(r, dd, d.dst_strides);
    for (int i = 0; i < r; i++) soff += (sd[i] - d.dims[i]) / 2 * d.src_strides[i], doff += (dd[i] - d.dims[i]) * d.dst_strides[i] / 2 / d.dst_strides[i] * d.dst_strides[i];
    if (it % 5 == 4) { /* permuted source strides: a transposing copy */
      int a = irand(r), b = irand(r);
      int64_t t = d.src_strides[a];
      d.src_strides[a] = d.src_strides[b], d.src_strides[b] = t;
      int64_t m = d.dims[a] > d.dims[b] ? d.dims[a] : d.dims[b];
      d.dims[a] = d.dims[b] = m < (sd[a] < sd[b] ? sd[a] : sd[b]) ? m : (sd[a] < sd[b] ? sd[a] : sd[b]);
      if (d.dims[a] > dd[a]) d.dims[a] = dd[a];
      if (d.dims[b] > dd[b]) d.dims[b] = dd[b];
      soff = doff = 0;
    }
    int64_t ns = prod(sd, r) * e, nd = prod(dd, r) * e;
    uint8_t *src = malloc(ns), *dst = malloc(nd), *want = malloc(nd);
    fill_bytes(src, ns);
    memset(dst, 0xAB, nd);
    memset(want, 0xAB, nd);
    int64_t cnt = prod(d.dims, r), idx[8];
    for (int64_t k = 0; k < cnt; k++) {
      int64_t rem = k, so = soff, dof = doff;
      for (int i = r - 1; i >= 0; i--) idx[i] = rem % d.dims[i], rem /= d.dims[i];
      for (int i = 0; i < r; i++) so += idx[i] * d.src_strides[i], dof += idx[i] * d.dst_strides[i];
      memcpy(want + dof * e, src + so * e, e);
    }
    kiln_fast_copy_run(&d, src + soff * e, dst + doff * e, g_tp);
    if (memcmp(dst, want, nd)) {
      print_error("copy iteration %d (rank %d, elem %d) differs\n", it, r, e);
      fail();
    }
    free(src), free(dst), free(want);
  }
}

static void test_transpose(void **state) {
  (void)state;
  static const struct {
    int32_t rank;
    int64_t dims[6];
    int32_t perm[6];
  } cases[] = {{3, {1, 84, 8400}, {0, 2, 1}},      {4, {2, 13, 7, 9}, {0, 2, 3, 1}}, {4, {1, 4, 16, 8400}, {0, 2, 1, 3}},
               {2, {37, 45}, {1, 0}},              {5, {2, 3, 4, 5, 6}, {4, 2, 0, 3, 1}},
               {6, {2, 1, 3, 5, 1, 7}, {5, 3, 1, 0, 2, 4}}, {3, {5, 6, 7}, {0, 1, 2}}, {2, {1, 17}, {1, 0}}};
  static const int esz[] = {1, 2, 4, 8};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int ei = 0; ei < 4; ei++)
      for (int k = 0; k < g_n_isas; k++) {
        int e = esz[ei], r = cases[c].rank;
        kiln_fast_transpose_desc d = {.rank = r, .elem_size = e, .isa = g_isas[k]};
        memcpy(d.in_dims, cases[c].dims, sizeof cases[c].dims);
        memcpy(d.perm, cases[c].perm, sizeof cases[c].perm);
        ASSERT_OK(kiln_fast_transpose_check(&d));
        int64_t n = prod(d.in_dims, r), is[8], od[8];
        assert_true(n > 0 && n < ((int64_t)1 << 28));
        size_t nb = (size_t)(n & (((int64_t)1 << 28) - 1)) * (size_t)e; /* the mask tells gcc nb is bounded */
        uint8_t *src = malloc(nb), *dst = malloc(nb), *want = malloc(nb);
        fill_bytes(src, (int64_t)nb);
        for (size_t i = 0; i < nb; i++) dst[i] = 0xAB; /* (memset here trips a gcc 12 false -Wstringop-overflow) */
        kiln_fast_contiguous_strides(r, d.in_dims, is);
        for (int i = 0; i < r; i++) od[i] = d.in_dims[d.perm[i]];
        for (int64_t o = 0; o < n; o++) {
          int64_t rem = o, so = 0;
          for (int i = r - 1; i >= 0; i--) so += (rem % od[i]) * is[d.perm[i]], rem /= od[i];
          memcpy(want + o * e, src + so * e, e);
        }
        kiln_fast_transpose_run(&d, src, dst, g_tp);
        if (memcmp(dst, want, nb)) {
          print_error("transpose case %zu elem %d isa %s differs\n", c, e, kiln_isa_name(g_isas[k]));
          fail();
        }
        free(src), free(dst), free(want);
      }
  kiln_fast_transpose_desc bad = {.rank = 3, .in_dims = {1, 2, 3}, .perm = {0, 1, 1}, .elem_size = 4};
  expect_error(kiln_fast_transpose_check(&bad), KILN_ERR_INVALID_ARGUMENT, "permutation");
}

/* ---- GEMM vs a naive double loop ---------------------------------------------------------------- */

static void test_gemm(void **state) {
  (void)state;
  static const int64_t shapes[][3] = {{1, 1, 1},    {5, 7, 3},   {13, 33, 17}, {37, 65, 300}, {100, 31, 513},
                                      {12, 32, 256}, {7, 100, 1}, {130, 70, 40}, {1, 200, 77}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int v = 0; v < 8; v++) {
      int64_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], batch = (v & 4) ? 3 : 1;
      bool ta = v & 1, tb = (v >> 1) & 1, shared_b = (v & 4) && (s % 2);
      float alpha = (v % 3) ? 0.75f : 1.0f, beta = (v == 5) ? 0.5f : 0.0f;
      int64_t lda = (ta ? M : K) + (s % 3), ldb = (tb ? K : N) + (s % 2), ldc = N + 3;
      int64_t sa = (ta ? K : M) * lda, sb = shared_b ? 0 : (tb ? N : K) * ldb, sc = M * ldc;
      float *A = rand_buf(sa * batch), *B = rand_buf((shared_b ? (tb ? N : K) * ldb : sb * batch)),
            *C0 = rand_buf(sc * batch), *C = malloc(sc * batch * 4), *want = malloc(sc * batch * 4);
      for (int64_t b = 0; b < batch; b++)
        for (int64_t i = 0; i < M; i++)
          for (int64_t j = 0; j < ldc; j++) {
            int64_t ci = b * sc + i * ldc + j;
            if (j >= N) { want[ci] = NAN; continue; } /* padding columns stay as poisoned */
            double acc = 0;
            for (int64_t k = 0; k < K; k++) {
              double av = ta ? A[b * sa + k * lda + i] : A[b * sa + i * lda + k];
              double bv = tb ? B[b * sb + j * ldb + k] : B[b * sb + k * ldb + j];
              acc += av * bv;
            }
            want[ci] = (float)(alpha * acc + (beta != 0 ? beta * C0[ci] : 0));
          }
      for (int k = 0; k < g_n_isas; k++)
        for (int prepacked = 0; prepacked < 2; prepacked++) {
          kiln_fast_gemm_desc d = {.M = M, .N = N, .K = K, .trans_a = ta, .trans_b = tb, .lda = lda, .ldb = ldb,
                                   .ldc = ldc, .alpha = alpha, .beta = beta, .batch = batch, .batch_stride_a = sa,
                                   .batch_stride_b = sb, .batch_stride_c = sc, .isa = g_isas[k]};
          /* beta == 0 must not read C: poison it all; else poison only the padding columns */
          for (int64_t i = 0; i < sc * batch; i++) C[i] = (beta != 0 && i % ldc < N) ? C0[i] : NAN;
          void *buf = malloc(kiln_fast_gemm_packed_b_size(&d));
          if (prepacked) {
            kiln_fast_gemm_pack_b(&d, B, buf, g_tp);
            kiln_fast_gemm_run(&d, A, NULL, buf, C, NULL, g_tp);
          } else {
            assert_true(kiln_fast_gemm_workspace_size(&d) >= kiln_fast_gemm_packed_b_size(&d));
            kiln_fast_gemm_run(&d, A, B, NULL, C, buf, g_tp);
          }
          free(buf);
          for (int64_t i = 0; i < sc * batch; i++) {
            bool pad = i % ldc >= N;
            if (pad ? !isnan(C[i]) : !(fabs(C[i] - want[i]) <= 1e-4 * (1 + fabs(want[i])) * sqrt((double)K))) {
              print_error("gemm %lldx%lldx%lld v%d isa %s pre %d at %lld: %g vs %g\n", (long long)M, (long long)N,
                          (long long)K, v, kiln_isa_name(g_isas[k]), prepacked, (long long)i, C[i], want[i]);
              fail();
            }
          }
        }
      free(A), free(B), free(C0), free(C), free(want);
    }
}

/* ---- speed of the YOLOv8n shapes (KILN_FAST_BENCH=1) -------------------------------------------- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define BENCH(label, bytes, stmt)                                                                    \
  do {                                                                                               \
    stmt;                                                                                            \
    double t0 = now_s(), best = 1e9;                                                                 \
    int reps = 0;                                                                                    \
    while (now_s() - t0 < 0.3 || reps < 5) {                                                         \
      double t1 = now_s();                                                                           \
      stmt;                                                                                          \
      double dt = now_s() - t1;                                                                      \
      best = dt < best ? dt : best;                                                                  \
      reps++;                                                                                        \
    }                                                                                                \
    printf("  %-44s %9.1f us %7.2f GB/s\n", label, best * 1e6, (double)(bytes) / best * 1e-9);      \
  } while (0)

static void test_bench(void **state) {
  (void)state;
  if (!getenv("KILN_FAST_BENCH")) {
    skip();
    return;
  }
  int64_t big = 32 * 320 * 320;
  float *x = rand_buf(big * 2), *y = nan_buf(big * 2), *z = rand_buf(big);
  for (int pass = 0; pass < 2; pass++) {
    kiln_threadpool *tp = pass ? g_tp : NULL;
    printf("threads: %d, isa %s\n", kiln_threadpool_size(tp), kiln_isa_name(g_isas[g_n_isas - 1]));
    kiln_isa isa = g_isas[g_n_isas - 1];
    BENCH("memcpy 1x32x320x320 (reference)", 2 * big * 4, memcpy(y, x, big * 4));
    BENCH("SiLU 1x32x320x320", 2 * big * 4, kiln_fast_silu_run(big, x, y, isa, tp));
    BENCH("SiLU 1x32x320x320 scalar", 2 * big * 4, kiln_fast_silu_run(big, x, y, KILN_ISA_SCALAR, tp));
    {
      kiln_fast_binary_desc d = {.op = KILN_FAST_ADD, .isa = isa, .rank = 4, .dims = {1, 32, 160, 160}, .a_rank = 4,
                                 .a_dims = {1, 32, 160, 160}, .b_rank = 4, .b_dims = {1, 32, 160, 160}};
      kiln_fast_binary_plan p;
      ASSERT_OK(kiln_fast_binary_prepare(&d, &p));
      BENCH("Add residual 1x32x160x160", 3 * 32 * 160 * 160 * 4, kiln_fast_binary_run(&p, x, z, y, tp));
      d.op = KILN_FAST_MUL, d.b_rank = 3, d.b_dims[0] = 32, d.b_dims[1] = 1, d.b_dims[2] = 1;
      ASSERT_OK(kiln_fast_binary_prepare(&d, &p));
      BENCH("Mul per-channel 1x32x160x160", 2 * 32 * 160 * 160 * 4, kiln_fast_binary_run(&p, x, z, y, tp));
      kiln_fast_binary_desc e = {.op = KILN_FAST_MUL, .isa = isa, .rank = 3, .dims = {1, 4, 8400}, .a_rank = 3,
                                 .a_dims = {1, 4, 8400}, .b_rank = 2, .b_dims = {1, 8400}};
      ASSERT_OK(kiln_fast_binary_prepare(&e, &p));
      BENCH("Mul 1x4x8400 * 1x8400", 2 * 4 * 8400 * 4, kiln_fast_binary_run(&p, x, z, y, tp));
    }
    {
      kiln_fast_pool2d_desc d = {.N = 1, .C = 128, .H = 20, .W = 20, .kh = 5, .kw = 5, .sh = 1, .sw = 1, .dh = 1,
                                 .dw = 1, .pt = 2, .pl = 2, .pb = 2, .pr = 2, .is_max = true, .isa = isa};
      ASSERT_OK(kiln_fast_pool2d_init(&d));
      BENCH("MaxPool k5s1p2 1x128x20x20", 2 * 128 * 400 * 4, kiln_fast_pool2d_run(&d, x, y, tp));
    }
    {
      kiln_fast_softmax_desc d = {.outer = 1, .axis = 4, .inner = 16 * 8400, .isa = isa};
      BENCH("Softmax 1x4x16x8400 axis 1", 2 * 4 * 16 * 8400 * 4, kiln_fast_softmax_run(&d, x, y, tp));
      kiln_fast_softmax_desc e = {.outer = 1, .axis = 16, .inner = 4 * 8400, .isa = isa};
      BENCH("Softmax 1x16x4x8400 axis 1", 2 * 4 * 16 * 8400 * 4, kiln_fast_softmax_run(&e, x, y, tp));
    }
    {
      kiln_fast_resize2d_desc d = {.N = 1, .C = 256, .H = 20, .W = 20, .OH = 40, .OW = 40, .scale_h = 2,
                                   .scale_w = 2, .mode = KILN_FAST_RESIZE_NEAREST, .coord = KILN_FAST_COORD_ASYMMETRIC,
                                   .round = KILN_FAST_FLOOR, .isa = isa};
      void *tab = malloc(kiln_fast_resize2d_table_size(&d));
      ASSERT_OK(kiln_fast_resize2d_build(&d, tab));
      BENCH("Resize nearest 2x 1x256x20x20", 5 * 256 * 400 * 4, kiln_fast_resize2d_run(&d, tab, x, y, tp));
      d.mode = KILN_FAST_RESIZE_LINEAR, d.coord = KILN_FAST_COORD_HALF_PIXEL;
      ASSERT_OK(kiln_fast_resize2d_build(&d, tab));
      BENCH("Resize bilinear 2x 1x256x20x20", 5 * 256 * 400 * 4, kiln_fast_resize2d_run(&d, tab, x, y, tp));
      free(tab);
    }
    {
      kiln_fast_transpose_desc d = {.rank = 3, .in_dims = {1, 84, 8400}, .perm = {0, 2, 1}, .elem_size = 4, .isa = isa};
      BENCH("Transpose 1x84x8400 -> 1x8400x84", 2 * 84 * 8400 * 4, kiln_fast_transpose_run(&d, x, y, tp));
      kiln_fast_copy_desc c = {.rank = 3, .dims = {64, 80, 80}, .elem_size = 4, .isa = isa};
      kiln_fast_contiguous_strides(3, c.dims, c.src_strides);
      int64_t dd[3] = {128, 80, 80};
      kiln_fast_contiguous_strides(3, dd, c.dst_strides);
      BENCH("Concat copy 1x64x80x80 into 1x128x80x80", 2 * 64 * 6400 * 4, kiln_fast_copy_run(&c, x, y, tp));
    }
    {
      int64_t M = 256, N = 400, K = 576; /* a conv-sized GEMM */
      kiln_fast_gemm_desc d = {.M = M, .N = N, .K = K, .alpha = 1, .isa = isa};
      float *pb = malloc(kiln_fast_gemm_packed_b_size(&d));
      kiln_fast_gemm_pack_b(&d, z, pb, tp);
      double t0 = now_s(), best = 1e9;
      for (int r = 0; r < 20 || now_s() - t0 < 0.3; r++) {
        double t1 = now_s();
        kiln_fast_gemm_run(&d, x, NULL, pb, y, NULL, tp);
        best = fmin(best, now_s() - t1);
      }
      printf("  %-44s %9.1f us %7.1f GFLOP/s\n", "SGEMM 256x400x576", best * 1e6, 2.0 * M * N * K / best * 1e-9);
      free(pb);
    }
  }
  free(x), free(y), free(z);
}

static int setup(void **state) {
  (void)state;
  kiln_cpu_caps caps;
  kiln_cpu_caps_detect(&caps);
  g_n_isas = 0;
  g_isas[g_n_isas++] = KILN_ISA_SCALAR;
  if (caps.best >= KILN_ISA_AVX2) g_isas[g_n_isas++] = KILN_ISA_AVX2;
  if (caps.best >= KILN_ISA_AVX512) g_isas[g_n_isas++] = KILN_ISA_AVX512;
  kiln_status st = kiln_threadpool_create(2, &g_tp);
  if (st) {
    kiln_status_destroy(st);
    g_tp = NULL;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  kiln_threadpool_destroy(g_tp);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_binary_ref), cmocka_unit_test(test_binary_strided), cmocka_unit_test(test_unary),
      cmocka_unit_test(test_pool_ref),   cmocka_unit_test(test_resize_ref),     cmocka_unit_test(test_softmax_ref),
      cmocka_unit_test(test_copy),       cmocka_unit_test(test_transpose),      cmocka_unit_test(test_gemm),
      cmocka_unit_test(test_bench),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
