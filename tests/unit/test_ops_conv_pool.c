/* conv / norm / pool / matrix families: parse, infer, macs and reference kernels on tiny graphs with
 * odd shapes, checked against independently computed expectations (naive loops written out here,
 * hand-computed values, and the conv / conv-transpose adjoint identity). */
#include "testlib.h"

#include "backend/cpu/reference/reference.h"
#include "core/dtype.h"
#include "ir/ops/conv.h"
#include "ir/ops/pool.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rng_state = 4242;
static float frand(void) { /* uniform [-2, 2) */
  rng_state = rng_state * 1664525u + 1013904223u;
  return (float)((rng_state >> 8) & 0xffff) / 16384.0f - 2.0f;
}
static float *rand_buf(int64_t n) {
  float *b = malloc((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++) b[i] = frand();
  return b;
}

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

static tgraph make_node(int64_t opset, const char *op, int n_in, const tin *ins, int n_out) {
  tgraph t;
  ASSERT_OK(kiln_graph_create(&t.g));
  t.g->opset = opset;
  int32_t in[16], out[4];
  for (int i = 0; i < n_in; i++) {
    char name[16];
    snprintf(name, sizeof name, "in%d", i);
    if (ins[i].rank < -1) {
      in[i] = -1;
      continue;
    }
    in[i] = test_add_tensor(t.g, name, ins[i].dt, ins[i].rank < 0 ? 0 : ins[i].rank, ins[i].dims);
    if (ins[i].rank == -1) kiln_shape_unknown(&t.g->values[in[i]].shape);
    if (ins[i].data) {
      kiln_shape s = t.g->values[in[i]].shape;
      ASSERT_OK(kiln_value_set_constant(t.g, in[i], ins[i].dt, &s, ins[i].data));
    }
  }
  for (int i = 0; i < n_out; i++) {
    char name[16];
    snprintf(name, sizeof name, "out%d", i);
    ASSERT_OK(kiln_graph_add_value(t.g, name, &out[i]));
  }
  ASSERT_OK(kiln_graph_add_node(t.g, "n", "", op, in, n_in, out, n_out, &t.node));
  return t;
}

static kiln_node *node_of(tgraph *t) { return &t->g->nodes[t->node]; }
static const kiln_value *out_val(tgraph *t, int i) { return &t->g->values[node_of(t)->outputs[i]]; }

static void parse_infer(tgraph *t) {
  ASSERT_OK(kiln_node_parse(t->g, node_of(t)));
  ASSERT_OK(kiln_node_infer(t->g, node_of(t)));
}

/* Run the reference kernel with poisoned outputs (NaN for floats, 0xAB bytes otherwise). */
static void run_ref(tgraph *t, const tin *ins, kiln_tensor *out) {
  kiln_node *n = node_of(t);
  kiln_tensor in[16];
  for (int i = 0; i < n->n_inputs; i++) {
    memset(&in[i], 0, sizeof in[i]);
    if (n->inputs[i] < 0) continue;
    kiln_value_as_tensor(&t->g->values[n->inputs[i]], &in[i]);
    if (!in[i].data) in[i].data = (void *)ins[i].feed;
  }
  for (int i = 0; i < n->n_outputs; i++) {
    kiln_value_as_tensor(&t->g->values[n->outputs[i]], &out[i]);
    size_t nb = kiln_tensor_nbytes(&out[i]);
    out[i].data = malloc(nb ? nb : 1);
    memset(out[i].data, 0xAB, nb ? nb : 1);
    if (kiln_dtype_is_float(out[i].dtype))
      for (int64_t j = 0; j < kiln_tensor_numel(&out[i]); j++) kiln_dtype_store_f64(out[i].dtype, out[i].data, j, NAN);
  }
  ASSERT_OK(kiln_reference_run(t->g, n, in, out));
}

static void free_all(tgraph *t, kiln_tensor *out, int n) {
  for (int i = 0; i < n; i++) free(out[i].data);
  kiln_graph_destroy(t->g);
}

static void expect_dims(const kiln_value *v, int32_t rank, const int64_t *dims) {
  assert_int_equal(v->shape.rank, rank);
  for (int32_t i = 0; i < rank; i++) assert_int_equal(v->shape.dims[i], dims[i]);
}

static void assert_close(double got, double want, double tol) {
  if (!(fabs(got - want) <= tol * (1 + fabs(want)))) {
    print_error("got %.9g, want %.9g\n", got, want);
    fail();
  }
}

/* ---- conv: shapes ---------------------------------------------------------------------------- */

static void test_conv_infer(void **state) {
  (void)state;
  /* pads/strides/dilations: out = floor((in + pb + pe - ((k-1)*d+1)) / s) + 1 */
  tin in[2] = {{KILN_DTYPE_FLOAT32, 4, {1, 3, 11, 9}}, {KILN_DTYPE_FLOAT32, 4, {8, 3, 3, 2}}};
  tgraph t = make_node(17, "Conv", 2, in, 1);
  int64_t pads[] = {1, 0, 2, 1}, strides[] = {2, 3}, dil[] = {2, 1};
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "pads", pads, 4));
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "strides", strides, 2));
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "dilations", dil, 2));
  parse_infer(&t);
  expect_dims(out_val(&t, 0), 4, (int64_t[]){1, 8, (11 + 3 - 5) / 2 + 1, (9 + 1 - 2) / 3 + 1});
  const kiln_conv_params *p = node_of(&t)->params;
  assert_true(p->resolved);
  assert_int_equal(p->geom.pad_begin[0], 1);
  assert_int_equal(p->geom.pad_end[0], 2);
  assert_int_equal(kiln_node_macs(t.g, node_of(&t)), 1 * 8 * 5 * 3 * 3 * 3 * 2);
  kiln_graph_destroy(t.g);

  /* SAME_LOWER puts the odd pad first; dynamic batch keeps its symbol; group 2 */
  tin in2[2] = {{KILN_DTYPE_FLOAT32, 4, {KILN_DIM_DYNAMIC, 6, 10, 7}}, {KILN_DTYPE_FLOAT32, 4, {4, 3, 4, 3}}};
  t = make_node(17, "Conv", 2, in2, 1);
  int32_t sym;
  ASSERT_OK(kiln_graph_add_symbol(t.g, "batch", &sym));
  t.g->values[node_of(&t)->inputs[0]].shape.sym[0] = sym;
  ASSERT_OK(kiln_node_set_string(node_of(&t), "auto_pad", "SAME_LOWER"));
  ASSERT_OK(kiln_node_set_int(node_of(&t), "group", 2));
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "strides", (int64_t[]){3, 2}, 2));
  parse_infer(&t);
  expect_dims(out_val(&t, 0), 4, (int64_t[]){KILN_DIM_DYNAMIC, 4, 4, 4});
  assert_int_equal(out_val(&t, 0)->shape.sym[0], sym);
  p = node_of(&t)->params;
  /* dim 0: out 4, total = 3*3 + 4 - 10 = 3 -> begin 2, end 1; dim 1: total = 3*2 + 3 - 7 = 2 -> 1, 1 */
  assert_int_equal(p->geom.pad_begin[0], 2);
  assert_int_equal(p->geom.pad_end[0], 1);
  assert_int_equal(p->geom.pad_begin[1], 1);
  assert_int_equal(p->geom.pad_end[1], 1);
  assert_int_equal(kiln_node_macs(t.g, node_of(&t)), 0); /* batch unknown */
  kiln_graph_destroy(t.g);

  /* errors: channel/group mismatch, bad attribute values */
  tin in3[2] = {{KILN_DTYPE_FLOAT32, 4, {1, 5, 8, 8}}, {KILN_DTYPE_FLOAT32, 4, {4, 3, 3, 3}}};
  t = make_node(17, "Conv", 2, in3, 1);
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t)));
  expect_error(kiln_node_infer(t.g, node_of(&t)), KILN_ERR_SHAPE, "channels");
  t.g->values[node_of(&t)->inputs[0]].shape.dims[1] = 3;
  ASSERT_OK(kiln_node_set_string(node_of(&t), "auto_pad", "SAME"));
  expect_error(kiln_node_parse(t.g, node_of(&t)), KILN_ERR_PARSE, "auto_pad");
  ASSERT_OK(kiln_node_set_string(node_of(&t), "auto_pad", "VALID"));
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "strides", (int64_t[]){1, -1}, 2));
  expect_error(kiln_node_parse(t.g, node_of(&t)), KILN_ERR_PARSE, "strides");
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "strides", (int64_t[]){1, 1, 1}, 3));
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t)));
  expect_error(kiln_node_infer(t.g, node_of(&t)), KILN_ERR_SHAPE, "spatial");
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "strides", (int64_t[]){1, 1}, 2));
  ASSERT_OK(kiln_node_set_int(node_of(&t), "group", 0));
  expect_error(kiln_node_parse(t.g, node_of(&t)), KILN_ERR_PARSE, "group");
  kiln_graph_destroy(t.g);

  /* ConvTranspose: out = s*(in-1) + output_padding + ((k-1)*d+1) - pb - pe; group 3 */
  tin in4[2] = {{KILN_DTYPE_FLOAT32, 3, {2, 6, 5}}, {KILN_DTYPE_FLOAT32, 3, {6, 2, 4}}};
  t = make_node(17, "ConvTranspose", 2, in4, 1);
  ASSERT_OK(kiln_node_set_int(node_of(&t), "group", 3));
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "strides", (int64_t[]){3}, 1));
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "pads", (int64_t[]){1, 2}, 2));
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "output_padding", (int64_t[]){1}, 1));
  parse_infer(&t);
  expect_dims(out_val(&t, 0), 3, (int64_t[]){2, 6, 3 * 4 + 1 + 4 - 3});
  assert_int_equal(kiln_node_macs(t.g, node_of(&t)), 2 * 6 * 5 * 2 * 4);
  kiln_graph_destroy(t.g);
}

