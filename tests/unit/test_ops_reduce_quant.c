/* reduce / quant / detect families: parse, infer, macs and reference kernels on tiny graphs with odd
 * shapes, checked against independently computed expectations. */
#include "testlib.h"

#include "backend/cpu/reference/reference.h"
#include "core/dtype.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rng_state = 12345;
static float frand(void) { /* uniform [-2, 2) */
  rng_state = rng_state * 1664525u + 1013904223u;
  return (float)((rng_state >> 8) & 0xffff) / 16384.0f - 2.0f;
}

typedef struct tgraph {
  kiln_graph *g;
  int32_t node;
} tgraph;

/* A graph with one node; inputs are constants (data != NULL) or plain tensors, outputs fresh values. */
static tgraph make_node(int64_t opset, const char *op, int n_in, const kiln_dtype *dts, const int32_t *ranks,
                        const int64_t *const *dims, const void *const *data, int n_out) {
  tgraph t;
  ASSERT_OK(kiln_graph_create(&t.g));
  t.g->opset = opset;
  int32_t in[16], out[4];
  for (int i = 0; i < n_in; i++) {
    char name[16];
    snprintf(name, sizeof name, "in%d", i);
    if (!ranks || ranks[i] < -1) {
      in[i] = -1; /* omitted optional input */
      continue;
    }
    in[i] = test_add_tensor(t.g, name, dts[i], ranks[i], dims[i]);
    if (ranks[i] == -1) kiln_shape_unknown(&t.g->values[in[i]].shape);
    if (data && data[i]) {
      kiln_shape s = t.g->values[in[i]].shape;
      ASSERT_OK(kiln_value_set_constant(t.g, in[i], dts[i], &s, data[i]));
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

/* Parse + infer, then run the reference kernel with poisoned outputs; outputs become owned buffers. */
static void run_ref(tgraph *t, kiln_tensor *out) {
  kiln_node *n = node_of(t);
  ASSERT_OK(kiln_node_parse(t->g, n));
  ASSERT_OK(kiln_node_infer(t->g, n));
  kiln_tensor in[16];
  for (int i = 0; i < n->n_inputs; i++) {
    memset(&in[i], 0, sizeof in[i]);
    if (n->inputs[i] >= 0) kiln_value_as_tensor(&t->g->values[n->inputs[i]], &in[i]);
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

static void free_outs(tgraph *t, kiln_tensor *out, int n) {
  for (int i = 0; i < n; i++) free(out[i].data);
  kiln_graph_destroy(t->g);
}

static const kiln_shape *out_shape(tgraph *t, int i) { return &t->g->values[node_of(t)->outputs[i]].shape; }

/* ---- softmax family ----------------------------------------------------------------------------------- */
static void check_softmax(int64_t opset, const char *op, int64_t axis, bool set_axis) {
  int64_t d[3] = {2, 3, 5};
  float x[30];
  for (int i = 0; i < 30; i++) x[i] = frand() * 3;
  const int64_t *dims[1] = {d};
  const void *data[1] = {x};
  int32_t rank = 3;
  kiln_dtype dt = KILN_DTYPE_FLOAT32;
  tgraph t = make_node(opset, op, 1, &dt, &rank, dims, data, 1);
  if (set_axis) ASSERT_OK(kiln_node_set_int(node_of(&t), "axis", axis));
  kiln_tensor out[1];
  run_ref(&t, out);
  const float *y = out[0].data;
  int32_t a = (int32_t)(axis < 0 ? axis + 3 : axis);
  /* groups: before 13 the flattened tail [a:] is one group; from 13 only dim a varies */
  for (int i = 0; i < 30; i++) {
    int c[3] = {i / 15, (i / 5) % 3, i % 5};
    double mx = -INFINITY, sum = 0;
    int argmax = -1;
    for (int j = 0; j < 30; j++) {
      int e[3] = {j / 15, (j / 5) % 3, j % 5};
      bool same = true;
      for (int k = 0; k < 3; k++)
        if (opset < 13 ? (k < a && e[k] != c[k]) : (k != a && e[k] != c[k])) same = false;
      if (!same) continue;
      if (x[j] > mx) mx = x[j], argmax = j;
    }
    for (int j = 0; j < 30; j++) {
      int e[3] = {j / 15, (j / 5) % 3, j % 5};
      bool same = true;
      for (int k = 0; k < 3; k++)
        if (opset < 13 ? (k < a && e[k] != c[k]) : (k != a && e[k] != c[k])) same = false;
      if (same) sum += exp(x[j] - mx);
    }
    double expect = !strcmp(op, "Softmax") ? exp(x[i] - mx) / sum
                    : !strcmp(op, "LogSoftmax") ? x[i] - mx - log(sum)
                                                : (double)(i == argmax);
    assert_true(fabs(y[i] - expect) < 1e-5);
  }
  free_outs(&t, out, 1);
}

static void test_softmax(void **state) {
  check_softmax(11, "Softmax", 1, false); /* default axis 1, coerced to 2-D */
  check_softmax(13, "Softmax", -1, false); /* default axis -1 */
  check_softmax(13, "LogSoftmax", 1, true);
  check_softmax(11, "LogSoftmax", 2, true);
  check_softmax(13, "Hardmax", 0, true);
  check_softmax(11, "Hardmax", 1, true);
}

/* ---- reductions --------------------------------------------------------------------------------------- */
static double reduce_expect(const char *op, const float *x, const int64_t *d, const bool *mask, const int *oc) {
  double acc = 0, mx = -INFINITY, prod = 1, mn = INFINITY;
  int64_t count = 0;
  for (int64_t i = 0; i < d[0]; i++)
    for (int64_t j = 0; j < d[1]; j++)
      for (int64_t k = 0; k < d[2]; k++) {
        int64_t c[3] = {i, j, k};
        bool in = true;
        for (int q = 0; q < 3; q++)
          if (!mask[q] && c[q] != oc[q]) in = false;
        if (!in) continue;
        double v = x[(i * d[1] + j) * d[2] + k];
        count++;
        if (!strcmp(op, "ReduceL1")) acc += fabs(v);
        else if (!strcmp(op, "ReduceL2") || !strcmp(op, "ReduceSumSquare")) acc += v * v;
        else if (!strcmp(op, "ReduceLogSumExp")) acc += exp(v);
        else acc += v;
        prod *= v;
        mx = fmax(mx, v);
        mn = fmin(mn, v);
      }
  if (!strcmp(op, "ReduceMean")) return acc / (double)count;
  if (!strcmp(op, "ReduceMax")) return mx;
  if (!strcmp(op, "ReduceMin")) return mn;
  if (!strcmp(op, "ReduceProd")) return prod;
  if (!strcmp(op, "ReduceL2")) return sqrt(acc);
  if (!strcmp(op, "ReduceLogSum") || !strcmp(op, "ReduceLogSumExp")) return log(acc);
  return acc;
}

static void check_reduce(int64_t opset, const char *op, const int64_t *axes, int n_axes, bool keepdims) {
  int64_t d[3] = {3, 4, 5}, ad[1] = {n_axes};
  float x[60];
  for (int i = 0; i < 60; i++) x[i] = !strcmp(op, "ReduceLogSum") ? fabsf(frand()) + 0.1f : frand();
  bool from_input = opset >= (strcmp(op, "ReduceSum") ? 18 : 13);
  const int64_t *dims[2] = {d, ad};
  const void *data[2] = {x, axes};
  int32_t ranks[2] = {3, 1};
  kiln_dtype dts[2] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_INT64};
  tgraph t = make_node(opset, op, from_input && n_axes ? 2 : 1, dts, ranks, dims, data, 1);
  if (!from_input && n_axes) ASSERT_OK(kiln_node_set_ints(node_of(&t), "axes", axes, (size_t)n_axes));
  ASSERT_OK(kiln_node_set_int(node_of(&t), "keepdims", keepdims));
  kiln_tensor out[1];
  run_ref(&t, out);
  bool mask[3] = {n_axes == 0, n_axes == 0, n_axes == 0};
  for (int i = 0; i < n_axes; i++) mask[axes[i] < 0 ? axes[i] + 3 : axes[i]] = true;
  const kiln_shape *s = out_shape(&t, 0);
  int r = 0;
  for (int q = 0; q < 3; q++)
    if (!mask[q] || keepdims) assert_int_equal(s->dims[r++], mask[q] ? 1 : d[q]);
  assert_int_equal(s->rank, r);
  const float *y = out[0].data;
  int64_t o = 0;
  for (int i = 0; i < (mask[0] ? 1 : 3); i++)
    for (int j = 0; j < (mask[1] ? 1 : 4); j++)
      for (int k = 0; k < (mask[2] ? 1 : 5); k++) {
        int oc[3] = {i, j, k};
        double e = reduce_expect(op, x, d, mask, oc);
        assert_true(fabs(y[o] - e) <= 1e-5 * (1 + fabs(e)));
        o++;
      }
  free_outs(&t, out, 1);
}

static void test_reduce(void **state) {
  static const char *ops[] = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
                              "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"};
  int64_t a1[] = {1}, a2[] = {0, -1}, a3[] = {2, 0, 1};
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    for (int64_t opset = 11; opset <= 18; opset += 7) {
      check_reduce(opset, ops[i], a1, 1, true);
      check_reduce(opset, ops[i], a2, 2, false);
      check_reduce(opset, ops[i], a3, 3, true);
      check_reduce(opset, ops[i], NULL, 0, false); /* empty axes: reduce all */
    }
}

static void test_reduce_noop_and_errors(void **state) {
  int64_t d[2] = {3, 4}, ad[1] = {0};
  float x[12] = {0};
  int64_t axes[1] = {0};
  const int64_t *dims[2] = {d, ad};
  const void *data[2] = {x, axes};
  int32_t ranks[2] = {2, 1};
  kiln_dtype dts[2] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_INT64};
  /* noop_with_empty_axes + empty axes input = identity */
  tgraph t = make_node(13, "ReduceSum", 2, dts, ranks, dims, data, 1);
  ASSERT_OK(kiln_node_set_int(node_of(&t), "noop_with_empty_axes", 1));
  kiln_tensor out[1];
  run_ref(&t, out);
  assert_int_equal(out_shape(&t, 0)->rank, 2);
  assert_int_equal(out_shape(&t, 0)->dims[1], 4);
  free_outs(&t, out, 1);
  /* out-of-range and repeated axes, bad keepdims, attribute axes after opset 18 */
  int64_t bad[2] = {2, 0}, rep[2] = {1, -1};
  t = make_node(11, "ReduceMax", 1, dts, ranks, dims, data, 1);
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "axes", bad, 2));
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t)));
  expect_error(kiln_node_infer(t.g, node_of(&t)), KILN_ERR_SHAPE, "out of range");
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "axes", rep, 2));
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t)));
  expect_error(kiln_node_infer(t.g, node_of(&t)), KILN_ERR_SHAPE, "more than once");
  ASSERT_OK(kiln_node_set_int(node_of(&t), "keepdims", 2));
  expect_error(kiln_node_parse(t.g, node_of(&t)), KILN_ERR_PARSE, "keepdims");
  kiln_graph_destroy(t.g);
  t = make_node(18, "ReduceMax", 1, dts, ranks, dims, data, 1);
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "axes", axes, 1));
  expect_error(kiln_node_parse(t.g, node_of(&t)), KILN_ERR_PARSE, "axes");
  kiln_graph_destroy(t.g);
  /* non-constant axes input: keepdims keeps the rank with unknown dims; otherwise rank unknown */
  const void *nodata[2] = {NULL, NULL};
  t = make_node(18, "ReduceMean", 2, dts, ranks, dims, nodata, 1);
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t)));
  ASSERT_OK(kiln_node_infer(t.g, node_of(&t)));
  assert_int_equal(out_shape(&t, 0)->rank, 2);
  assert_int_equal(out_shape(&t, 0)->dims[0], KILN_DIM_DYNAMIC);
  ASSERT_OK(kiln_node_set_int(node_of(&t), "keepdims", 0));
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t)));
  ASSERT_OK(kiln_node_infer(t.g, node_of(&t)));
  assert_int_equal(out_shape(&t, 0)->rank, -1);
  kiln_graph_destroy(t.g);
  /* unknown input rank propagates */
  int32_t urank[1] = {-1};
  t = make_node(11, "ReduceSum", 1, dts, urank, dims, nodata, 1);
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t)));
  ASSERT_OK(kiln_node_infer(t.g, node_of(&t)));
  assert_int_equal(out_shape(&t, 0)->rank, -1);
  kiln_graph_destroy(t.g);
}

