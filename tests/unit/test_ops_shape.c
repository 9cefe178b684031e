/* shape, index and source families: parse errors, shape inference (constant shape subgraphs,
 * dynamic dims) and reference kernels on odd shapes against hand-computed results. */
#include "testlib.h"

#include "backend/cpu/reference/reference.h"
#include "core/dtype.h"
#include "ir/infer_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int32_t add_const(kiln_graph *g, const char *name, kiln_dtype dt, int32_t rank, const int64_t *dims,
                         const void *data) {
  int32_t id = test_add_tensor(g, name, dt, rank, dims);
  kiln_shape s;
  kiln_shape_init(&s, rank, dims);
  ASSERT_OK(kiln_value_set_constant(g, id, dt, &s, data));
  return id;
}

static int32_t add_i64(kiln_graph *g, const char *name, int64_t n, const int64_t *v) {
  return add_const(g, name, KILN_DTYPE_INT64, 1, &n, v);
}

static int32_t fresh(kiln_graph *g, const char *name) {
  int32_t id;
  ASSERT_OK(kiln_graph_add_value(g, name, &id));
  return id;
}

static kiln_node *add_node(kiln_graph *g, const char *op, const int32_t *in, int32_t nin, const int32_t *out,
                           int32_t nout) {
  int32_t id;
  ASSERT_OK(kiln_graph_add_node(g, NULL, "", op, in, nin, out, nout, &id));
  return &g->nodes[id];
}

/* Evaluate n with the reference kernel. Input data: the value's constant data, else data[i]. Outputs
 * are allocated from the inferred shapes and poisoned first; the caller frees out[i].data. */
static kiln_status run_ref(kiln_graph *g, kiln_node *n, void *const *data, kiln_tensor *out) {
  kiln_tensor in[8];
  for (int32_t i = 0; i < n->n_inputs; i++) {
    memset(&in[i], 0, sizeof in[i]);
    const kiln_value *v = kiln_node_input(g, n, i);
    if (!v) continue;
    kiln_value_as_tensor(v, &in[i]);
    if (!in[i].data) in[i].data = data[i];
  }
  for (int32_t i = 0; i < n->n_outputs; i++) {
    const kiln_value *v = kiln_node_output(g, n, i);
    kiln_value_as_tensor(v, &out[i]);
    out[i].data = malloc(kiln_tensor_nbytes(&out[i]) + 1);
    memset(out[i].data, 0xAB, kiln_tensor_nbytes(&out[i]) + 1);
  }
  return kiln_reference_run(g, n, in, out);
}

static void fill_f32(float *x, int64_t n, unsigned seed) {
  for (int64_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    x[i] = (float)((seed >> 8) % 2000) / 100.0f - 10.0f;
  }
}

static void assert_shape(const kiln_value *v, int32_t rank, const int64_t *dims) {
  assert_int_equal(v->shape.rank, rank);
  for (int32_t i = 0; i < rank; i++) assert_int_equal(v->shape.dims[i], dims[i]);
}

