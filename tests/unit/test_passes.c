/* Graph passes on small graphs built here: folding, cleanup, no-op elimination, toposort, Conv+BN
 * folding and re-batching. Numeric checks evaluate the graph before and after with the reference kernels. */
#include "testlib.h"

#include "onnx/onnx.h"
#include "passes/fold.h"
#include "passes/passes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void set_io(kiln_graph *g, const int32_t *in, int n_in, const int32_t *out, int n_out) {
  g->inputs = malloc(sizeof(int32_t) * (size_t)(n_in + 1));
  g->outputs = malloc(sizeof(int32_t) * (size_t)(n_out + 1));
  memcpy(g->inputs, in, sizeof(int32_t) * (size_t)n_in);
  memcpy(g->outputs, out, sizeof(int32_t) * (size_t)n_out);
  g->n_inputs = n_in;
  g->n_outputs = n_out;
  for (int i = 0; i < n_in; i++) g->values[in[i]].flags |= KILN_VALUE_GRAPH_INPUT;
  for (int i = 0; i < n_out; i++) g->values[out[i]].flags |= KILN_VALUE_GRAPH_OUTPUT;
}

static int32_t add_const_i64(kiln_graph *g, const char *name, int64_t n, const int64_t *v) {
  int32_t id;
  ASSERT_OK(kiln_graph_add_value(g, name, &id));
  kiln_shape s;
  kiln_shape_init(&s, 1, &n);
  ASSERT_OK(kiln_value_set_constant(g, id, KILN_DTYPE_INT64, &s, v));
  g->values[id].flags |= KILN_VALUE_INITIALIZER;
  return id;
}

static int32_t add_const_f32(kiln_graph *g, const char *name, int32_t rank, const int64_t *dims, unsigned seed) {
  int32_t id;
  ASSERT_OK(kiln_graph_add_value(g, name, &id));
  kiln_shape s;
  kiln_shape_init(&s, rank, dims);
  int64_t n = kiln_shape_numel(&s);
  float *d = malloc(sizeof(float) * (size_t)n);
  srand(seed);
  for (int64_t i = 0; i < n; i++) d[i] = (float)rand() / RAND_MAX - 0.5f;
  ASSERT_OK(kiln_value_take_constant(g, id, KILN_DTYPE_FLOAT32, &s, d));
  g->values[id].flags |= KILN_VALUE_INITIALIZER;
  return id;
}

static int32_t node(kiln_graph *g, const char *op, const int32_t *in, int n_in, const char *out_name) {
  int32_t out, id;
  ASSERT_OK(kiln_graph_add_value(g, out_name, &out));
  ASSERT_OK(kiln_graph_add_node(g, out_name, "", op, in, n_in, &out, 1, &id));
  return out;
}

static void parse_infer(kiln_graph *g) {
  for (int32_t i = 0; i < g->n_nodes; i++) ASSERT_OK(kiln_node_parse(g, &g->nodes[i]));
  ASSERT_OK(kiln_pass_toposort(g));
  ASSERT_OK(kiln_graph_infer_shapes(g));
}

/* Evaluate output 0 of g with input 0 bound to `x` (reference kernels); returns a malloc'd copy. */
static float *evaluate(kiln_graph *g, const float *x, int64_t *n_out) {
  kiln_value *in = &g->values[g->inputs[0]];
  kiln_shape s = in->shape;
  ASSERT_OK(kiln_value_set_constant(g, g->inputs[0], KILN_DTYPE_FLOAT32, &s, x));
  for (int32_t i = 0; i < g->n_nodes; i++) ASSERT_OK(kiln_fold_node(g, i));
  const kiln_value *o = &g->values[g->outputs[0]];
  *n_out = kiln_shape_numel(&o->shape);
  float *r = malloc(o->nbytes);
  memcpy(r, o->data, o->nbytes);
  return r;
}