static void test_reduce_int(void **state) {
  int64_t d[2] = {2, 3};
  int32_t x[6] = {1, -7, 3, 4, 5, -6};
  const int64_t *dims[1] = {d};
  const void *data[1] = {x};
  int32_t rank = 2;
  kiln_dtype dt = KILN_DTYPE_INT32;
  int64_t ax[1] = {1};
  tgraph t = make_node(11, "ReduceMax", 1, &dt, &rank, dims, data, 1);
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "axes", ax, 1));
  kiln_tensor out[1];
  run_ref(&t, out);
  assert_int_equal(((int32_t *)out[0].data)[0], 3);
  assert_int_equal(((int32_t *)out[0].data)[1], 5);
  free_outs(&t, out, 1);
  t = make_node(11, "ReduceProd", 1, &dt, &rank, dims, data, 1);
  ASSERT_OK(kiln_node_set_int(node_of(&t), "keepdims", 0));
  run_ref(&t, out);
  assert_int_equal(out_shape(&t, 0)->rank, 0);
  assert_int_equal(((int32_t *)out[0].data)[0], 1 * -7 * 3 * 4 * 5 * -6);
  free_outs(&t, out, 1);
}

/* ---- CumSum, TopK, ArgMax ---------------------------------------------------------------------------- */
static void test_cumsum(void **state) {
  int64_t d[2] = {2, 3}, sd[1] = {0};
  double x[6] = {1, 2, 3, 4, 5, 6};
  int32_t axis = 1;
  const int64_t *dims[2] = {d, sd};
  const void *data[2] = {x, &axis};
  int32_t ranks[2] = {2, 0};
  kiln_dtype dts[2] = {KILN_DTYPE_FLOAT64, KILN_DTYPE_INT32};
  tgraph t = make_node(14, "CumSum", 2, dts, ranks, dims, data, 1);
  ASSERT_OK(kiln_node_set_int(node_of(&t), "exclusive", 1));
  ASSERT_OK(kiln_node_set_int(node_of(&t), "reverse", 1));
  kiln_tensor out[1];
  run_ref(&t, out);
  double expect[6] = {5, 3, 0, 11, 6, 0};
  for (int i = 0; i < 6; i++) assert_true(((double *)out[0].data)[i] == expect[i]);
  free_outs(&t, out, 1);
}