/* ---- conv: values ----------------------------------------------------------------------------- */

typedef struct conv2d_cfg {
  int64_t N, C, H, W, M, G, KH, KW, sh, sw, dh, dw, pt, pl, pb, pr;
} conv2d_cfg;

static void naive_conv2d(const conv2d_cfg *c, const float *x, const float *w, const float *b, int64_t OH, int64_t OW,
                         double *y) {
  int64_t Cg = c->C / c->G, Mg = c->M / c->G;
  for (int64_t n = 0; n < c->N; n++)
    for (int64_t m = 0; m < c->M; m++)
      for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
          double acc = b ? b[m] : 0;
          int64_t g = m / Mg;
          for (int64_t ic = 0; ic < Cg; ic++)
            for (int64_t kh = 0; kh < c->KH; kh++)
              for (int64_t kw = 0; kw < c->KW; kw++) {
                int64_t ih = oh * c->sh + kh * c->dh - c->pt, iw = ow * c->sw + kw * c->dw - c->pl;
                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                acc += (double)x[((n * c->C + g * Cg + ic) * c->H + ih) * c->W + iw] *
                       w[((m * Cg + ic) * c->KH + kh) * c->KW + kw];
              }
          y[((n * c->M + m) * OH + oh) * OW + ow] = acc;
        }
}