/* Shape -> Gather -> Unsqueeze -> Concat -> Reshape folds during one inference sweep. */
static void test_shape_subgraph(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d[] = {2, 3, 4, 5};
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 4, d);
  int32_t s = fresh(g, "s"), g0 = fresh(g, "g0"), u = fresh(g, "u"), c = fresh(g, "c"), y = fresh(g, "y");
  int64_t zero = 0, m1 = -1, ax0 = 0;
  int32_t idx = add_const(g, "idx", KILN_DTYPE_INT64, 0, NULL, &zero);
  int32_t axes = add_i64(g, "axes", 1, &ax0), minus = add_i64(g, "minus", 1, &m1);
  kiln_node *n[5];
  n[0] = add_node(g, "Shape", &x, 1, &s, 1);
  n[1] = add_node(g, "Gather", (int32_t[]){s, idx}, 2, &g0, 1);
  n[2] = add_node(g, "Unsqueeze", (int32_t[]){g0, axes}, 2, &u, 1);
  n[3] = add_node(g, "Concat", (int32_t[]){u, minus}, 2, &c, 1);
  ASSERT_OK(kiln_node_set_int(n[3], "axis", 0));
  n[4] = add_node(g, "Reshape", (int32_t[]){x, c}, 2, &y, 1);
  for (int i = 0; i < 5; i++) {
    n[i] = &g->nodes[i];
    ASSERT_OK(kiln_node_parse(g, n[i]));
    ASSERT_OK(kiln_node_infer(g, n[i]));
  }
  assert_true(kiln_value_is_constant(&g->values[s]));
  assert_true(kiln_value_is_constant(&g->values[c]));
  assert_int_equal(((int64_t *)g->values[c].data)[0], 2);
  assert_int_equal(((int64_t *)g->values[c].data)[1], -1);
  assert_shape(&g->values[y], 2, (int64_t[]){2, 60});
  assert_int_equal(g->values[y].dtype, KILN_DTYPE_FLOAT32);
  assert_false(kiln_value_is_constant(&g->values[y]));

  /* A dynamic batch: Shape is not constant, Gather of it is dynamic, Reshape gets rank 2 with dynamic dims. */
  g->values[x].shape.dims[0] = KILN_DIM_DYNAMIC;
  for (int i = 0; i < 5; i++) ASSERT_OK(kiln_node_infer(g, &g->nodes[i]));
  assert_false(kiln_value_is_constant(&g->values[s]));
  assert_false(kiln_value_is_constant(&g->values[c]));
  assert_int_equal(g->values[y].shape.rank, 2);
  assert_int_equal(g->values[y].shape.dims[0], KILN_DIM_DYNAMIC);
  kiln_graph_destroy(g);
}

static void test_reshape_rules(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d[] = {2, 3, 4};
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_INT8, 3, d), y = fresh(g, "y");
  int32_t t = add_i64(g, "t", 3, (int64_t[]){0, -1, 2});
  kiln_node *n = add_node(g, "Reshape", (int32_t[]){x, t}, 2, &y, 1);
  ASSERT_OK(kiln_node_parse(g, n));
  ASSERT_OK(kiln_node_infer(g, n));
  assert_shape(&g->values[y], 3, (int64_t[]){2, 6, 2});
  int64_t two[] = {-1, -1};
  ASSERT_OK(kiln_value_set_constant(g, t, KILN_DTYPE_INT64, &(kiln_shape){.rank = 1, .dims = {2}}, two));
  expect_error(kiln_node_infer(g, n), KILN_ERR_SHAPE, "more than one -1");
  int64_t bad[] = {5, 5};
  ASSERT_OK(kiln_value_set_constant(g, t, KILN_DTYPE_INT64, &(kiln_shape){.rank = 1, .dims = {2}}, bad));
  expect_error(kiln_node_infer(g, n), KILN_ERR_SHAPE, "cannot reshape");
  ASSERT_OK(kiln_node_set_int(n, "allowzero", 3));
  expect_error(kiln_node_parse(g, n), KILN_ERR_PARSE, "allowzero");
  kiln_graph_destroy(g);
}

/* Slice with negative steps, clamping and axes; checked against a direct loop on a 5x7 input. */
static void test_slice_ref(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d[] = {5, 7};
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 2, d), y = fresh(g, "y");
  int32_t st = add_i64(g, "st", 2, (int64_t[]){100, 1}), en = add_i64(g, "en", 2, (int64_t[]){-100, 4});
  int32_t ax = add_i64(g, "ax", 2, (int64_t[]){-1, 0}), sp = add_i64(g, "sp", 2, (int64_t[]){-3, 2});
  kiln_node *n = add_node(g, "Slice", (int32_t[]){x, st, en, ax, sp}, 5, &y, 1);
  ASSERT_OK(kiln_node_parse(g, n));
  ASSERT_OK(kiln_node_infer(g, n));
  /* rows 1,3; cols 6,3,0 */
  assert_shape(&g->values[y], 2, (int64_t[]){2, 3});
  float xd[35];
  fill_f32(xd, 35, 7);
  kiln_tensor out[1];
  ASSERT_OK(run_ref(g, n, (void *[]){xd}, out));
  const int rows[] = {1, 3}, cols[] = {6, 3, 0};
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++) assert_true(((float *)out[0].data)[i * 3 + j] == xd[rows[i] * 7 + cols[j]]);
  free(out[0].data);
  int64_t zero[] = {0, 1};
  ASSERT_OK(kiln_value_set_constant(g, sp, KILN_DTYPE_INT64, &(kiln_shape){.rank = 1, .dims = {2}}, zero));
  expect_error(kiln_node_infer(g, n), KILN_ERR_SHAPE, "steps");
  kiln_graph_destroy(g);
}