static void test_topk(void **state) {
  int64_t d[2] = {2, 5}, kd[1] = {1};
  float x[10] = {1, 3, 3, 2, 0, /**/ -1, -1, 4, -1, 2};
  int64_t k = 3;
  const int64_t *dims[2] = {d, kd};
  const void *data[2] = {x, &k};
  int32_t ranks[2] = {2, 1};
  kiln_dtype dts[2] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_INT64};
  tgraph t = make_node(11, "TopK", 2, dts, ranks, dims, data, 2);
  kiln_tensor out[2];
  run_ref(&t, out);
  assert_int_equal(out_shape(&t, 0)->dims[1], 3);
  float ev[6] = {3, 3, 2, 4, 2, -1};
  int64_t ei[6] = {1, 2, 3, 2, 4, 0}; /* ties: lower index first */
  for (int i = 0; i < 6; i++) {
    assert_true(((float *)out[0].data)[i] == ev[i]);
    assert_int_equal(((int64_t *)out[1].data)[i], ei[i]);
  }
  free_outs(&t, out, 2);
  t = make_node(11, "TopK", 2, dts, ranks, dims, data, 2);
  ASSERT_OK(kiln_node_set_int(node_of(&t), "largest", 0));
  run_ref(&t, out);
  int64_t si[6] = {4, 0, 3, 0, 1, 3};
  for (int i = 0; i < 6; i++) assert_int_equal(((int64_t *)out[1].data)[i], si[i]);
  free_outs(&t, out, 2);
  /* opset 1: k attribute; K too large is a shape error */
  t = make_node(9, "TopK", 1, dts, ranks, dims, data, 2);
  ASSERT_OK(kiln_node_set_int(node_of(&t), "k", 6));
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t)));
  expect_error(kiln_node_infer(t.g, node_of(&t)), KILN_ERR_SHAPE, "exceeds");
  kiln_graph_destroy(t.g);
  /* non-constant K: dynamic dim along the axis */
  const void *nodata[2] = {NULL, NULL};
  t = make_node(11, "TopK", 2, dts, ranks, dims, nodata, 2);
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t)));
  ASSERT_OK(kiln_node_infer(t.g, node_of(&t)));
  assert_int_equal(out_shape(&t, 1)->dims[1], KILN_DIM_DYNAMIC);
  assert_int_equal(t.g->values[node_of(&t)->outputs[1]].dtype, KILN_DTYPE_INT64);
  kiln_graph_destroy(t.g);
}