static void conv2d_case(const conv2d_cfg *c, kiln_dtype dt) {
  int64_t nx = c->N * c->C * c->H * c->W, nw = c->M * (c->C / c->G) * c->KH * c->KW;
  float *x = rand_buf(nx), *w = rand_buf(nw), *b = rand_buf(c->M);
  /* the same numbers in the test dtype (values exactly representable in fp16 are not needed: we
   * compare with a tolerance that fits the dtype) */
  void *xd = malloc((size_t)nx * 8), *wd = malloc((size_t)nw * 8), *bd = malloc((size_t)c->M * 8);
  for (int64_t i = 0; i < nx; i++) kiln_dtype_store_f64(dt, xd, i, x[i]), x[i] = (float)kiln_dtype_load_f64(dt, xd, i);
  for (int64_t i = 0; i < nw; i++) kiln_dtype_store_f64(dt, wd, i, w[i]), w[i] = (float)kiln_dtype_load_f64(dt, wd, i);
  for (int64_t i = 0; i < c->M; i++) kiln_dtype_store_f64(dt, bd, i, b[i]), b[i] = (float)kiln_dtype_load_f64(dt, bd, i);
  tin in[3] = {{dt, 4, {c->N, c->C, c->H, c->W}, NULL, xd},
               {dt, 4, {c->M, c->C / c->G, c->KH, c->KW}, wd, NULL},
               {dt, 1, {c->M}, bd, NULL}};
  tgraph t = make_node(17, "Conv", 3, in, 1);
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "pads", (int64_t[]){c->pt, c->pl, c->pb, c->pr}, 4));
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "strides", (int64_t[]){c->sh, c->sw}, 2));
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "dilations", (int64_t[]){c->dh, c->dw}, 2));
  ASSERT_OK(kiln_node_set_int(node_of(&t), "group", c->G));
  parse_infer(&t);
  int64_t OH = (c->H + c->pt + c->pb - (c->KH - 1) * c->dh - 1) / c->sh + 1;
  int64_t OW = (c->W + c->pl + c->pr - (c->KW - 1) * c->dw - 1) / c->sw + 1;
  expect_dims(out_val(&t, 0), 4, (int64_t[]){c->N, c->M, OH, OW});
  kiln_tensor out[1];
  run_ref(&t, in, out);
  double *want = malloc((size_t)(c->N * c->M * OH * OW) * sizeof(double));
  naive_conv2d(c, x, w, b, OH, OW, want);
  double tol = dt == KILN_DTYPE_FLOAT16 ? 2e-3 : 1e-5;
  for (int64_t i = 0; i < c->N * c->M * OH * OW; i++) assert_close(kiln_dtype_load_f64(dt, out[0].data, i), want[i], tol);
  free(want);
  free(x), free(w), free(b), free(xd), free(wd), free(bd);
  free_all(&t, out, 1);
}

static void test_conv_ref(void **state) {
  (void)state;
  conv2d_cfg a = {2, 4, 7, 5, 6, 2, 3, 2, 2, 1, 1, 2, 1, 0, 2, 1};
  conv2d_case(&a, KILN_DTYPE_FLOAT32);
  conv2d_case(&a, KILN_DTYPE_FLOAT64);
  conv2d_cfg dw = {1, 5, 6, 9, 5, 5, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1}; /* depthwise */
  conv2d_case(&dw, KILN_DTYPE_FLOAT32);
  conv2d_case(&dw, KILN_DTYPE_FLOAT16);
}

/* ConvTranspose is the adjoint of Conv: <conv(x, w), y> == <x, convT(y, w)> for the same W, strides,
 * dilations, group and pads, with output_padding making convT's output as large as x. */