/* x[2,3,4] -> Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) -> [2,12]: the shape subgraph folds. */
static void test_fold_shape_subgraph(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  g->opset = 13;
  int64_t d[] = {2, 3, 4};
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 3, d);
  int32_t shape = node(g, "Shape", &x, 1, "shape");
  int64_t zero = 0, minus1 = -1;
  int32_t idx;
  ASSERT_OK(kiln_graph_add_value(g, "idx0", &idx));
  kiln_shape scalar;
  kiln_shape_init(&scalar, 0, NULL);
  ASSERT_OK(kiln_value_set_constant(g, idx, KILN_DTYPE_INT64, &scalar, &zero));
  int32_t gin[] = {shape, idx};
  int32_t b = node(g, "Gather", gin, 2, "batch");
  int32_t axes = add_const_i64(g, "axes", 1, &zero);
  int32_t uin[] = {b, axes};
  int32_t ub = node(g, "Unsqueeze", uin, 2, "batch1");
  int32_t m1 = add_const_i64(g, "minus1", 1, &minus1);
  int32_t cin[] = {ub, m1};
  int32_t target = node(g, "Concat", cin, 2, "target");
  ASSERT_OK(kiln_node_set_int(&g->nodes[g->n_nodes - 1], "axis", 0));
  int32_t rin[] = {x, target};
  int32_t y = node(g, "Reshape", rin, 2, "y");
  set_io(g, &x, 1, &y, 1);
  parse_infer(g);
  assert_int_equal(g->values[y].shape.rank, 2);
  assert_int_equal(g->values[y].shape.dims[1], 12);
  int folded = 0, removed = 0;
  ASSERT_OK(kiln_pass_fold_constants(g, &folded));
  assert_true(folded >= 3); /* Shape..Concat (infer may already have folded some of them) */
  ASSERT_OK(kiln_pass_cleanup(g, &removed));
  assert_int_equal(g->n_nodes, 1);
  assert_int_equal(g->nodes[0].op, KILN_OP_Reshape);
  const kiln_value *t = kiln_node_input(g, &g->nodes[0], 1);
  assert_non_null(t->data);
  assert_int_equal(((int64_t *)t->data)[0], 2);
  assert_int_equal(((int64_t *)t->data)[1], -1);
  kiln_graph_destroy(g);
}

static void test_cleanup_dead_branch(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d[] = {5};
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 1, d);
  int32_t w = add_const_f32(g, "unused_w", 1, d, 1);
  int32_t a = node(g, "Relu", &x, 1, "a");
  int32_t din[] = {a, w};
  int32_t dead = node(g, "Add", din, 2, "dead"); /* nobody reads this */
  int32_t dead2 = node(g, "Sigmoid", &dead, 1, "dead2");
  (void)dead2;
  int32_t y = node(g, "Tanh", &a, 1, "y");
  set_io(g, &x, 1, &y, 1);
  parse_infer(g);
  int removed = 0;
  ASSERT_OK(kiln_pass_cleanup(g, &removed));
  assert_int_equal(removed, 2);
  assert_int_equal(g->n_nodes, 2);
  assert_int_equal(kiln_graph_find_value(g, "unused_w"), -1);
  assert_int_not_equal(kiln_graph_find_value(g, "x"), -1);
  kiln_graph_destroy(g);
}

static void test_noops(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  g->opset = 13;
  int64_t d[] = {2, 6};
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 2, d);
  int32_t a = node(g, "Identity", &x, 1, "a");
  int32_t b = node(g, "Relu", &a, 1, "b");
  int32_t shp = add_const_i64(g, "same", 2, d);
  int32_t rin[] = {b, shp};
  int32_t c = node(g, "Reshape", rin, 2, "c");      /* to the same shape */
  int32_t e = node(g, "Dropout", &c, 1, "e");        /* inference */
  int32_t y = node(g, "Identity", &e, 1, "y");       /* graph output: name must survive */
  set_io(g, &x, 1, &y, 1);
  parse_infer(g);
  int removed = 0;
  ASSERT_OK(kiln_pass_eliminate_noops(g, &removed));
  ASSERT_OK(kiln_pass_cleanup(g, NULL));
  assert_int_equal(removed, 4);
  assert_int_equal(g->n_nodes, 1);
  assert_int_equal(g->nodes[0].op, KILN_OP_Relu);
  assert_string_equal(g->values[g->nodes[0].outputs[0]].name, "y");
  assert_int_equal(g->outputs[0], g->nodes[0].outputs[0]);
  assert_int_equal(g->nodes[0].inputs[0], g->inputs[0]);
  kiln_graph_destroy(g);
}

static void test_toposort_and_cycle(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d[] = {3};
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 1, d), a, b, c;
  ASSERT_OK(kiln_graph_add_value(g, "a", &a));
  ASSERT_OK(kiln_graph_add_value(g, "b", &b));
  ASSERT_OK(kiln_graph_add_value(g, "c", &c));
  /* file order: c = Relu(b); b = Relu(a); a = Relu(x) */
  ASSERT_OK(kiln_graph_add_node(g, "n2", "", "Relu", &b, 1, &c, 1, NULL));
  ASSERT_OK(kiln_graph_add_node(g, "n1", "", "Relu", &a, 1, &b, 1, NULL));
  ASSERT_OK(kiln_graph_add_node(g, "n0", "", "Relu", &x, 1, &a, 1, NULL));
  set_io(g, &x, 1, &c, 1);
  ASSERT_OK(kiln_pass_toposort(g));
  assert_string_equal(g->nodes[0].name, "n0");
  assert_string_equal(g->nodes[1].name, "n1");
  assert_string_equal(g->nodes[2].name, "n2");
  /* make a cycle: n0 reads c */
  g->nodes[0].inputs[0] = c;
  expect_error(kiln_pass_toposort(g), KILN_ERR_PARSE, "cycle");
  kiln_graph_destroy(g);
}