static void test_argmax(void **state) {
  int64_t d[2] = {2, 4};
  uint8_t x[8] = {1, 7, 7, 2, 9, 0, 9, 0};
  const int64_t *dims[1] = {d};
  const void *data[1] = {x};
  int32_t rank = 2;
  kiln_dtype dt = KILN_DTYPE_UINT8;
  for (int last = 0; last < 2; last++) {
    tgraph t = make_node(13, "ArgMax", 1, &dt, &rank, dims, data, 1);
    ASSERT_OK(kiln_node_set_int(node_of(&t), "axis", -1));
    ASSERT_OK(kiln_node_set_int(node_of(&t), "select_last_index", last));
    kiln_tensor out[1];
    run_ref(&t, out);
    assert_int_equal(out_shape(&t, 0)->rank, 2);
    assert_int_equal(((int64_t *)out[0].data)[0], last ? 2 : 1);
    assert_int_equal(((int64_t *)out[0].data)[1], last ? 2 : 0);
    free_outs(&t, out, 1);
    t = make_node(13, "ArgMin", 1, &dt, &rank, dims, data, 1);
    ASSERT_OK(kiln_node_set_int(node_of(&t), "axis", 1));
    ASSERT_OK(kiln_node_set_int(node_of(&t), "keepdims", 0));
    ASSERT_OK(kiln_node_set_int(node_of(&t), "select_last_index", last));
    run_ref(&t, out);
    assert_int_equal(out_shape(&t, 0)->rank, 1);
    assert_int_equal(((int64_t *)out[0].data)[1], last ? 3 : 1);
    free_outs(&t, out, 1);
  }
}