static void test_convtranspose_adjoint(void **state) {
  (void)state;
  const int64_t N = 2, C = 4, H = 8, W = 7, M = 6, G = 2, KH = 3, KW = 2, s[] = {2, 3}, d[] = {1, 2};
  const int64_t pads[] = {1, 0, 1, 2};
  int64_t OH = (H + pads[0] + pads[2] - ((KH - 1) * d[0] + 1)) / s[0] + 1;
  int64_t OW = (W + pads[1] + pads[3] - ((KW - 1) * d[1] + 1)) / s[1] + 1;
  float *x = rand_buf(N * C * H * W), *w = rand_buf(M * (C / G) * KH * KW), *y = rand_buf(N * M * OH * OW);
  tin cin[2] = {{KILN_DTYPE_FLOAT32, 4, {N, C, H, W}, NULL, x}, {KILN_DTYPE_FLOAT32, 4, {M, C / G, KH, KW}, w, NULL}};
  tgraph tc = make_node(17, "Conv", 2, cin, 1);
  kiln_node *n = node_of(&tc);
  ASSERT_OK(kiln_node_set_ints(n, "pads", pads, 4));
  ASSERT_OK(kiln_node_set_ints(n, "strides", s, 2));
  ASSERT_OK(kiln_node_set_ints(n, "dilations", d, 2));
  ASSERT_OK(kiln_node_set_int(n, "group", G));
  parse_infer(&tc);
  expect_dims(out_val(&tc, 0), 4, (int64_t[]){N, M, OH, OW});
  kiln_tensor co[1];
  run_ref(&tc, cin, co);

  tin tin_[2] = {{KILN_DTYPE_FLOAT32, 4, {N, M, OH, OW}, NULL, y}, {KILN_DTYPE_FLOAT32, 4, {M, C / G, KH, KW}, w, NULL}};
  tgraph tt = make_node(17, "ConvTranspose", 2, tin_, 1);
  n = node_of(&tt);
  ASSERT_OK(kiln_node_set_ints(n, "pads", pads, 4));
  ASSERT_OK(kiln_node_set_ints(n, "strides", s, 2));
  ASSERT_OK(kiln_node_set_ints(n, "dilations", d, 2));
  ASSERT_OK(kiln_node_set_int(n, "group", G));
  int64_t op[2] = {H - (s[0] * (OH - 1) + (KH - 1) * d[0] + 1 - pads[0] - pads[2]),
                   W - (s[1] * (OW - 1) + (KW - 1) * d[1] + 1 - pads[1] - pads[3])};
  ASSERT_OK(kiln_node_set_ints(n, "output_padding", op, 2));
  parse_infer(&tt);
  expect_dims(out_val(&tt, 0), 4, (int64_t[]){N, C, H, W});
  kiln_tensor to[1];
  run_ref(&tt, tin_, to);
  double lhs = 0, rhs = 0;
  for (int64_t i = 0; i < N * M * OH * OW; i++) lhs += (double)((float *)co[0].data)[i] * y[i];
  for (int64_t i = 0; i < N * C * H * W; i++) rhs += (double)((float *)to[0].data)[i] * x[i];
  assert_close(lhs, rhs, 1e-5);
  free(x), free(w), free(y);
  free_all(&tc, co, 1);
  free_all(&tt, to, 1);
}

/* ---- pools ------------------------------------------------------------------------------------ */

static void test_maxpool(void **state) {
  (void)state;
  /* 3x5 input, kernel 2x2, stride 2, ceil_mode: out 2x3 (last windows hang over the edge) */
  float x[15] = {1, 9, 2, 3, 4, /**/ 5, 6, 7, 8, 0, /**/ 10, 2, 3, 11, -1};
  tin in[1] = {{KILN_DTYPE_FLOAT32, 4, {1, 1, 3, 5}, NULL, x}};
  tgraph t = make_node(12, "MaxPool", 1, in, 2);
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "kernel_shape", (int64_t[]){2, 2}, 2));
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "strides", (int64_t[]){2, 2}, 2));
  ASSERT_OK(kiln_node_set_int(node_of(&t), "ceil_mode", 1));
  ASSERT_OK(kiln_node_set_int(node_of(&t), "storage_order", 1));
  parse_infer(&t);
  expect_dims(out_val(&t, 0), 4, (int64_t[]){1, 1, 2, 3});
  assert_int_equal(out_val(&t, 1)->dtype, KILN_DTYPE_INT64);
  kiln_tensor out[2];
  run_ref(&t, in, out);
  const float want[] = {9, 8, 4, 10, 11, -1};
  /* column-major index of (h, w) = w * 3 + h */
  const int64_t idx[] = {1 * 3 + 0, 3 * 3 + 1, 4 * 3 + 0, 0 * 3 + 2, 3 * 3 + 2, 4 * 3 + 2};
  for (int i = 0; i < 6; i++) {
    assert_true(((float *)out[0].data)[i] == want[i]);
    assert_int_equal(((int64_t *)out[1].data)[i], idx[i]);
  }
  free_all(&t, out, 2);

  /* uint8 with pads and dilation 2 */
  uint8_t u[12] = {1, 200, 3, 4, 5, 6, 7, 8, 9, 10, 11, 250};
  tin in2[1] = {{KILN_DTYPE_UINT8, 3, {1, 2, 6}, NULL, u}};
  t = make_node(12, "MaxPool", 1, in2, 1);
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "kernel_shape", (int64_t[]){2}, 1));
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "dilations", (int64_t[]){2}, 1));
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "pads", (int64_t[]){1, 0}, 2));
  parse_infer(&t);
  expect_dims(out_val(&t, 0), 3, (int64_t[]){1, 2, 5});
  run_ref(&t, in2, out);
  const uint8_t uw[] = {200, 3, 200, 5, 6, 8, 9, 10, 11, 250};
  for (int i = 0; i < 10; i++) assert_int_equal(((uint8_t *)out[0].data)[i], uw[i]);
  free_all(&t, out, 1);

  /* kernel_shape is required; rank must match */
  t = make_node(12, "MaxPool", 1, in2, 1);
  expect_error(kiln_node_parse(t.g, node_of(&t)), KILN_ERR_PARSE, "kernel_shape");
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "kernel_shape", (int64_t[]){2, 2}, 2));
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t)));
  expect_error(kiln_node_infer(t.g, node_of(&t)), KILN_ERR_SHAPE, "rank");
  kiln_graph_destroy(t.g);
}