static void test_transpose_expand_tile(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d[] = {3, 1, 2};
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_INT16, 3, d), y = fresh(g, "y"), e = fresh(g, "e"), t = fresh(g, "t");
  kiln_node *tr = add_node(g, "Transpose", &x, 1, &y, 1);
  ASSERT_OK(kiln_node_set_ints(tr, "perm", (int64_t[]){2, 0, 1}, 3));
  int32_t shp = add_i64(g, "shp", 4, (int64_t[]){2, 1, 5, 2});
  int32_t rep = add_i64(g, "rep", 3, (int64_t[]){2, 3, 1});
  add_node(g, "Expand", (int32_t[]){x, shp}, 2, &e, 1);
  add_node(g, "Tile", (int32_t[]){x, rep}, 2, &t, 1);
  for (int i = 0; i < 3; i++) {
    ASSERT_OK(kiln_node_parse(g, &g->nodes[i]));
    ASSERT_OK(kiln_node_infer(g, &g->nodes[i]));
  }
  assert_shape(&g->values[y], 3, (int64_t[]){2, 3, 1});
  assert_shape(&g->values[e], 4, (int64_t[]){2, 3, 5, 2});
  assert_shape(&g->values[t], 3, (int64_t[]){6, 3, 2});
  int16_t xd[6] = {1, 2, 3, 4, 5, 6};
  kiln_tensor out[1];
  ASSERT_OK(run_ref(g, &g->nodes[0], (void *[]){xd}, out));
  const int16_t want_t[] = {1, 3, 5, 2, 4, 6};
  assert_memory_equal(out[0].data, want_t, sizeof want_t);
  free(out[0].data);
  ASSERT_OK(run_ref(g, &g->nodes[1], (void *[]){xd, NULL}, out));
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 3; b++)
      for (int c = 0; c < 5; c++)
        for (int k = 0; k < 2; k++) assert_int_equal(((int16_t *)out[0].data)[((a * 3 + b) * 5 + c) * 2 + k], xd[b * 2 + k]);
  free(out[0].data);
  ASSERT_OK(run_ref(g, &g->nodes[2], (void *[]){xd, NULL}, out));
  for (int a = 0; a < 6; a++)
    for (int b = 0; b < 3; b++)
      for (int k = 0; k < 2; k++) assert_int_equal(((int16_t *)out[0].data)[(a * 3 + b) * 2 + k], xd[(a % 3) * 2 + k]);
  free(out[0].data);
  ASSERT_OK(kiln_node_set_ints(&g->nodes[0], "perm", (int64_t[]){0, 0, 1}, 3));
  ASSERT_OK(kiln_node_parse(g, &g->nodes[0]));
  expect_error(kiln_node_infer(g, &g->nodes[0]), KILN_ERR_SHAPE, "permutation");
  kiln_graph_destroy(g);
}

static void test_pad_modes(void **state) {
  const char *modes[] = {"constant", "reflect", "edge"};
  /* x = [1 2 3], pads [2, 2] */
  const double want[3][7] = {{9, 9, 1, 2, 3, 9, 9}, {3, 2, 1, 2, 3, 2, 1}, {1, 1, 1, 2, 3, 3, 3}};
  for (int m = 0; m < 3; m++) {
    kiln_graph *g;
    ASSERT_OK(kiln_graph_create(&g));
    int64_t d = 3;
    int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT64, 1, &d), y = fresh(g, "y");
    int32_t pads = add_i64(g, "pads", 2, (int64_t[]){2, 2});
    double cv = 9;
    int32_t c = add_const(g, "c", KILN_DTYPE_FLOAT64, 0, NULL, &cv);
    kiln_node *n = add_node(g, "Pad", (int32_t[]){x, pads, c}, 3, &y, 1);
    ASSERT_OK(kiln_node_set_string(n, "mode", modes[m]));
    ASSERT_OK(kiln_node_parse(g, n));
    ASSERT_OK(kiln_node_infer(g, n));
    assert_shape(&g->values[y], 1, (int64_t[]){7});
    double xd[] = {1, 2, 3};
    kiln_tensor out[1];
    ASSERT_OK(run_ref(g, n, (void *[]){xd}, out));
    for (int i = 0; i < 7; i++) assert_true(((double *)out[0].data)[i] == want[m][i]);
    free(out[0].data);
    kiln_graph_destroy(g);
  }
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d = 3;
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 1, &d), y = fresh(g, "y");
  int32_t pads = add_i64(g, "pads", 2, (int64_t[]){1, 1});
  kiln_node *n = add_node(g, "Pad", (int32_t[]){x, pads}, 2, &y, 1);
  ASSERT_OK(kiln_node_set_string(n, "mode", "mirror"));
  expect_error(kiln_node_parse(g, n), KILN_ERR_PARSE, "'mode' = 'mirror'");
  kiln_graph_destroy(g);
}