/* ---- quantization ------------------------------------------------------------------------------------- */
static void test_quantize(void **state) {
  int64_t d[2] = {2, 4}, sd[1] = {2};
  float x[8] = {0.5f, 1.5f, 2.5f, -0.5f, 300, -300, 7, -2.5f};
  float scale[2] = {1, 0.5f};
  int8_t zp[2] = {0, 1};
  const int64_t *dims[3] = {d, sd, sd};
  const void *data[3] = {x, scale, zp};
  int32_t ranks[3] = {2, 0, 0};
  kiln_dtype dts[3] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT32, KILN_DTYPE_UINT8};
  /* per-tensor uint8, no zero point: round half to even, saturate */
  tgraph t = make_node(13, "QuantizeLinear", 2, dts, ranks, dims, data, 1);
  kiln_tensor out[1];
  run_ref(&t, out);
  assert_int_equal(t.g->values[node_of(&t)->outputs[0]].dtype, KILN_DTYPE_UINT8);
  uint8_t eu[8] = {0, 2, 2, 0, 255, 0, 7, 0};
  assert_memory_equal(out[0].data, eu, 8);
  free_outs(&t, out, 1);
  /* per-axis int8 along axis 0 */
  int32_t ranks2[3] = {2, 1, 1};
  kiln_dtype dts2[3] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT32, KILN_DTYPE_INT8};
  t = make_node(13, "QuantizeLinear", 3, dts2, ranks2, dims, data, 1);
  ASSERT_OK(kiln_node_set_int(node_of(&t), "axis", 0));
  run_ref(&t, out);
  int8_t ei[8] = {0, 2, 2, 0, 127, -128, 15, -4}; /* row 1: x/0.5 + 1 */
  assert_memory_equal(out[0].data, ei, 8);
  free_outs(&t, out, 1);
  /* per-axis scale with the wrong length is a shape error */
  t = make_node(13, "QuantizeLinear", 3, dts2, ranks2, dims, data, 1);
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t))); /* axis 1: dim 4 != 2 */
  expect_error(kiln_node_infer(t.g, node_of(&t)), KILN_ERR_SHAPE, "expected 1 or 4");
  kiln_graph_destroy(t.g);
}

static void test_dequantize(void **state) {
  int64_t d[1] = {4};
  int32_t x[4] = {-5, 0, 7, 100000};
  float scale = 0.25f;
  const int64_t *dims[2] = {d, d};
  const void *data[2] = {x, &scale};
  int32_t ranks[2] = {1, 0};
  kiln_dtype dts[2] = {KILN_DTYPE_INT32, KILN_DTYPE_FLOAT32};
  tgraph t = make_node(13, "DequantizeLinear", 2, dts, ranks, dims, data, 1);
  kiln_tensor out[1];
  run_ref(&t, out);
  float e[4] = {-1.25f, 0, 1.75f, 25000};
  for (int i = 0; i < 4; i++) assert_true(((float *)out[0].data)[i] == e[i]);
  free_outs(&t, out, 1);
}

static void test_dynamic_quantize(void **state) {
  int64_t d[1] = {5};
  float x[5] = {-1, 0, 1, 2, 1.5f};
  const int64_t *dims[1] = {d};
  const void *data[1] = {x};
  int32_t rank = 1;
  kiln_dtype dt = KILN_DTYPE_FLOAT32;
  tgraph t = make_node(11, "DynamicQuantizeLinear", 1, &dt, &rank, dims, data, 3);
  kiln_tensor out[3];
  run_ref(&t, out);
  float s = ((float *)out[1].data)[0];
  assert_true(s == 3.0f / 255.0f);
  assert_int_equal(((uint8_t *)out[2].data)[0], 85);
  uint8_t *y = out[0].data;
  for (int i = 0; i < 5; i++) assert_int_equal(y[i], (int)nearbyintf(x[i] / s) + 85);
  free_outs(&t, out, 3);
}