static void test_fuse_conv_bn(void **state) {
  kiln_graph *g[2];
  float *out[2];
  int64_t n_out[2];
  int64_t xd[] = {1, 3, 7, 5}, wd[] = {4, 3, 3, 3}, cd[] = {4};
  float x[1 * 3 * 7 * 5];
  srand(7);
  for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = (float)rand() / RAND_MAX * 2 - 1;
  for (int k = 0; k < 2; k++) {
    ASSERT_OK(kiln_graph_create(&g[k]));
    kiln_graph *gg = g[k];
    int32_t in = test_add_tensor(gg, "x", KILN_DTYPE_FLOAT32, 4, xd);
    int32_t cin[] = {in, add_const_f32(gg, "w", 4, wd, 11), add_const_f32(gg, "b", 1, cd, 12)};
    int32_t c = node(gg, "Conv", cin, 3, "conv");
    ASSERT_OK(kiln_node_set_ints(&gg->nodes[0], "pads", (int64_t[]){1, 1, 1, 1}, 4));
    int32_t var = add_const_f32(gg, "var", 1, cd, 16);
    float *vd = gg->values[var].data;
    for (int i = 0; i < 4; i++) vd[i] = fabsf(vd[i]) + 0.1f;
    int32_t bin[] = {c, add_const_f32(gg, "scale", 1, cd, 13), add_const_f32(gg, "bias", 1, cd, 14),
                     add_const_f32(gg, "mean", 1, cd, 15), var};
    int32_t y = node(gg, "BatchNormalization", bin, 5, "y");
    set_io(gg, &in, 1, &y, 1);
    parse_infer(gg);
    if (k == 1) {
      int fused = 0;
      ASSERT_OK(kiln_pass_fuse_conv_bn(gg, &fused));
      assert_int_equal(fused, 1);
      assert_int_equal(gg->n_nodes, 1);
      assert_int_equal(gg->nodes[0].op, KILN_OP_Conv);
      assert_string_equal(gg->values[gg->nodes[0].outputs[0]].name, "y");
      ASSERT_OK(kiln_graph_infer_shapes(gg));
    }
    out[k] = evaluate(gg, x, &n_out[k]);
  }
  assert_int_equal(n_out[0], 4 * 7 * 5);
  assert_int_equal(n_out[0], n_out[1]);
  for (int64_t i = 0; i < n_out[0]; i++) assert_true(fabsf(out[0][i] - out[1][i]) <= 1e-5f + 1e-5f * fabsf(out[0][i]));
  for (int k = 0; k < 2; k++) {
    free(out[k]);
    kiln_graph_destroy(g[k]);
  }
}

/* x[1,3,4,4] -> Relu -> Reshape [1,3,-1] -> y; rebatch to 5 and to dynamic. */
static kiln_graph *rebatch_graph(void) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  g->opset = 13;
  int64_t xd[] = {1, 3, 4, 4}, t[] = {1, 3, -1};
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 4, xd);
  int32_t r = node(g, "Relu", &x, 1, "r");
  int32_t rin[] = {r, add_const_i64(g, "target", 3, t)};
  int32_t y = node(g, "Reshape", rin, 2, "y");
  set_io(g, &x, 1, &y, 1);
  parse_infer(g);
  return g;
}

static void test_rebatch(void **state) {
  kiln_graph *g = rebatch_graph();
  ASSERT_OK(kiln_pass_rebatch(g, 5));
  const kiln_value *y = &g->values[g->outputs[0]];
  assert_int_equal(g->values[g->inputs[0]].shape.dims[0], 5);
  assert_int_equal(y->shape.rank, 3);
  assert_int_equal(y->shape.dims[0], 5);
  assert_int_equal(y->shape.dims[2], 16);
  kiln_graph_destroy(g);

  g = rebatch_graph();
  ASSERT_OK(kiln_pass_rebatch(g, 0));
  y = &g->values[g->outputs[0]];
  assert_int_equal(y->shape.dims[0], KILN_DIM_DYNAMIC);
  assert_int_equal(y->shape.dims[1], 3);
  assert_int_equal(y->shape.dims[2], 16);
  char buf[64];
  assert_string_equal(kiln_shape_format(g, &y->shape, buf, sizeof buf), "batchx3x16");
  expect_error(kiln_pass_rebatch(g, -3), KILN_ERR_INVALID_ARGUMENT, "batch");
  kiln_graph_destroy(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fold_shape_subgraph), cmocka_unit_test(test_cleanup_dead_branch),
      cmocka_unit_test(test_noops),               cmocka_unit_test(test_toposort_and_cycle),
      cmocka_unit_test(test_fuse_conv_bn),        cmocka_unit_test(test_rebatch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