static void test_avgpool(void **state) {
  (void)state;
  float x[9];
  for (int i = 0; i < 9; i++) x[i] = 1;
  for (int cip = 0; cip < 2; cip++) {
    tin in[1] = {{KILN_DTYPE_FLOAT32, 4, {1, 1, 3, 3}, NULL, x}};
    tgraph t = make_node(17, "AveragePool", 1, in, 1);
    ASSERT_OK(kiln_node_set_ints(node_of(&t), "kernel_shape", (int64_t[]){3, 3}, 2));
    ASSERT_OK(kiln_node_set_ints(node_of(&t), "pads", (int64_t[]){1, 1, 1, 1}, 4));
    ASSERT_OK(kiln_node_set_int(node_of(&t), "count_include_pad", cip));
    parse_infer(&t);
    expect_dims(out_val(&t, 0), 4, (int64_t[]){1, 1, 3, 3});
    kiln_tensor out[1];
    run_ref(&t, in, out);
    const double want_inc[] = {4. / 9, 6. / 9, 4. / 9, 6. / 9, 1, 6. / 9, 4. / 9, 6. / 9, 4. / 9};
    for (int i = 0; i < 9; i++) assert_close(((float *)out[0].data)[i], cip ? want_inc[i] : 1.0, 1e-6);
    free_all(&t, out, 1);
  }
  /* GlobalAveragePool / GlobalMaxPool on 2x3x(2x3) */
  float *r = rand_buf(36);
  for (int k = 0; k < 2; k++) {
    tin in[1] = {{KILN_DTYPE_FLOAT32, 4, {2, 3, 2, 3}, NULL, r}};
    tgraph t = make_node(17, k ? "GlobalMaxPool" : "GlobalAveragePool", 1, in, 1);
    parse_infer(&t);
    expect_dims(out_val(&t, 0), 4, (int64_t[]){2, 3, 1, 1});
    kiln_tensor out[1];
    run_ref(&t, in, out);
    for (int pl = 0; pl < 6; pl++) {
      double s = 0, m = -INFINITY;
      for (int i = 0; i < 6; i++) s += r[pl * 6 + i], m = fmax(m, r[pl * 6 + i]);
      assert_close(((float *)out[0].data)[pl], k ? m : s / 6, 1e-6);
    }
    free_all(&t, out, 1);
  }
  free(r);
}

static void test_resize(void **state) {
  (void)state;
  /* linear, half_pixel, scales 2: the ONNX example */
  float x[4] = {1, 2, 3, 4}, sc[4] = {1, 1, 2, 2};
  tin in[3] = {{KILN_DTYPE_FLOAT32, 4, {1, 1, 2, 2}, NULL, x}, {KILN_DTYPE_FLOAT32, -2}, {KILN_DTYPE_FLOAT32, 1, {4}, sc}};
  tgraph t = make_node(13, "Resize", 3, in, 1);
  ASSERT_OK(kiln_node_set_string(node_of(&t), "mode", "linear"));
  parse_infer(&t);
  expect_dims(out_val(&t, 0), 4, (int64_t[]){1, 1, 4, 4}); /* static from the constant scales */
  kiln_tensor out[1];
  run_ref(&t, in, out);
  const float want[] = {1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4};
  for (int i = 0; i < 16; i++) assert_close(((float *)out[0].data)[i], want[i], 1e-6);
  free_all(&t, out, 1);

  /* nearest with sizes (asymmetric, floor) on a 1x5 row -> 1x3: x_orig = x * 5/3 */
  float r[5] = {10, 20, 30, 40, 50};
  int64_t sizes[2] = {1, 3};
  tin in2[4] = {{KILN_DTYPE_FLOAT32, 2, {1, 5}, NULL, r}, {KILN_DTYPE_FLOAT32, -2}, {KILN_DTYPE_FLOAT32, -2},
                {KILN_DTYPE_INT64, 1, {2}, sizes}};
  t = make_node(13, "Resize", 4, in2, 1);
  ASSERT_OK(kiln_node_set_string(node_of(&t), "coordinate_transformation_mode", "asymmetric"));
  ASSERT_OK(kiln_node_set_string(node_of(&t), "nearest_mode", "floor"));
  parse_infer(&t);
  expect_dims(out_val(&t, 0), 2, (int64_t[]){1, 3});
  run_ref(&t, in2, out);
  assert_true(((float *)out[0].data)[0] == 10 && ((float *)out[0].data)[1] == 20 && ((float *)out[0].data)[2] == 40);
  free_all(&t, out, 1);

  /* non-constant scales: dims unknown, rank kept; bad attribute values rejected */
  tin in3[3] = {{KILN_DTYPE_FLOAT32, 4, {1, 1, 2, 2}}, {KILN_DTYPE_FLOAT32, -2}, {KILN_DTYPE_FLOAT32, 1, {4}}};
  t = make_node(13, "Resize", 3, in3, 1);
  parse_infer(&t);
  assert_int_equal(out_val(&t, 0)->shape.rank, 4);
  assert_int_equal(out_val(&t, 0)->shape.dims[2], KILN_DIM_DYNAMIC);
  ASSERT_OK(kiln_node_set_string(node_of(&t), "mode", "cubicx"));
  expect_error(kiln_node_parse(t.g, node_of(&t)), KILN_ERR_PARSE, "cubicx");
  ASSERT_OK(kiln_node_set_string(node_of(&t), "mode", "cubic"));
  ASSERT_OK(kiln_node_set_string(node_of(&t), "coordinate_transformation_mode", "bogus"));
  expect_error(kiln_node_parse(t.g, node_of(&t)), KILN_ERR_PARSE, "coordinate_transformation_mode");
  kiln_graph_destroy(t.g);

  /* Upsample-7: scales attribute, nearest */
  tin in4[1] = {{KILN_DTYPE_FLOAT32, 4, {1, 1, 2, 2}, NULL, x}};
  t = make_node(7, "Upsample", 1, in4, 1);
  ASSERT_OK(kiln_node_set_floats(node_of(&t), "scales", (float[]){1, 1, 2, 3}, 4));
  parse_infer(&t);
  expect_dims(out_val(&t, 0), 4, (int64_t[]){1, 1, 4, 6});
  run_ref(&t, in4, out);
  for (int h = 0; h < 4; h++)
    for (int w = 0; w < 6; w++) assert_true(((float *)out[0].data)[h * 6 + w] == x[(h / 2) * 2 + w / 3]);
  free_all(&t, out, 1);
}