static void test_matmul_integer(void **state) {
  /* a [2,3,5] int8 with per-row zero point, b [5,4] uint8 -> [2,3,4] */
  int64_t ad[3] = {2, 3, 5}, bd[2] = {5, 4}, azd[1] = {3}, bzd[1] = {1};
  int8_t a[30];
  uint8_t b[20], bz = 7;
  int8_t az[3] = {1, -2, 0};
  for (int i = 0; i < 30; i++) a[i] = (int8_t)(frand() * 60);
  for (int i = 0; i < 20; i++) b[i] = (uint8_t)(frand() * 60 + 128);
  const int64_t *dims[4] = {ad, bd, azd, bzd};
  const void *data[4] = {a, b, az, &bz};
  int32_t ranks[4] = {3, 2, 1, 0};
  kiln_dtype dts[4] = {KILN_DTYPE_INT8, KILN_DTYPE_UINT8, KILN_DTYPE_INT8, KILN_DTYPE_UINT8};
  tgraph t = make_node(10, "MatMulInteger", 4, dts, ranks, dims, data, 1);
  kiln_tensor out[1];
  run_ref(&t, out);
  assert_int_equal(kiln_node_macs(t.g, node_of(&t)), 2 * 3 * 4 * 5);
  for (int bt = 0; bt < 2; bt++)
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 4; j++) {
        int32_t e = 0;
        for (int k = 0; k < 5; k++) e += (a[(bt * 3 + i) * 5 + k] - az[i]) * (b[k * 4 + j] - bz);
        assert_int_equal(((int32_t *)out[0].data)[(bt * 3 + i) * 4 + j], e);
      }
  free_outs(&t, out, 1);
  /* mismatched inner dims */
  int64_t bd2[2] = {6, 4};
  const int64_t *dims2[4] = {ad, bd2, azd, bzd};
  t = make_node(10, "MatMulInteger", 2, dts, ranks, dims2, NULL, 1);
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t)));
  expect_error(kiln_node_infer(t.g, node_of(&t)), KILN_ERR_SHAPE, "inner dims");
  kiln_graph_destroy(t.g);
}

static void test_qlinear_matmul(void **state) {
  int64_t ad[2] = {3, 5}, bd[2] = {5, 2}, sd[1] = {1};
  uint8_t a[15], b[10], azp = 120, bzp = 130, yzp = 100;
  float as = 0.02f, bs = 0.03f, ys = 0.05f;
  for (int i = 0; i < 15; i++) a[i] = (uint8_t)(frand() * 60 + 128);
  for (int i = 0; i < 10; i++) b[i] = (uint8_t)(frand() * 60 + 128);
  const int64_t *dims[8] = {ad, sd, sd, bd, sd, sd, sd, sd};
  const void *data[8] = {a, &as, &azp, b, &bs, &bzp, &ys, &yzp};
  int32_t ranks[8] = {2, 0, 0, 2, 0, 0, 0, 0};
  kiln_dtype dts[8] = {KILN_DTYPE_UINT8, KILN_DTYPE_FLOAT32, KILN_DTYPE_UINT8, KILN_DTYPE_UINT8,
                       KILN_DTYPE_FLOAT32, KILN_DTYPE_UINT8, KILN_DTYPE_FLOAT32, KILN_DTYPE_UINT8};
  tgraph t = make_node(10, "QLinearMatMul", 8, dts, ranks, dims, data, 1);
  kiln_tensor out[1];
  run_ref(&t, out);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 2; j++) {
      int32_t acc = 0;
      for (int k = 0; k < 5; k++) acc += (a[i * 5 + k] - azp) * (b[k * 2 + j] - bzp);
      double e = nearbyint((float)acc * (as * bs / ys)) + yzp;
      e = e < 0 ? 0 : e > 255 ? 255 : e;
      assert_int_equal(((uint8_t *)out[0].data)[i * 2 + j], (int)e);
    }
  free_outs(&t, out, 1);
}

/* Direct 2-D convolution for checking: x [1,C,H,W], w [M,C/g,kh,kw], int results. */
static void conv_expect(const int32_t *x, int C, int H, int W, const int32_t *w, int M, int kh, int kw, int g,
                        int stride, int pad, int OH, int OW, int64_t *y) {
  int Cg = C / g, Mg = M / g;
  for (int m = 0; m < M; m++)
    for (int oh = 0; oh < OH; oh++)
      for (int ow = 0; ow < OW; ow++) {
        int64_t acc = 0;
        for (int c = 0; c < Cg; c++)
          for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) {
              int ih = oh * stride - pad + i, iw = ow * stride - pad + j;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              acc += (int64_t)x[((m / Mg) * Cg + c) * H * W + ih * W + iw] * w[((m * Cg + c) * kh + i) * kw + j];
            }
        y[(m * OH + oh) * OW + ow] = acc;
      }
}