static void test_gather_scatter(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d[] = {3, 5};
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_UINT8, 2, d), y = fresh(g, "y"), s = fresh(g, "s");
  int64_t id[] = {2, 1};
  int32_t idx = test_add_tensor(g, "idx", KILN_DTYPE_INT64, 2, id);
  kiln_node *ga = add_node(g, "Gather", (int32_t[]){x, idx}, 2, &y, 1);
  ASSERT_OK(kiln_node_set_int(ga, "axis", -1));
  int64_t ud[] = {2, 3};
  int32_t ei = test_add_tensor(g, "ei", KILN_DTYPE_INT32, 2, ud), up = test_add_tensor(g, "up", KILN_DTYPE_UINT8, 2, ud);
  kiln_node *sc = add_node(g, "ScatterElements", (int32_t[]){x, ei, up}, 3, &s, 1);
  ASSERT_OK(kiln_node_set_string(sc, "reduction", "add"));
  for (int i = 0; i < 2; i++) {
    ASSERT_OK(kiln_node_parse(g, &g->nodes[i]));
    ASSERT_OK(kiln_node_infer(g, &g->nodes[i]));
  }
  assert_shape(&g->values[y], 3, (int64_t[]){3, 2, 1});
  assert_shape(&g->values[s], 2, (int64_t[]){3, 5});
  uint8_t xd[15];
  for (int i = 0; i < 15; i++) xd[i] = (uint8_t)(i * 7 + 3);
  int64_t iv[] = {-1, 2};
  kiln_tensor out[1];
  ASSERT_OK(run_ref(g, &g->nodes[0], (void *[]){xd, iv}, out));
  for (int r = 0; r < 3; r++) {
    assert_int_equal(((uint8_t *)out[0].data)[r * 2], xd[r * 5 + 4]);
    assert_int_equal(((uint8_t *)out[0].data)[r * 2 + 1], xd[r * 5 + 2]);
  }
  free(out[0].data);
  iv[0] = 5; /* out of range: an error, not a read past the row */
  expect_error(run_ref(g, &g->nodes[0], (void *[]){xd, iv}, out), KILN_ERR_INVALID_ARGUMENT, "out of range");
  free(out[0].data);
  /* ScatterElements axis 0, add: out[idx[i][j]][j] += up[i][j]; duplicate targets accumulate */
  int32_t ev[] = {0, 2, -1, 0, 2, 1};
  uint8_t uv[] = {1, 2, 250, 4, 5, 6};
  ASSERT_OK(run_ref(g, &g->nodes[1], (void *[]){xd, ev, uv}, out));
  uint8_t want[15];
  memcpy(want, xd, 15);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++) {
      int k = ev[i * 3 + j] < 0 ? ev[i * 3 + j] + 3 : ev[i * 3 + j];
      want[k * 5 + j] = (uint8_t)(want[k * 5 + j] + uv[i * 3 + j]);
    }
  assert_memory_equal(out[0].data, want, 15);
  free(out[0].data);
  kiln_graph_destroy(g);
}