/* ---- norms ------------------------------------------------------------------------------------ */

static void test_norms(void **state) {
  (void)state;
  /* LayerNormalization over the last two dims of 2x3x5, Scale [5] broadcast, with Mean/InvStdDev */
  float *x = rand_buf(30), *s = rand_buf(5), *b = rand_buf(15);
  tin in[3] = {{KILN_DTYPE_FLOAT32, 3, {2, 3, 5}, NULL, x}, {KILN_DTYPE_FLOAT32, 1, {5}, s},
               {KILN_DTYPE_FLOAT32, 2, {3, 5}, b}};
  tgraph t = make_node(17, "LayerNormalization", 3, in, 3);
  ASSERT_OK(kiln_node_set_int(node_of(&t), "axis", -2));
  parse_infer(&t);
  expect_dims(out_val(&t, 1), 3, (int64_t[]){2, 1, 1});
  kiln_tensor out[3];
  run_ref(&t, in, out);
  for (int o = 0; o < 2; o++) {
    double m = 0, v = 0;
    for (int i = 0; i < 15; i++) m += x[o * 15 + i];
    m /= 15;
    for (int i = 0; i < 15; i++) v += (x[o * 15 + i] - m) * (x[o * 15 + i] - m);
    double inv = 1 / sqrt(v / 15 + 1e-5);
    assert_close(((float *)out[1].data)[o], m, 1e-6);
    assert_close(((float *)out[2].data)[o], inv, 1e-6);
    for (int i = 0; i < 15; i++)
      assert_close(((float *)out[0].data)[o * 15 + i], (x[o * 15 + i] - m) * inv * s[i % 5] + b[i], 1e-5);
  }
  free_all(&t, out, 3);

  /* BatchNormalization (inference) and InstanceNormalization on 2x3x4 */
  float var[3] = {0.5f, 1.5f, 2.0f};
  tin bn[5] = {{KILN_DTYPE_FLOAT32, 3, {2, 3, 4}, NULL, x}, {KILN_DTYPE_FLOAT32, 1, {3}, s},
               {KILN_DTYPE_FLOAT32, 1, {3}, b}, {KILN_DTYPE_FLOAT32, 1, {3}, b + 3}, {KILN_DTYPE_FLOAT32, 1, {3}, var}};
  t = make_node(15, "BatchNormalization", 5, bn, 1);
  ASSERT_OK(kiln_node_set_float(node_of(&t), "epsilon", 1e-3f));
  parse_infer(&t);
  run_ref(&t, bn, out);
  for (int i = 0; i < 24; i++) {
    int c = (i / 4) % 3;
    assert_close(((float *)out[0].data)[i], (x[i] - b[3 + c]) / sqrt(var[c] + 1e-3) * s[c] + b[c], 1e-5);
  }
  free_all(&t, out, 1);
  t = make_node(15, "InstanceNormalization", 3, bn, 1);
  parse_infer(&t);
  run_ref(&t, bn, out);
  for (int pl = 0; pl < 6; pl++) {
    double m = 0, v = 0;
    for (int i = 0; i < 4; i++) m += x[pl * 4 + i] / 4.0;
    for (int i = 0; i < 4; i++) v += (x[pl * 4 + i] - m) * (x[pl * 4 + i] - m) / 4.0;
    for (int i = 0; i < 4; i++)
      assert_close(((float *)out[0].data)[pl * 4 + i], (x[pl * 4 + i] - m) / sqrt(v + 1e-5) * s[pl % 3] + b[pl % 3],
                   1e-5);
  }
  free_all(&t, out, 1);
  /* BN training outputs before opset 14 are refused; LRN size must be positive */
  t = make_node(9, "BatchNormalization", 5, bn, 3);
  expect_error(kiln_node_parse(t.g, node_of(&t)), KILN_ERR_UNSUPPORTED, "training");
  kiln_graph_destroy(t.g);

  /* LRN size 3 on 1x4x1x2 */
  tin ln[1] = {{KILN_DTYPE_FLOAT32, 4, {1, 4, 1, 2}, NULL, x}};
  t = make_node(13, "LRN", 1, ln, 1);
  expect_error(kiln_node_parse(t.g, node_of(&t)), KILN_ERR_PARSE, "size");
  ASSERT_OK(kiln_node_set_int(node_of(&t), "size", 3));
  parse_infer(&t);
  run_ref(&t, ln, out);
  for (int c = 0; c < 4; c++)
    for (int i = 0; i < 2; i++) {
      double sq = 0;
      for (int cc = c - 1; cc <= c + 1; cc++)
        if (cc >= 0 && cc < 4) sq += (double)x[cc * 2 + i] * x[cc * 2 + i];
      assert_close(((float *)out[0].data)[c * 2 + i], x[c * 2 + i] / pow(1 + 1e-4 / 3 * sq, 0.75), 1e-6);
    }
  free_all(&t, out, 1);
  free(x), free(s), free(b);
}

/* ---- matrix ----------------------------------------------------------------------------------- */