static void test_qlinear_conv(void **state) {
  /* x [1,4,5,6] uint8, w [6,2,3,2] int8 per-channel scale, group 2, stride 2, pad 1, bias */
  enum { C = 4, H = 5, W = 6, M = 6, KH = 3, KW = 2, G = 2 };
  int OH = (H + 2 - KH) / 2 + 1, OW = (W + 2 - KW) / 2 + 1;
  int64_t xd[4] = {1, C, H, W}, wd[4] = {M, C / G, KH, KW}, md[1] = {M}, sd[1] = {1};
  uint8_t x[C * H * W], xzp = 128, yzp = 10;
  int8_t w[M * (C / G) * KH * KW], wzp[M] = {0, 0, 0, 0, 0, 0};
  float xs = 0.05f, ws[M], ys = 0.2f;
  int32_t bias[M];
  for (int i = 0; i < C * H * W; i++) x[i] = (uint8_t)(frand() * 60 + 128);
  for (int i = 0; i < M * (C / G) * KH * KW; i++) w[i] = (int8_t)(frand() * 60);
  for (int i = 0; i < M; i++) ws[i] = 0.01f * (float)(i + 1), bias[i] = (int32_t)(frand() * 500);
  const int64_t *dims[9] = {xd, sd, sd, wd, md, md, sd, sd, md};
  const void *data[9] = {x, &xs, &xzp, w, ws, wzp, &ys, &yzp, bias};
  int32_t ranks[9] = {4, 0, 0, 4, 1, 1, 0, 0, 1};
  kiln_dtype dts[9] = {KILN_DTYPE_UINT8, KILN_DTYPE_FLOAT32, KILN_DTYPE_UINT8, KILN_DTYPE_INT8, KILN_DTYPE_FLOAT32,
                       KILN_DTYPE_INT8, KILN_DTYPE_FLOAT32, KILN_DTYPE_UINT8, KILN_DTYPE_INT32};
  tgraph t = make_node(10, "QLinearConv", 9, dts, ranks, dims, data, 1);
  int64_t st[2] = {2, 2}, pads[4] = {1, 1, 1, 1};
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "strides", st, 2));
  ASSERT_OK(kiln_node_set_ints(node_of(&t), "pads", pads, 4));
  ASSERT_OK(kiln_node_set_int(node_of(&t), "group", G));
  kiln_tensor out[1];
  run_ref(&t, out);
  const kiln_shape *s = out_shape(&t, 0);
  assert_int_equal(s->dims[1], M);
  assert_int_equal(s->dims[2], OH);
  assert_int_equal(s->dims[3], OW);
  assert_int_equal(kiln_node_macs(t.g, node_of(&t)), (int64_t)M * OH * OW * (C / G) * KH * KW);
  int32_t xi[C * H * W], wi[M * (C / G) * KH * KW];
  for (int i = 0; i < C * H * W; i++) xi[i] = x[i] - xzp;
  for (int i = 0; i < M * (C / G) * KH * KW; i++) wi[i] = w[i];
  int64_t acc[M * 3 * 4];
  conv_expect(xi, C, H, W, wi, M, KH, KW, G, 2, 1, OH, OW, acc);
  for (int m = 0; m < M; m++)
    for (int i = 0; i < OH * OW; i++) {
      double e = nearbyint((float)(acc[m * OH * OW + i] + bias[m]) * (xs * ws[m] / ys)) + yzp;
      e = e < 0 ? 0 : e > 255 ? 255 : e;
      assert_int_equal(((uint8_t *)out[0].data)[m * OH * OW + i], (int)e);
    }
  free_outs(&t, out, 1);
}

static void test_conv_integer(void **state) {
  /* SAME_UPPER with an even kernel: pads 0 before, 1 after; padding contributes nothing */
  enum { C = 3, H = 4, W = 5, M = 2, K = 2 };
  int64_t xd[4] = {1, C, H, W}, wd[4] = {M, C, K, K}, sd[1] = {1};
  uint8_t x[C * H * W], xzp = 3;
  uint8_t w[M * C * K * K], wzp = 1;
  for (int i = 0; i < C * H * W; i++) x[i] = (uint8_t)(frand() * 50 + 60);
  for (int i = 0; i < M * C * K * K; i++) w[i] = (uint8_t)(frand() * 50 + 60);
  const int64_t *dims[4] = {xd, wd, sd, sd};
  const void *data[4] = {x, w, &xzp, &wzp};
  int32_t ranks[4] = {4, 4, 0, 0};
  kiln_dtype dts[4] = {KILN_DTYPE_UINT8, KILN_DTYPE_UINT8, KILN_DTYPE_UINT8, KILN_DTYPE_UINT8};
  tgraph t = make_node(10, "ConvInteger", 4, dts, ranks, dims, data, 1);
  ASSERT_OK(kiln_node_set_string(node_of(&t), "auto_pad", "SAME_UPPER"));
  kiln_tensor out[1];
  run_ref(&t, out);
  assert_int_equal(out_shape(&t, 0)->dims[2], H);
  assert_int_equal(out_shape(&t, 0)->dims[3], W);
  int32_t xi[C * H * W], wi[M * C * K * K];
  for (int i = 0; i < C * H * W; i++) xi[i] = x[i] - xzp;
  for (int i = 0; i < M * C * K * K; i++) wi[i] = w[i] - wzp;
  int64_t e[M * H * W];
  conv_expect(xi, C, H, W, wi, M, K, K, 1, 1, 0, H, W, e);
  for (int i = 0; i < M * H * W; i++) assert_int_equal(((int32_t *)out[0].data)[i], e[i]);
  free_outs(&t, out, 1);
  /* bad auto_pad and channel mismatch */
  t = make_node(10, "ConvInteger", 2, dts, ranks, dims, NULL, 1);
  ASSERT_OK(kiln_node_set_string(node_of(&t), "auto_pad", "SAME"));
  expect_error(kiln_node_parse(t.g, node_of(&t)), KILN_ERR_PARSE, "auto_pad");
  ASSERT_OK(kiln_node_set_int(node_of(&t), "group", 3));
  ASSERT_OK(kiln_node_set_string(node_of(&t), "auto_pad", "VALID"));
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t)));
  expect_error(kiln_node_infer(t.g, node_of(&t)), KILN_ERR_SHAPE, "channels");
  kiln_graph_destroy(t.g);
}