static void test_data_dependent(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d[] = {2, 3};
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 2, d), nz = fresh(g, "nz");
  kiln_node *n = add_node(g, "NonZero", &x, 1, &nz, 1);
  ASSERT_OK(kiln_node_parse(g, n));
  ASSERT_OK(kiln_node_infer(g, n));
  assert_int_equal(g->values[nz].shape.dims[0], 2);
  assert_int_equal(g->values[nz].shape.dims[1], KILN_DIM_DYNAMIC);
  float xd[] = {0, 1.5f, 0, -0.0f, NAN, 2};
  kiln_shape s;
  kiln_shape_init(&s, 2, d);
  ASSERT_OK(kiln_value_set_constant(g, x, KILN_DTYPE_FLOAT32, &s, xd));
  ASSERT_OK(kiln_node_infer(g, n));
  assert_shape(&g->values[nz], 2, (int64_t[]){2, 3});
  /* Range with constant inputs folds (tiny int output). */
  int64_t a = 10, b = 1, c = -4;
  int32_t ra = add_const(g, "ra", KILN_DTYPE_INT64, 0, NULL, &a), rb = add_const(g, "rb", KILN_DTYPE_INT64, 0, NULL, &b);
  int32_t rc = add_const(g, "rc", KILN_DTYPE_INT64, 0, NULL, &c), r = fresh(g, "r");
  kiln_node *rn = add_node(g, "Range", (int32_t[]){ra, rb, rc}, 3, &r, 1);
  ASSERT_OK(kiln_node_parse(g, rn));
  ASSERT_OK(kiln_node_infer(g, rn));
  assert_shape(&g->values[r], 1, (int64_t[]){3});
  const int64_t *rv = g->values[r].data;
  assert_non_null(rv);
  assert_int_equal(rv[0], 10);
  assert_int_equal(rv[1], 6);
  assert_int_equal(rv[2], 2);
  kiln_tensor out[1];
  n = &g->nodes[0];
  ASSERT_OK(run_ref(g, n, (void *[]){NULL}, out));
  const int64_t want[] = {0, 1, 1, 1, 1, 2};
  assert_memory_equal(out[0].data, want, sizeof want);
  free(out[0].data);
  kiln_graph_destroy(g);
}

static void test_cast_and_sources(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d = 5;
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 1, &d), y = fresh(g, "y"), h = fresh(g, "h");
  kiln_node *n = add_node(g, "Cast", &x, 1, &y, 1);
  ASSERT_OK(kiln_node_set_int(n, "to", KILN_DTYPE_INT32));
  kiln_node *n2 = add_node(g, "Cast", &x, 1, &h, 1);
  ASSERT_OK(kiln_node_set_int(n2, "to", KILN_DTYPE_FLOAT16));
  for (int i = 0; i < 2; i++) {
    ASSERT_OK(kiln_node_parse(g, &g->nodes[i]));
    ASSERT_OK(kiln_node_infer(g, &g->nodes[i]));
  }
  assert_int_equal(g->values[y].dtype, KILN_DTYPE_INT32);
  float xd[] = {-2.7f, -0.5f, 0.5f, 2.9f, 1000.25f};
  kiln_tensor out[1];
  ASSERT_OK(run_ref(g, &g->nodes[0], (void *[]){xd}, out));
  const int32_t want[] = {-2, 0, 0, 2, 1000};
  assert_memory_equal(out[0].data, want, sizeof want);
  free(out[0].data);
  ASSERT_OK(run_ref(g, &g->nodes[1], (void *[]){xd}, out));
  for (int i = 0; i < 5; i++) assert_int_equal(((uint16_t *)out[0].data)[i], kiln_f32_to_f16(xd[i]));
  free(out[0].data);
  ASSERT_OK(kiln_node_set_int(&g->nodes[0], "to", KILN_DTYPE_STRING));
  expect_error(kiln_node_parse(g, &g->nodes[0]), KILN_ERR_UNSUPPORTED, "string");
  /* Constant from value_ints; ConstantOfShape from a constant shape; Size of a static tensor. */
  int32_t c = fresh(g, "c"), co = fresh(g, "co"), sz = fresh(g, "sz");
  kiln_node *cn = add_node(g, "Constant", NULL, 0, &c, 1);
  ASSERT_OK(kiln_node_set_ints(cn, "value_ints", (int64_t[]){2, 3}, 2));
  ASSERT_OK(kiln_node_parse(g, cn));
  ASSERT_OK(kiln_node_infer(g, cn));
  assert_true(kiln_value_is_constant(&g->values[c]));
  kiln_node *con = add_node(g, "ConstantOfShape", &c, 1, &co, 1);
  ASSERT_OK(kiln_node_parse(g, con));
  ASSERT_OK(kiln_node_infer(g, con));
  assert_shape(&g->values[co], 2, (int64_t[]){2, 3});
  assert_int_equal(g->values[co].dtype, KILN_DTYPE_FLOAT32);
  kiln_node *sn = add_node(g, "Size", &x, 1, &sz, 1);
  ASSERT_OK(kiln_node_parse(g, sn));
  ASSERT_OK(kiln_node_infer(g, sn));
  assert_int_equal(*(int64_t *)g->values[sz].data, 5);
  kiln_node *bad = add_node(g, "Constant", NULL, 0, (int32_t[]){fresh(g, "bad")}, 1);
  ASSERT_OK(kiln_node_set_string(bad, "value_string", "hi"));
  expect_error(kiln_node_parse(g, bad), KILN_ERR_UNSUPPORTED, "string");
  kiln_graph_destroy(g);
}