static void test_matmul(void **state) {
  (void)state;
  /* batch broadcast: [2,1,3,5] x [4,5,2] -> [2,4,3,2] */
  float *a = rand_buf(30), *b = rand_buf(40);
  tin in[2] = {{KILN_DTYPE_FLOAT32, 4, {2, 1, 3, 5}, NULL, a}, {KILN_DTYPE_FLOAT32, 3, {4, 5, 2}, NULL, b}};
  tgraph t = make_node(13, "MatMul", 2, in, 1);
  parse_infer(&t);
  expect_dims(out_val(&t, 0), 4, (int64_t[]){2, 4, 3, 2});
  assert_int_equal(kiln_node_macs(t.g, node_of(&t)), 2 * 4 * 3 * 2 * 5);
  kiln_tensor out[1];
  run_ref(&t, in, out);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++)
      for (int m = 0; m < 3; m++)
        for (int n = 0; n < 2; n++) {
          double acc = 0;
          for (int k = 0; k < 5; k++) acc += (double)a[(i * 3 + m) * 5 + k] * b[(j * 5 + k) * 2 + n];
          assert_close(((float *)out[0].data)[((i * 4 + j) * 3 + m) * 2 + n], acc, 1e-6);
        }
  free_all(&t, out, 1);

  /* 1-D operands: [5] x [4,5,2] -> [4,2]; [5] x [5] -> scalar */
  tin in2[2] = {{KILN_DTYPE_FLOAT32, 1, {5}, NULL, a}, {KILN_DTYPE_FLOAT32, 3, {4, 5, 2}, NULL, b}};
  t = make_node(13, "MatMul", 2, in2, 1);
  parse_infer(&t);
  expect_dims(out_val(&t, 0), 2, (int64_t[]){4, 2});
  run_ref(&t, in2, out);
  for (int j = 0; j < 4; j++)
    for (int n = 0; n < 2; n++) {
      double acc = 0;
      for (int k = 0; k < 5; k++) acc += (double)a[k] * b[(j * 5 + k) * 2 + n];
      assert_close(((float *)out[0].data)[j * 2 + n], acc, 1e-6);
    }
  free_all(&t, out, 1);
  tin in3[2] = {{KILN_DTYPE_FLOAT32, 1, {5}, NULL, a}, {KILN_DTYPE_FLOAT32, 1, {5}, NULL, b}};
  t = make_node(13, "MatMul", 2, in3, 1);
  parse_infer(&t);
  assert_int_equal(out_val(&t, 0)->shape.rank, 0);
  run_ref(&t, in3, out);
  double dot = 0;
  for (int k = 0; k < 5; k++) dot += (double)a[k] * b[k];
  assert_close(((float *)out[0].data)[0], dot, 1e-6);
  free_all(&t, out, 1);

  /* int32 wraps; K mismatch is a shape error */
  int32_t ia[2] = {INT32_MAX, 2}, ib[2] = {2, 3};
  tin in4[2] = {{KILN_DTYPE_INT32, 2, {1, 2}, NULL, ia}, {KILN_DTYPE_INT32, 2, {2, 1}, NULL, ib}};
  t = make_node(13, "MatMul", 2, in4, 1);
  parse_infer(&t);
  run_ref(&t, in4, out);
  assert_int_equal(((int32_t *)out[0].data)[0], (int32_t)((uint32_t)INT32_MAX * 2u + 6u));
  free_all(&t, out, 1);
  tin in5[2] = {{KILN_DTYPE_FLOAT32, 2, {3, 4}}, {KILN_DTYPE_FLOAT32, 2, {5, 2}}};
  t = make_node(13, "MatMul", 2, in5, 1);
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t)));
  expect_error(kiln_node_infer(t.g, node_of(&t)), KILN_ERR_SHAPE, "K");
  kiln_graph_destroy(t.g);
  free(a), free(b);
}

static void test_gemm(void **state) {
  (void)state;
  /* transA, transB, alpha, beta, C [N] broadcast: A is [K=4, M=3], B is [N=5, K=4] */
  float *a = rand_buf(12), *b = rand_buf(20), *c = rand_buf(5);
  tin in[3] = {{KILN_DTYPE_FLOAT32, 2, {4, 3}, NULL, a}, {KILN_DTYPE_FLOAT32, 2, {5, 4}, b},
               {KILN_DTYPE_FLOAT32, 1, {5}, c}};
  tgraph t = make_node(13, "Gemm", 3, in, 1);
  ASSERT_OK(kiln_node_set_int(node_of(&t), "transA", 1));
  ASSERT_OK(kiln_node_set_int(node_of(&t), "transB", 1));
  ASSERT_OK(kiln_node_set_float(node_of(&t), "alpha", 0.5f));
  ASSERT_OK(kiln_node_set_float(node_of(&t), "beta", -2.0f));
  parse_infer(&t);
  expect_dims(out_val(&t, 0), 2, (int64_t[]){3, 5});
  assert_int_equal(kiln_node_macs(t.g, node_of(&t)), 3 * 5 * 4);
  kiln_tensor out[1];
  run_ref(&t, in, out);
  for (int m = 0; m < 3; m++)
    for (int n = 0; n < 5; n++) {
      double acc = 0;
      for (int k = 0; k < 4; k++) acc += (double)a[k * 3 + m] * b[n * 4 + k];
      assert_close(((float *)out[0].data)[m * 5 + n], 0.5 * acc - 2.0 * c[n], 1e-6);
    }
  free_all(&t, out, 1);
  /* C is required before opset 11 */
  t = make_node(9, "Gemm", 2, in, 1);
  expect_error(kiln_node_parse(t.g, node_of(&t)), KILN_ERR_PARSE, "inputs");
  kiln_graph_destroy(t.g);
  free(a), free(b), free(c);
}