/* ---- NonMaxSuppression -------------------------------------------------------------------------------- */
static void test_nms(void **state) {
  int64_t bd[3] = {1, 4, 4}, sd[3] = {1, 2, 4}, one[1] = {1};
  /* corner format with flipped corners on box 1; box 1 overlaps box 0 heavily */
  float boxes[16] = {0, 0, 10, 10, /**/ 10, 10, 0, 1, /**/ 20, 20, 30, 30, /**/ 0, 0, 10, 10};
  float scores[8] = {0.9f, 0.8f, 0.7f, 0.9f, /**/ 0.1f, 0.2f, 0.6f, 0.05f};
  int64_t max_out = 3;
  float iou = 0.5f, thr = 0.15f;
  const int64_t *dims[5] = {bd, sd, one, one, one};
  const void *data[5] = {boxes, scores, &max_out, &iou, &thr};
  int32_t ranks[5] = {3, 3, 1, 1, 1};
  kiln_dtype dts[5] = {KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT32, KILN_DTYPE_INT64, KILN_DTYPE_FLOAT32, KILN_DTYPE_FLOAT32};
  tgraph t = make_node(11, "NonMaxSuppression", 5, dts, ranks, dims, data, 1);
  kiln_tensor out[1];
  run_ref(&t, out);
  /* class 0: 0 (0.9) then 3 (0.9, identical to 0: suppressed), 1 (IoU .9: suppressed), 2 -> {0, 2}
   * class 1: above 0.15: 2 (0.6), 1 (0.2) -> {2, 1} */
  assert_int_equal(out_shape(&t, 0)->dims[0], 4);
  int64_t e[12] = {0, 0, 0, 0, 0, 2, 0, 1, 2, 0, 1, 1};
  assert_memory_equal(out[0].data, e, sizeof e);
  assert_int_equal(kiln_node_macs(t.g, node_of(&t)), 0);
  free_outs(&t, out, 1);
  /* non-constant scores: the first dim is data-dependent */
  const void *partial[5] = {boxes, NULL, &max_out, &iou, &thr};
  t = make_node(11, "NonMaxSuppression", 5, dts, ranks, dims, partial, 1);
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t)));
  ASSERT_OK(kiln_node_infer(t.g, node_of(&t)));
  assert_int_equal(out_shape(&t, 0)->dims[0], KILN_DIM_DYNAMIC);
  assert_int_equal(out_shape(&t, 0)->dims[1], 3);
  ASSERT_OK(kiln_node_set_int(node_of(&t), "center_point_box", 2));
  expect_error(kiln_node_parse(t.g, node_of(&t)), KILN_ERR_PARSE, "center_point_box");
  kiln_graph_destroy(t.g);
  /* boxes with the wrong last dim */
  int64_t bad[3] = {1, 4, 5};
  const int64_t *dims2[5] = {bad, sd, one, one, one};
  t = make_node(11, "NonMaxSuppression", 2, dts, ranks, dims2, NULL, 1);
  ASSERT_OK(kiln_node_parse(t.g, node_of(&t)));
  expect_error(kiln_node_infer(t.g, node_of(&t)), KILN_ERR_SHAPE, "boxes");
  kiln_graph_destroy(t.g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_softmax),       cmocka_unit_test(test_reduce),
      cmocka_unit_test(test_reduce_noop_and_errors), cmocka_unit_test(test_reduce_int),
      cmocka_unit_test(test_cumsum),        cmocka_unit_test(test_topk),
      cmocka_unit_test(test_argmax),        cmocka_unit_test(test_quantize),
      cmocka_unit_test(test_dequantize),    cmocka_unit_test(test_dynamic_quantize),
      cmocka_unit_test(test_matmul_integer), cmocka_unit_test(test_qlinear_matmul),
      cmocka_unit_test(test_qlinear_conv),  cmocka_unit_test(test_conv_integer),
      cmocka_unit_test(test_nms),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