static void test_split_d2s(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d[] = {1, 8, 1, 3};
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 4, d), a = fresh(g, "a"), b = fresh(g, "b"), y = fresh(g, "y");
  int32_t sp = add_i64(g, "sp", 2, (int64_t[]){1, 2});
  kiln_node *n = add_node(g, "Split", (int32_t[]){x, sp}, 2, (int32_t[]){a, b}, 2);
  ASSERT_OK(kiln_node_set_int(n, "axis", -1));
  kiln_node *dn = add_node(g, "DepthToSpace", &x, 1, &y, 1);
  ASSERT_OK(kiln_node_set_int(dn, "blocksize", 2));
  ASSERT_OK(kiln_node_set_string(dn, "mode", "CRD"));
  for (int i = 0; i < 2; i++) {
    ASSERT_OK(kiln_node_parse(g, &g->nodes[i]));
    ASSERT_OK(kiln_node_infer(g, &g->nodes[i]));
  }
  assert_shape(&g->values[a], 4, (int64_t[]){1, 8, 1, 1});
  assert_shape(&g->values[b], 4, (int64_t[]){1, 8, 1, 2});
  assert_shape(&g->values[y], 4, (int64_t[]){1, 2, 2, 6});
  float xd[24];
  fill_f32(xd, 24, 3);
  kiln_tensor out[2];
  ASSERT_OK(run_ref(g, &g->nodes[0], (void *[]){xd, NULL}, out));
  for (int c = 0; c < 8; c++) {
    assert_true(((float *)out[0].data)[c] == xd[c * 3]);
    assert_true(((float *)out[1].data)[c * 2 + 1] == xd[c * 3 + 2]);
  }
  free(out[0].data);
  free(out[1].data);
  ASSERT_OK(run_ref(g, &g->nodes[1], (void *[]){xd}, out));
  /* CRD: out[c][h*b+i][w*b+j] = in[c*b*b + i*b + j][h][w] */
  for (int c = 0; c < 2; c++)
    for (int i = 0; i < 2; i++)
      for (int w = 0; w < 3; w++)
        for (int j = 0; j < 2; j++)
          assert_true(((float *)out[0].data)[(c * 2 + i) * 6 + w * 2 + j] == xd[(c * 4 + i * 2 + j) * 3 + w]);
  free(out[0].data);
  ASSERT_OK(kiln_node_set_string(dn, "mode", "XYZ"));
  expect_error(kiln_node_parse(g, dn), KILN_ERR_PARSE, "mode");
  int64_t bad[] = {1, 1};
  ASSERT_OK(kiln_value_set_constant(g, sp, KILN_DTYPE_INT64, &(kiln_shape){.rank = 1, .dims = {2}}, bad));
  expect_error(kiln_node_infer(g, &g->nodes[0]), KILN_ERR_SHAPE, "sums to");
  kiln_graph_destroy(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shape_subgraph),   cmocka_unit_test(test_reshape_rules),
      cmocka_unit_test(test_slice_ref),        cmocka_unit_test(test_transpose_expand_tile),
      cmocka_unit_test(test_pad_modes),        cmocka_unit_test(test_gather_scatter),
      cmocka_unit_test(test_data_dependent),   cmocka_unit_test(test_cast_and_sources),
      cmocka_unit_test(test_split_d2s),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