static void test_einsum(void **state) {
  (void)state;
  float *a = rand_buf(2 * 3 * 4), *b = rand_buf(2 * 4 * 5), *sq = rand_buf(2 * 3 * 3);
  kiln_tensor out[1];
  /* batched matmul with spaces in the equation */
  tin in[2] = {{KILN_DTYPE_FLOAT32, 3, {2, 3, 4}, NULL, a}, {KILN_DTYPE_FLOAT32, 3, {2, 4, 5}, NULL, b}};
  tgraph t = make_node(12, "Einsum", 2, in, 1);
  ASSERT_OK(kiln_node_set_string(node_of(&t), "equation", "bij, bjk -> bik"));
  parse_infer(&t);
  expect_dims(out_val(&t, 0), 3, (int64_t[]){2, 3, 5});
  assert_int_equal(kiln_node_macs(t.g, node_of(&t)), 2 * 3 * 4 * 5);
  run_ref(&t, in, out);
  for (int bb = 0; bb < 2; bb++)
    for (int i = 0; i < 3; i++)
      for (int k = 0; k < 5; k++) {
        double acc = 0;
        for (int j = 0; j < 4; j++) acc += (double)a[(bb * 3 + i) * 4 + j] * b[(bb * 4 + j) * 5 + k];
        assert_close(((float *)out[0].data)[(bb * 3 + i) * 5 + k], acc, 1e-6);
      }
  free_all(&t, out, 1);

  /* implicit output: "...ii" -> "...i" is not implicit; "...ii->...i" takes diagonals */
  tin in2[1] = {{KILN_DTYPE_FLOAT32, 3, {2, 3, 3}, NULL, sq}};
  t = make_node(12, "Einsum", 1, in2, 1);
  ASSERT_OK(kiln_node_set_string(node_of(&t), "equation", "...ii->...i"));
  parse_infer(&t);
  expect_dims(out_val(&t, 0), 2, (int64_t[]){2, 3});
  run_ref(&t, in2, out);
  for (int bb = 0; bb < 2; bb++)
    for (int i = 0; i < 3; i++) assert_true(((float *)out[0].data)[bb * 3 + i] == sq[(bb * 3 + i) * 3 + i]);
  free_all(&t, out, 1);

  /* implicit mode: "kj,ji" -> labels used once, sorted: "ik"... here "ik" => [i, k] */
  tin in3[2] = {{KILN_DTYPE_FLOAT32, 2, {5, 4}, NULL, b}, {KILN_DTYPE_FLOAT32, 2, {4, 3}, NULL, a}};
  t = make_node(12, "Einsum", 2, in3, 1);
  ASSERT_OK(kiln_node_set_string(node_of(&t), "equation", "kj,ji"));
  parse_infer(&t);
  expect_dims(out_val(&t, 0), 2, (int64_t[]){3, 5});
  run_ref(&t, in3, out);
  for (int i = 0; i < 3; i++)
    for (int k = 0; k < 5; k++) {
      double acc = 0;
      for (int j = 0; j < 4; j++) acc += (double)b[k * 4 + j] * a[j * 3 + i];
      assert_close(((float *)out[0].data)[i * 5 + k], acc, 1e-6);
    }
  free_all(&t, out, 1);

  /* full reduction to a scalar, int64 */
  int64_t iv[6] = {1, 2, 3, 4, 5, 6};
  tin in4[1] = {{KILN_DTYPE_INT64, 2, {2, 3}, NULL, iv}};
  t = make_node(12, "Einsum", 1, in4, 1);
  ASSERT_OK(kiln_node_set_string(node_of(&t), "equation", "ij->"));
  parse_infer(&t);
  assert_int_equal(out_val(&t, 0)->shape.rank, 0);
  run_ref(&t, in4, out);
  assert_int_equal(((int64_t *)out[0].data)[0], 21);
  free_all(&t, out, 1);

  /* errors */
  t = make_node(12, "Einsum", 2, in, 1);
  ASSERT_OK(kiln_node_set_string(node_of(&t), "equation", "bij,bjk->bid"));
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t)));
  expect_error(kiln_node_infer(t.g, node_of(&t)), KILN_ERR_SHAPE, "'d'");
  ASSERT_OK(kiln_node_set_string(node_of(&t), "equation", "bij,bkk->bik"));
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t)));
  expect_error(kiln_node_infer(t.g, node_of(&t)), KILN_ERR_SHAPE, "sizes");
  ASSERT_OK(kiln_node_set_string(node_of(&t), "equation", "bij->bi"));
  expect_error(kiln_node_parse(t.g, node_of(&t)), KILN_ERR_PARSE, "operands");
  ASSERT_OK(kiln_node_set_string(node_of(&t), "equation", "b.j,bjk"));
  expect_error(kiln_node_parse(t.g, node_of(&t)), KILN_ERR_PARSE, "'.'");
  kiln_graph_destroy(t.g);
  free(a), free(b), free(sq);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conv_infer), cmocka_unit_test(test_conv_ref),  cmocka_unit_test(test_convtranspose_adjoint),
      cmocka_unit_test(test_maxpool),    cmocka_unit_test(test_avgpool),   cmocka_unit_test(test_resize),
      cmocka_unit_test(test_norms),      cmocka_unit_test(test_matmul),    cmocka_unit_test(test_gemm),
      cmocka_unit_test(test_einsum),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
