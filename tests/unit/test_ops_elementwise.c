/*
 * activation / elementwise / logic families: parse and shape inference on tiny graphs, and the
 * reference kernels on small odd-shaped random inputs against independently computed values.
 * Outputs are poisoned (0xAB bytes) before each run so an unwritten element shows up.
 */
#include "testlib.h"

#include "backend/cpu/reference/reference.h"
#include "core/dtype.h"
#include "ir/ops/activation.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng_next(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static double rng_uniform(double lo, double hi) { return lo + (hi - lo) * (double)(rng_next() >> 11) / 9007199254740992.0; }

/* Add a node whose single output is a fresh value "<op>_out"; returns the node index. */
static int32_t add_node(kiln_graph *g, const char *op, const int32_t *ins, int nin) {
  int32_t out, nid;
  char name[32];
  snprintf(name, sizeof name, "%s_%d", op, g->n_nodes);
  ASSERT_OK(kiln_graph_add_fresh_value(g, op, &out));
  ASSERT_OK(kiln_graph_add_node(g, name, "", op, ins, nin, &out, 1, &nid));
  return nid;
}

static kiln_value *out_value(kiln_graph *g, int32_t nid) { return &g->values[g->nodes[nid].outputs[0]]; }

static void parse_infer(kiln_graph *g, int32_t nid) {
  ASSERT_OK(kiln_node_parse(g, &g->nodes[nid]));
  ASSERT_OK(kiln_node_infer(g, &g->nodes[nid]));
}

static void view(const kiln_value *v, void *data, kiln_tensor *t) {
  t->dtype = v->dtype;
  t->rank = v->shape.rank;
  for (int i = 0; i < v->shape.rank; i++) t->dims[i] = v->shape.dims[i];
  t->data = data;
}

/* Run node nid's reference kernel on input buffers `data` (one per input, NULL for omitted); the
 * output buffer is malloc'd, poisoned, and returned (caller frees). */
static void *run(kiln_graph *g, int32_t nid, void *const *data) {
  kiln_node *n = &g->nodes[nid];
  kiln_tensor in[8], out;
  memset(in, 0, sizeof in);
  for (int i = 0; i < n->n_inputs; i++)
    if (n->inputs[i] >= 0) view(&g->values[n->inputs[i]], data[i], &in[i]);
  view(out_value(g, nid), NULL, &out);
  size_t nb = kiln_tensor_nbytes(&out);
  out.data = malloc(nb ? nb : 1);
  memset(out.data, 0xAB, nb);
  ASSERT_OK(kiln_reference_run(g, n, in, &out));
  return out.data;
}

static void *rand_buf(kiln_dtype dt, int64_t count, double lo, double hi) {
  void *b = malloc((size_t)count * kiln_dtype_size(dt) + 1);
  for (int64_t i = 0; i < count; i++) {
    if (kiln_dtype_is_float(dt)) kiln_dtype_store_f64(dt, b, i, rng_uniform(lo, hi));
    else kiln_dtype_store_i64(dt, b, i, (int64_t)floor(rng_uniform(lo, hi + 1)));
  }
  return b;
}

/* Offset in a tensor of `dims` (rank r) feeding output multi-index idx (rank orank), numpy rules;
 * written independently of the kernels' walker. */
static int64_t bc_off(const int64_t *dims, int r, const int64_t *idx, int orank) {
  int64_t off = 0;
  for (int d = 0; d < r; d++) off = off * dims[d] + (dims[d] == 1 ? 0 : idx[orank - r + d]);
  return off;
}
static void unravel(int64_t i, const int64_t *dims, int r, int64_t *idx) {
  for (int d = r - 1; d >= 0; d--) {
    idx[d] = i % dims[d];
    i /= dims[d];
  }
}

/* ---- shape inference ------------------------------------------------------------------------------- */

static void test_infer_broadcast(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t da[] = {3, 1, 5}, db[] = {4, 1};
  int32_t ab[2] = {test_add_tensor(g, "a", KILN_DTYPE_FLOAT32, 3, da), test_add_tensor(g, "b", KILN_DTYPE_FLOAT32, 2, db)};
  int32_t add = add_node(g, "Add", ab, 2);
  parse_infer(g, add);
  kiln_value *o = out_value(g, add);
  assert_int_equal(o->dtype, KILN_DTYPE_FLOAT32);
  assert_int_equal(o->shape.rank, 3);
  assert_true(o->shape.dims[0] == 3 && o->shape.dims[1] == 4 && o->shape.dims[2] == 5);

  int32_t lt = add_node(g, "Less", ab, 2);
  parse_infer(g, lt);
  assert_int_equal(out_value(g, lt)->dtype, KILN_DTYPE_BOOL);

  /* incompatible dims */
  int64_t dc[] = {3, 2, 6};
  int32_t bad[2] = {ab[0], test_add_tensor(g, "c", KILN_DTYPE_FLOAT32, 3, dc)};
  int32_t m = add_node(g, "Mul", bad, 2);
  ASSERT_OK(kiln_node_parse(g, &g->nodes[m]));
  expect_error(kiln_node_infer(g, &g->nodes[m]), KILN_ERR_SHAPE, "cannot broadcast");

  /* dtype mismatch */
  int32_t mixed[2] = {ab[0], test_add_tensor(g, "i", KILN_DTYPE_INT32, 2, db)};
  int32_t s = add_node(g, "Sub", mixed, 2);
  ASSERT_OK(kiln_node_parse(g, &g->nodes[s]));
  expect_error(kiln_node_infer(g, &g->nodes[s]), KILN_ERR_SHAPE, "same dtype");

  /* Pow takes a differently typed exponent; the output has the base's type */
  int32_t pw = add_node(g, "Pow", mixed, 2);
  parse_infer(g, pw);
  assert_int_equal(out_value(g, pw)->dtype, KILN_DTYPE_FLOAT32);

  /* dtype not allowed: Sqrt on int32, And on float */
  int32_t sq = add_node(g, "Sqrt", &mixed[1], 1);
  ASSERT_OK(kiln_node_parse(g, &g->nodes[sq]));
  expect_error(kiln_node_infer(g, &g->nodes[sq]), KILN_ERR_SHAPE, "int32");
  int32_t an = add_node(g, "And", ab, 2);
  ASSERT_OK(kiln_node_parse(g, &g->nodes[an]));
  expect_error(kiln_node_infer(g, &g->nodes[an]), KILN_ERR_SHAPE, "float32");

  /* arity */
  int32_t one = add_node(g, "Add", ab, 1);
  expect_error(kiln_node_parse(g, &g->nodes[one]), KILN_ERR_PARSE, "inputs");
  kiln_graph_destroy(g);
}

static void test_infer_dynamic_and_variadic(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int32_t batch;
  ASSERT_OK(kiln_graph_add_symbol(g, "batch", &batch));
  int64_t dx[] = {KILN_DIM_DYNAMIC, 3, 1}, dy[] = {1, 7}, dz[] = {3, 7};
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT16, 3, dx);
  g->values[x].shape.sym[0] = batch;
  int32_t ins[3] = {x, test_add_tensor(g, "y", KILN_DTYPE_FLOAT16, 2, dy), test_add_tensor(g, "z", KILN_DTYPE_FLOAT16, 2, dz)};
  int32_t sum = add_node(g, "Sum", ins, 3);
  parse_infer(g, sum);
  kiln_value *o = out_value(g, sum);
  assert_int_equal(o->dtype, KILN_DTYPE_FLOAT16);
  assert_int_equal(o->shape.rank, 3);
  assert_int_equal(o->shape.dims[0], KILN_DIM_DYNAMIC);
  assert_int_equal(o->shape.sym[0], batch);
  assert_true(o->shape.dims[1] == 3 && o->shape.dims[2] == 7);

  /* unknown rank propagates */
  int32_t u = test_add_tensor(g, "u", KILN_DTYPE_FLOAT16, 0, NULL);
  kiln_shape_unknown(&g->values[u].shape);
  int32_t xu[2] = {x, u};
  int32_t mx = add_node(g, "Max", xu, 2);
  parse_infer(g, mx);
  assert_int_equal(out_value(g, mx)->shape.rank, -1);

  /* Where: condition, X, Y broadcast three ways; output has X's dtype */
  int64_t dc[] = {2, 1, 1, 1}, dxx[] = {1, 5, 1}, dyy[] = {4};
  int32_t w[3] = {test_add_tensor(g, "c", KILN_DTYPE_BOOL, 4, dc), test_add_tensor(g, "wx", KILN_DTYPE_INT64, 3, dxx),
                  test_add_tensor(g, "wy", KILN_DTYPE_INT64, 1, dyy)};
  int32_t wh = add_node(g, "Where", w, 3);
  parse_infer(g, wh);
  o = out_value(g, wh);
  assert_int_equal(o->dtype, KILN_DTYPE_INT64);
  assert_int_equal(o->shape.rank, 4);
  assert_true(o->shape.dims[0] == 2 && o->shape.dims[1] == 1 && o->shape.dims[2] == 5 && o->shape.dims[3] == 4);
  /* a non-bool condition is refused */
  int32_t w2[3] = {w[1], w[1], w[2]};
  int32_t wh2 = add_node(g, "Where", w2, 3);
  ASSERT_OK(kiln_node_parse(g, &g->nodes[wh2]));
  expect_error(kiln_node_infer(g, &g->nodes[wh2]), KILN_ERR_SHAPE, "int64");
  kiln_graph_destroy(g);
}

static void test_parse_attributes(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d[] = {2, 3};
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 2, d);
  int32_t xx[2] = {x, x};

  int32_t ge = add_node(g, "Gelu", &x, 1);
  ASSERT_OK(kiln_node_set_string(&g->nodes[ge], "approximate", "cubic"));
  expect_error(kiln_node_parse(g, &g->nodes[ge]), KILN_ERR_PARSE, "approximate");
  ASSERT_OK(kiln_node_set_string(&g->nodes[ge], "approximate", "tanh"));
  ASSERT_OK(kiln_node_parse(g, &g->nodes[ge]));
  ASSERT_OK(kiln_node_parse(g, &g->nodes[ge])); /* parse twice: params replaced, not leaked */
  assert_int_equal(((kiln_activation_params *)g->nodes[ge].params)->approximate, KILN_GELU_TANH);

  int32_t md = add_node(g, "Mod", xx, 2);
  ASSERT_OK(kiln_node_set_int(&g->nodes[md], "fmod", 2));
  expect_error(kiln_node_parse(g, &g->nodes[md]), KILN_ERR_PARSE, "fmod");

  int32_t ii = add_node(g, "IsInf", &x, 1);
  ASSERT_OK(kiln_node_set_int(&g->nodes[ii], "detect_positive", 3));
  expect_error(kiln_node_parse(g, &g->nodes[ii]), KILN_ERR_PARSE, "detect_positive");

  int32_t ce = add_node(g, "Celu", &x, 1);
  ASSERT_OK(kiln_node_set_float(&g->nodes[ce], "alpha", 0.0f));
  expect_error(kiln_node_parse(g, &g->nodes[ce]), KILN_ERR_PARSE, "alpha");

  int32_t lr = add_node(g, "LeakyRelu", &x, 1);
  ASSERT_OK(kiln_node_set_float(&g->nodes[lr], "alpha", NAN));
  expect_error(kiln_node_parse(g, &g->nodes[lr]), KILN_ERR_PARSE, "finite");
  ASSERT_OK(kiln_node_set_string(&g->nodes[lr], "alpha", "x")); /* wrong kind */
  expect_error(kiln_node_parse(g, &g->nodes[lr]), KILN_OK, "alpha");

  /* Clip: attributes before opset 11, inputs from 11 */
  g->opset = 10;
  int32_t cl = add_node(g, "Clip", xx, 2);
  expect_error(kiln_node_parse(g, &g->nodes[cl]), KILN_ERR_PARSE, "inputs");
  int32_t cl1 = add_node(g, "Clip", &x, 1);
  ASSERT_OK(kiln_node_set_float(&g->nodes[cl1], "min", -1.0f));
  parse_infer(g, cl1);
  double lo, hi;
  bool known;
  ASSERT_OK(kiln_clip_bounds(g, &g->nodes[cl1], &lo, &hi, &known));
  assert_true(known && lo == -1.0 && hi == FLT_MAX);

  /* legacy broadcast with a non-suffix axis is unsupported; suffix axis is fine */
  g->opset = 6;
  int64_t d1[] = {2};
  int32_t ab[2] = {x, test_add_tensor(g, "b1", KILN_DTYPE_FLOAT32, 1, d1)};
  int32_t lg = add_node(g, "Add", ab, 2);
  ASSERT_OK(kiln_node_set_int(&g->nodes[lg], "broadcast", 1));
  ASSERT_OK(kiln_node_set_int(&g->nodes[lg], "axis", 0));
  ASSERT_OK(kiln_node_parse(g, &g->nodes[lg]));
  expect_error(kiln_node_infer(g, &g->nodes[lg]), KILN_ERR_UNSUPPORTED, "axis");
  int64_t d3[] = {3};
  int32_t ab3[2] = {x, test_add_tensor(g, "b3", KILN_DTYPE_FLOAT32, 1, d3)};
  int32_t lg2 = add_node(g, "Add", ab3, 2);
  ASSERT_OK(kiln_node_set_int(&g->nodes[lg2], "broadcast", 1));
  ASSERT_OK(kiln_node_set_int(&g->nodes[lg2], "axis", 1));
  parse_infer(g, lg2);

  /* Clip opset 13 with constant bounds */
  g->opset = 13;
  int32_t lo_v = test_add_tensor(g, "lo", KILN_DTYPE_FLOAT32, 0, NULL);
  float lov = 0.5f;
  kiln_shape sc;
  kiln_shape_init(&sc, 0, NULL);
  ASSERT_OK(kiln_value_set_constant(g, lo_v, KILN_DTYPE_FLOAT32, &sc, &lov));
  int32_t cin[3] = {x, lo_v, -1};
  int32_t cl2 = add_node(g, "Clip", cin, 3);
  parse_infer(g, cl2);
  ASSERT_OK(kiln_clip_bounds(g, &g->nodes[cl2], &lo, &hi, &known));
  assert_true(known && lo == 0.5 && isinf(hi));
  /* a bound of another dtype is refused */
  int32_t bi = test_add_tensor(g, "bi", KILN_DTYPE_INT32, 0, NULL);
  int32_t cin2[2] = {x, bi};
  int32_t cl3 = add_node(g, "Clip", cin2, 2);
  ASSERT_OK(kiln_node_parse(g, &g->nodes[cl3]));
  expect_error(kiln_node_infer(g, &g->nodes[cl3]), KILN_ERR_SHAPE, "dtype");
  kiln_graph_destroy(g);
}

/* ---- reference kernels ------------------------------------------------------------------------------ */

/* Binary float ops with broadcasting, float32: compared exactly with double math rounded once. */
static void test_ref_binary_float(void **state) {
  const char *ops[] = {"Add", "Sub", "Mul", "Div", "Pow", "Mod"};
  for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
    kiln_graph *g;
    ASSERT_OK(kiln_graph_create(&g));
    int64_t da[] = {3, 1, 5}, db[] = {4, 1}, dout[] = {3, 4, 5};
    int32_t ab[2] = {test_add_tensor(g, "a", KILN_DTYPE_FLOAT32, 3, da), test_add_tensor(g, "b", KILN_DTYPE_FLOAT32, 2, db)};
    int32_t nid = add_node(g, ops[k], ab, 2);
    if (strcmp(ops[k], "Mod") == 0) ASSERT_OK(kiln_node_set_int(&g->nodes[nid], "fmod", 1));
    parse_infer(g, nid);
    float *a = rand_buf(KILN_DTYPE_FLOAT32, 15, 0.1, 3), *b = rand_buf(KILN_DTYPE_FLOAT32, 4, -2, 2);
    void *in[2] = {a, b};
    float *y = run(g, nid, in);
    for (int64_t i = 0; i < 60; i++) {
      int64_t idx[3];
      unravel(i, dout, 3, idx);
      double x0 = a[bc_off(da, 3, idx, 3)], x1 = b[bc_off(db, 2, idx, 3)], e;
      switch (k) {
      case 0: e = x0 + x1; break;
      case 1: e = x0 - x1; break;
      case 2: e = x0 * x1; break;
      case 3: e = x0 / x1; break;
      case 4: e = pow(x0, x1); break;
      default: e = fmod(x0, x1); break;
      }
      assert_true(y[i] == (float)e);
    }
    free(a);
    free(b);
    free(y);
    kiln_graph_destroy(g);
  }
}

/* Integer arithmetic: wrap-around, truncating division, both Mod conventions, division by zero. */
static void test_ref_integer_arith(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d[] = {7};
  int32_t ab[2] = {test_add_tensor(g, "a", KILN_DTYPE_INT8, 1, d), test_add_tensor(g, "b", KILN_DTYPE_INT8, 1, d)};
  int8_t a[7] = {100, -128, 7, -7, 7, -7, 5}, b[7] = {100, -1, 2, 2, -2, -2, 0};
  void *in[2] = {a, b};
  int32_t add = add_node(g, "Add", ab, 2), mul = add_node(g, "Mul", ab, 2), div = add_node(g, "Div", ab, 2);
  int32_t mod0 = add_node(g, "Mod", ab, 2), mod1 = add_node(g, "Mod", ab, 2), neg = add_node(g, "Neg", ab, 1);
  int32_t abs_ = add_node(g, "Abs", ab, 1);
  ASSERT_OK(kiln_node_set_int(&g->nodes[mod1], "fmod", 1));
  int32_t all[] = {add, mul, div, mod0, mod1, neg, abs_};
  for (int i = 0; i < 7; i++) parse_infer(g, all[i]);
  int8_t *y = run(g, add, in);
  int8_t e_add[7] = {-56, 127, 9, -5, 5, -9, 5};
  assert_memory_equal(y, e_add, 7);
  free(y);
  y = run(g, mul, in);
  int8_t e_mul[7] = {16, -128, 14, -14, -14, 14, 0}; /* 100*100 = 10000 = 16 mod 256; -128*-1 wraps */
  assert_memory_equal(y, e_mul, 7);
  free(y);
  y = run(g, div, in);
  int8_t e_div[7] = {1, -128, 3, -3, -3, 3, 0}; /* truncation; x/0 -> 0 */
  assert_memory_equal(y, e_div, 7);
  free(y);
  y = run(g, mod0, in);
  int8_t e_mod0[7] = {0, 0, 1, 1, -1, -1, 0}; /* sign of the divisor */
  assert_memory_equal(y, e_mod0, 7);
  free(y);
  y = run(g, mod1, in);
  int8_t e_mod1[7] = {0, 0, 1, -1, 1, -1, 0}; /* sign of the dividend */
  assert_memory_equal(y, e_mod1, 7);
  free(y);
  y = run(g, neg, in);
  int8_t e_neg[7] = {-100, -128, -7, 7, -7, 7, -5};
  assert_memory_equal(y, e_neg, 7);
  free(y);
  y = run(g, abs_, in);
  int8_t e_abs[7] = {100, -128, 7, 7, 7, 7, 5};
  assert_memory_equal(y, e_abs, 7);
  free(y);
  kiln_graph_destroy(g);

  /* int64 extremes and uint8/uint64 wrap */
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d2[] = {3};
  int32_t ll[2] = {test_add_tensor(g, "a", KILN_DTYPE_INT64, 1, d2), test_add_tensor(g, "b", KILN_DTYPE_INT64, 1, d2)};
  int64_t la[3] = {INT64_MIN, INT64_MAX, INT64_MIN}, lb[3] = {-1, 1, -1};
  void *lin[2] = {la, lb};
  int32_t ldiv = add_node(g, "Div", ll, 2), ladd = add_node(g, "Add", ll, 2), lmod = add_node(g, "Mod", ll, 2);
  parse_infer(g, ldiv);
  parse_infer(g, ladd);
  parse_infer(g, lmod);
  int64_t *ly = run(g, ldiv, lin);
  assert_true(ly[0] == INT64_MIN && ly[1] == INT64_MAX);
  free(ly);
  ly = run(g, ladd, lin);
  assert_true(ly[0] == INT64_MAX && ly[1] == INT64_MIN);
  free(ly);
  ly = run(g, lmod, lin);
  assert_true(ly[0] == 0 && ly[1] == 0);
  free(ly);
  int32_t uu[2] = {test_add_tensor(g, "ua", KILN_DTYPE_UINT64, 1, d2), test_add_tensor(g, "ub", KILN_DTYPE_UINT64, 1, d2)};
  uint64_t ua[3] = {3, UINT64_MAX, UINT64_MAX - 1}, ub[3] = {5, 2, UINT64_MAX};
  void *uin[2] = {ua, ub};
  int32_t usub = add_node(g, "Sub", uu, 2), umax = add_node(g, "Max", uu, 2), udiv = add_node(g, "Div", uu, 2);
  parse_infer(g, usub);
  parse_infer(g, umax);
  parse_infer(g, udiv);
  uint64_t *uy = run(g, usub, uin);
  assert_true(uy[0] == UINT64_MAX - 1 && uy[1] == UINT64_MAX - 2 && uy[2] == UINT64_MAX);
  free(uy);
  uy = run(g, umax, uin);
  assert_true(uy[0] == 5 && uy[1] == UINT64_MAX && uy[2] == UINT64_MAX);
  free(uy);
  uy = run(g, udiv, uin);
  assert_true(uy[0] == 0 && uy[1] == UINT64_MAX / 2 && uy[2] == 0);
  free(uy);
  kiln_graph_destroy(g);
}

static void test_ref_pow_types(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d[] = {5};
  int32_t bi = test_add_tensor(g, "bi", KILN_DTYPE_INT32, 1, d), ei = test_add_tensor(g, "ei", KILN_DTYPE_INT64, 1, d);
  int32_t ef = test_add_tensor(g, "ef", KILN_DTYPE_FLOAT32, 1, d), bf = test_add_tensor(g, "bf", KILN_DTYPE_FLOAT16, 1, d);
  int32_t ii[2] = {bi, ei}, if_[2] = {bi, ef}, fi[2] = {bf, ei};
  int32_t p_ii = add_node(g, "Pow", ii, 2), p_if = add_node(g, "Pow", if_, 2), p_fi = add_node(g, "Pow", fi, 2);
  parse_infer(g, p_ii);
  parse_infer(g, p_if);
  parse_infer(g, p_fi);
  assert_int_equal(out_value(g, p_fi)->dtype, KILN_DTYPE_FLOAT16);
  int32_t base[5] = {3, -2, 2, -1, 7};
  int64_t ex[5] = {4, 3, 31, -3, -1};
  float exf[5] = {0.5f, 2.0f, 3.0f, 1.0f, 2.0f};
  uint16_t bh[5];
  for (int i = 0; i < 5; i++) bh[i] = kiln_f32_to_f16((float)base[i] * 0.5f);
  void *in_ii[2] = {base, ex}, *in_if[2] = {base, exf}, *in_fi[2] = {bh, ex};
  int32_t *y = run(g, p_ii, in_ii);
  int32_t e_ii[5] = {81, -8, INT32_MIN /* 2^31 wraps */, -1, 0};
  assert_memory_equal(y, e_ii, sizeof e_ii);
  free(y);
  y = run(g, p_if, in_if);
  int32_t e_if[5] = {1 /* sqrt 3 truncated */, 4, 8, -1, 49};
  assert_memory_equal(y, e_if, sizeof e_if);
  free(y);
  uint16_t *h = run(g, p_fi, in_fi);
  for (int i = 0; i < 5; i++) assert_true(h[i] == kiln_f32_to_f16((float)pow(base[i] * 0.5, (double)ex[i])));
  free(h);
  kiln_graph_destroy(g);
}

/* Unary math over float64, float16 and bfloat16 against libm, plus Round's half-to-even. */
static void test_ref_unary_math(void **state) {
  const char *ops[] = {"Sqrt", "Exp", "Log", "Reciprocal", "Floor", "Ceil", "Sin", "Cos", "Tan", "Atan",
                       "Sinh", "Cosh", "Asinh", "Abs", "Neg", "Sign", "Tanh", "Sigmoid", "Softsign", "Erf"};
  kiln_dtype dts[] = {KILN_DTYPE_FLOAT64, KILN_DTYPE_FLOAT16, KILN_DTYPE_BFLOAT16};
  for (size_t t = 0; t < 3; t++) {
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
      kiln_graph *g;
      ASSERT_OK(kiln_graph_create(&g));
      int64_t d[] = {3, 7};
      int32_t x = test_add_tensor(g, "x", dts[t], 2, d);
      int32_t nid = add_node(g, ops[k], &x, 1);
      parse_infer(g, nid);
      void *a = rand_buf(dts[t], 21, 0.05, 1.5);
      void *in[1] = {a};
      void *y = run(g, nid, in);
      for (int64_t i = 0; i < 21; i++) {
        double v = kiln_dtype_load_f64(dts[t], a, i), e;
        switch (k) {
        case 0: e = sqrt(v); break;
        case 1: e = exp(v); break;
        case 2: e = log(v); break;
        case 3: e = 1 / v; break;
        case 4: e = floor(v); break;
        case 5: e = ceil(v); break;
        case 6: e = sin(v); break;
        case 7: e = cos(v); break;
        case 8: e = tan(v); break;
        case 9: e = atan(v); break;
        case 10: e = sinh(v); break;
        case 11: e = cosh(v); break;
        case 12: e = asinh(v); break;
        case 13: e = fabs(v); break;
        case 14: e = -v; break;
        case 15: e = v > 0 ? 1 : v < 0 ? -1 : 0; break;
        case 16: e = tanh(v); break;
        case 17: e = 1 / (1 + exp(-v)); break;
        case 18: e = v / (1 + fabs(v)); break;
        default: e = erf(v); break;
        }
        double got = kiln_dtype_load_f64(dts[t], y, i);
        double tol = dts[t] == KILN_DTYPE_FLOAT64 ? 1e-12 : dts[t] == KILN_DTYPE_FLOAT16 ? 1e-3 : 8e-3;
        if (!(fabs(got - e) <= tol * fabs(e) + 1e-300)) {
          print_error("%s %s [%d]: %g vs %g\n", ops[k], kiln_dtype_name(dts[t]), (int)i, got, e);
          fail();
        }
      }
      free(a);
      free(y);
      kiln_graph_destroy(g);
    }
  }
  /* Round: half to even, sign of zero kept */
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d[] = {9};
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 1, d);
  int32_t nid = add_node(g, "Round", &x, 1);
  parse_infer(g, nid);
  float v[9] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 2.4f, -2.6f, NAN}, e[8] = {0, 2, 2, -0.0f, -2, -2, 2, -3};
  void *in[1] = {v};
  float *y = run(g, nid, in);
  for (int i = 0; i < 8; i++) assert_true(y[i] == e[i] && signbit(y[i]) == signbit(e[i]));
  assert_true(isnan(y[8]));
  free(y);
  kiln_graph_destroy(g);
}

/* Parameterized activations against their formulas, float32, including the defaults. */
static void test_ref_activations(void **state) {
  const char *ops[] = {"Relu", "LeakyRelu", "Elu", "Selu", "Celu", "ThresholdedRelu", "HardSigmoid", "HardSwish",
                       "Softplus", "Gelu", "Gelu"};
  for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
    kiln_graph *g;
    ASSERT_OK(kiln_graph_create(&g));
    int64_t d[] = {2, 3, 5};
    int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 3, d);
    int32_t nid = add_node(g, ops[k], &x, 1);
    kiln_node *n = &g->nodes[nid];
    if (k == 1) ASSERT_OK(kiln_node_set_float(n, "alpha", 0.3f));
    if (k == 4) ASSERT_OK(kiln_node_set_float(n, "alpha", 2.0f));
    if (k == 10) ASSERT_OK(kiln_node_set_string(n, "approximate", "tanh"));
    parse_infer(g, nid);
    float *a = rand_buf(KILN_DTYPE_FLOAT32, 30, -4, 4);
    void *in[1] = {a};
    float *y = run(g, nid, in);
    for (int i = 0; i < 30; i++) {
      double v = a[i], e;
      switch (k) {
      case 0: e = v > 0 ? v : 0; break;
      case 1: e = v < 0 ? 0.3f * v : v; break;
      case 2: e = v < 0 ? exp(v) - 1 : v; break;
      case 3: e = v > 0 ? 1.0507009873554805 * v : 1.0507009873554805 * 1.6732632423543772 * (exp(v) - 1); break;
      case 4: e = fmax(0, v) + fmin(0, 2 * (exp(v / 2) - 1)); break;
      case 5: e = v > 1 ? v : 0; break;
      case 6: e = fmax(0, fmin(1, 0.2 * v + 0.5)); break;
      case 7: e = v * fmax(0, fmin(1, v / 6 + 0.5)); break;
      case 8: e = log(1 + exp(v)); break;
      case 9: e = 0.5 * v * (1 + erf(v / sqrt(2))); break;
      default: e = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))); break;
      }
      if (!(fabs(y[i] - e) <= 1e-6 * fabs(e) + 1e-7)) {
        print_error("%s[%d](%g): %g vs %g\n", ops[k], i, v, y[i], e);
        fail();
      }
    }
    free(a);
    free(y);
    kiln_graph_destroy(g);
  }
}

/* PRelu with a per-channel slope, Relu on int32, Clip (attributes, float inputs, int64 inputs). */
static void test_ref_prelu_relu_clip(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t dx[] = {2, 3, 2, 2}, ds[] = {3, 1, 1};
  int32_t xs[2] = {test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 4, dx), test_add_tensor(g, "s", KILN_DTYPE_FLOAT32, 3, ds)};
  int32_t pr = add_node(g, "PRelu", xs, 2);
  parse_infer(g, pr);
  float *x = rand_buf(KILN_DTYPE_FLOAT32, 24, -1, 1), s[3] = {0.1f, -2.0f, 0.5f};
  void *in[2] = {x, s};
  float *y = run(g, pr, in);
  for (int i = 0; i < 24; i++) {
    float sl = s[(i / 4) % 3];
    assert_true(y[i] == (x[i] < 0 ? (float)((double)x[i] * sl) : x[i]));
  }
  free(y);
  /* slope that would enlarge X is refused */
  int64_t dbig[] = {3, 2, 2, 2, 2};
  int32_t xb[2] = {xs[0], test_add_tensor(g, "sb", KILN_DTYPE_FLOAT32, 5, dbig)};
  int32_t prb = add_node(g, "PRelu", xb, 2);
  ASSERT_OK(kiln_node_parse(g, &g->nodes[prb]));
  expect_error(kiln_node_infer(g, &g->nodes[prb]), KILN_ERR_SHAPE, "");

  int64_t di[] = {5};
  int32_t xi = test_add_tensor(g, "xi", KILN_DTYPE_INT32, 1, di);
  int32_t re = add_node(g, "Relu", &xi, 1);
  parse_infer(g, re);
  int32_t iv[5] = {-5, 0, 7, INT32_MIN, INT32_MAX}, ie[5] = {0, 0, 7, 0, INT32_MAX};
  void *iin[1] = {iv};
  int32_t *iy = run(g, re, iin);
  assert_memory_equal(iy, ie, sizeof ie);
  free(iy);

  /* Clip opset 13, int64 with bounds near the extremes (exact, not via double) */
  int32_t xl = test_add_tensor(g, "xl", KILN_DTYPE_INT64, 1, di);
  int32_t lo = test_add_tensor(g, "lo", KILN_DTYPE_INT64, 0, NULL), hi = test_add_tensor(g, "hi", KILN_DTYPE_INT64, 0, NULL);
  int32_t cin[3] = {xl, lo, hi};
  int32_t cl = add_node(g, "Clip", cin, 3);
  parse_infer(g, cl);
  int64_t lv[5] = {INT64_MAX, INT64_MAX - 1, -3, 0, INT64_MIN}, lov = -2, hiv = INT64_MAX - 1;
  int64_t le[5] = {INT64_MAX - 1, INT64_MAX - 1, -2, 0, -2};
  void *lin[3] = {lv, &lov, &hiv};
  int64_t *ly = run(g, cl, lin);
  assert_memory_equal(ly, le, sizeof le);
  free(ly);
  /* only max given (min omitted) */
  int32_t cin2[3] = {xl, -1, hi};
  int32_t cl2 = add_node(g, "Clip", cin2, 3);
  parse_infer(g, cl2);
  void *lin2[3] = {lv, NULL, &hiv};
  ly = run(g, cl2, lin2);
  assert_true(ly[0] == INT64_MAX - 1 && ly[4] == INT64_MIN && ly[2] == -3);
  free(ly);

  /* Clip opset 6: attribute bounds; default max is FLT_MAX, so +inf clips to it */
  g->opset = 6;
  int64_t df[] = {4};
  int32_t xf = test_add_tensor(g, "xf", KILN_DTYPE_FLOAT32, 1, df);
  int32_t c6 = add_node(g, "Clip", &xf, 1);
  ASSERT_OK(kiln_node_set_float(&g->nodes[c6], "min", -1.0f));
  parse_infer(g, c6);
  float fv[4] = {-5, 0.25f, INFINITY, NAN};
  void *fin[1] = {fv};
  float *fy = run(g, c6, fin);
  assert_true(fy[0] == -1 && fy[1] == 0.25f && fy[2] == FLT_MAX && isnan(fy[3]));
  free(fy);
  free(x);
  kiln_graph_destroy(g);
}

/* Variadic ops with more inputs than the walker keeps (exercises the per-element offset path). */
static void test_ref_variadic(void **state) {
  const char *ops[] = {"Sum", "Mean", "Min", "Max"};
  int64_t dims[6][3] = {{2, 3, 4}, {3, 1}, {4}, {1, 1, 1}, {2, 1, 4}, {1, 3, 1}};
  int ranks[6] = {3, 2, 1, 3, 3, 3};
  int64_t counts[6] = {24, 3, 4, 1, 8, 3}, dout[3] = {2, 3, 4};
  for (size_t k = 0; k < 4; k++) {
    kiln_graph *g;
    ASSERT_OK(kiln_graph_create(&g));
    int32_t ins[6];
    void *bufs[6];
    char name[8];
    for (int j = 0; j < 6; j++) {
      snprintf(name, sizeof name, "i%d", j);
      ins[j] = test_add_tensor(g, name, KILN_DTYPE_FLOAT64, ranks[j], dims[j]);
      bufs[j] = rand_buf(KILN_DTYPE_FLOAT64, counts[j], -10, 10);
    }
    /* a NaN in one input must reach Min/Max outputs that read it */
    ((double *)bufs[3])[0] = k >= 2 ? NAN : 1.0;
    int32_t nid = add_node(g, ops[k], ins, 6);
    parse_infer(g, nid);
    double *y = run(g, nid, bufs);
    for (int64_t i = 0; i < 24; i++) {
      int64_t idx[3];
      unravel(i, dout, 3, idx);
      double acc = 0;
      for (int j = 0; j < 6; j++) {
        double v = ((double *)bufs[j])[bc_off(dims[j], ranks[j], idx, 3)];
        if (j == 0) acc = v;
        else if (k <= 1) acc += v;
        else if (k == 2) acc = isnan(acc) || isnan(v) ? NAN : fmin(acc, v);
        else acc = isnan(acc) || isnan(v) ? NAN : fmax(acc, v);
      }
      if (k == 1) acc /= 6;
      if (k >= 2) assert_true(isnan(y[i]));
      else assert_true(fabs(y[i] - acc) <= 1e-12 * fabs(acc) + 1e-12);
    }
    /* single input: a copy */
    int32_t one = add_node(g, ops[k], ins, 1);
    parse_infer(g, one);
    double *y1 = run(g, one, bufs);
    assert_memory_equal(y1, bufs[0], 24 * sizeof(double));
    free(y1);
    for (int j = 0; j < 6; j++) free(bufs[j]);
    free(y);
    kiln_graph_destroy(g);
  }
}

/* Comparisons (exact for int64 / uint64 extremes, NaN unordered), logic, Where, IsNaN/IsInf. */
static void test_ref_logic(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d[] = {4};
  int32_t ll[2] = {test_add_tensor(g, "a", KILN_DTYPE_INT64, 1, d), test_add_tensor(g, "b", KILN_DTYPE_INT64, 1, d)};
  int64_t la[4] = {INT64_MAX, INT64_MAX - 1, -5, 0}, lb[4] = {INT64_MAX - 1, INT64_MAX - 1, 5, 0};
  void *lin[2] = {la, lb};
  const char *cmp[] = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"};
  uint8_t exp_l[5][4] = {{0, 1, 0, 1}, {0, 0, 1, 0}, {1, 0, 0, 0}, {0, 1, 1, 1}, {1, 1, 0, 1}};
  for (int k = 0; k < 5; k++) {
    int32_t nid = add_node(g, cmp[k], ll, 2);
    parse_infer(g, nid);
    uint8_t *y = run(g, nid, lin);
    assert_memory_equal(y, exp_l[k], 4);
    free(y);
  }
  /* float with NaN and broadcasting: [2,1] vs [3] */
  int64_t df1[] = {2, 1}, df2[] = {3};
  int32_t ff[2] = {test_add_tensor(g, "f1", KILN_DTYPE_FLOAT16, 2, df1), test_add_tensor(g, "f2", KILN_DTYPE_FLOAT16, 1, df2)};
  uint16_t f1[2] = {kiln_f32_to_f16(1.0f), kiln_f32_to_f16(NAN)};
  uint16_t f2[3] = {kiln_f32_to_f16(0.5f), kiln_f32_to_f16(1.0f), kiln_f32_to_f16(2.0f)};
  void *fin[2] = {f1, f2};
  int32_t ge = add_node(g, "GreaterOrEqual", ff, 2);
  parse_infer(g, ge);
  uint8_t *y = run(g, ge, fin);
  uint8_t e_ge[6] = {1, 1, 0, 0, 0, 0};
  assert_memory_equal(y, e_ge, 6);
  free(y);

  /* And / Or / Xor / Not with broadcasting [2,2] x [2] */
  int64_t db1[] = {2, 2}, db2[] = {2};
  int32_t bb[2] = {test_add_tensor(g, "b1", KILN_DTYPE_BOOL, 2, db1), test_add_tensor(g, "b2", KILN_DTYPE_BOOL, 1, db2)};
  uint8_t b1[4] = {1, 0, 0, 1}, b2[2] = {0, 1};
  void *bin[2] = {b1, b2};
  const char *lops[] = {"And", "Or", "Xor"};
  uint8_t e_b2[3][4] = {{0, 0, 0, 1}, {1, 1, 0, 1}, {1, 1, 0, 0}};
  for (int k = 0; k < 3; k++) {
    int32_t nid = add_node(g, lops[k], bb, 2);
    parse_infer(g, nid);
    y = run(g, nid, bin);
    assert_memory_equal(y, e_b2[k], 4);
    free(y);
  }
  int32_t nt = add_node(g, "Not", bb, 1);
  parse_infer(g, nt);
  y = run(g, nt, bin);
  uint8_t e_not[4] = {0, 1, 1, 0};
  assert_memory_equal(y, e_not, 4);
  free(y);

  /* Where with 3-way broadcast: cond [2,1,1], X [1,3,1] (uint16), Y [4] */
  int64_t dc[] = {2, 1, 1}, dx[] = {1, 3, 1}, dy[] = {4};
  int32_t w[3] = {test_add_tensor(g, "c", KILN_DTYPE_BOOL, 3, dc), test_add_tensor(g, "wx", KILN_DTYPE_UINT16, 3, dx),
                  test_add_tensor(g, "wy", KILN_DTYPE_UINT16, 1, dy)};
  uint8_t c[2] = {1, 0};
  uint16_t wx[3] = {10, 20, 30}, wy[4] = {1, 2, 3, 4};
  void *win[3] = {c, wx, wy};
  int32_t wh = add_node(g, "Where", w, 3);
  parse_infer(g, wh);
  uint16_t *wo = run(g, wh, win);
  for (int i = 0; i < 24; i++) {
    int i0 = i / 12, i1 = (i / 4) % 3, i2 = i % 4;
    assert_int_equal(wo[i], c[i0] ? wx[i1] : wy[i2]);
  }
  free(wo);

  /* IsNaN / IsInf with detect flags, bfloat16 and float64 */
  int64_t dn[] = {5};
  int32_t xn = test_add_tensor(g, "xn", KILN_DTYPE_FLOAT64, 1, dn);
  double nv[5] = {1.0, INFINITY, -INFINITY, NAN, -0.0};
  void *nin[1] = {nv};
  int32_t isn = add_node(g, "IsNaN", &xn, 1), isi = add_node(g, "IsInf", &xn, 1), isp = add_node(g, "IsInf", &xn, 1);
  ASSERT_OK(kiln_node_set_int(&g->nodes[isp], "detect_negative", 0));
  parse_infer(g, isn);
  parse_infer(g, isi);
  parse_infer(g, isp);
  uint8_t e_isn[5] = {0, 0, 0, 1, 0}, e_isi[5] = {0, 1, 1, 0, 0}, e_isp[5] = {0, 1, 0, 0, 0};
  y = run(g, isn, nin);
  assert_memory_equal(y, e_isn, 5);
  free(y);
  y = run(g, isi, nin);
  assert_memory_equal(y, e_isi, 5);
  free(y);
  y = run(g, isp, nin);
  assert_memory_equal(y, e_isp, 5);
  free(y);
  kiln_graph_destroy(g);
}

/* Kernels handed inconsistent tensors return an error instead of reading out of bounds. */
static void test_ref_rejects_bad_tensors(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d[] = {4};
  int32_t ab[2] = {test_add_tensor(g, "a", KILN_DTYPE_FLOAT32, 1, d), test_add_tensor(g, "b", KILN_DTYPE_FLOAT32, 1, d)};
  int32_t add = add_node(g, "Add", ab, 2);
  parse_infer(g, add);
  float a[4] = {0}, b[4] = {0}, y[4];
  kiln_tensor in[2], out;
  view(&g->values[ab[0]], a, &in[0]);
  view(&g->values[ab[1]], b, &in[1]);
  in[1].dims[0] = 3; /* does not broadcast to 4 */
  view(out_value(g, add), y, &out);
  expect_error(kiln_reference_run(g, &g->nodes[add], in, &out), KILN_ERR_SHAPE, "broadcast");
  in[1].dims[0] = 4;
  in[1].dtype = KILN_DTYPE_FLOAT64;
  expect_error(kiln_reference_run(g, &g->nodes[add], in, &out), KILN_ERR_SHAPE, "dtype");
  kiln_graph_destroy(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_infer_broadcast),
      cmocka_unit_test(test_infer_dynamic_and_variadic),
      cmocka_unit_test(test_parse_attributes),
      cmocka_unit_test(test_ref_binary_float),
      cmocka_unit_test(test_ref_integer_arith),
      cmocka_unit_test(test_ref_pow_types),
      cmocka_unit_test(test_ref_unary_math),
      cmocka_unit_test(test_ref_activations),
      cmocka_unit_test(test_ref_prelu_relu_clip),
      cmocka_unit_test(test_ref_variadic),
      cmocka_unit_test(test_ref_logic),
      cmocka_unit_test(test_ref_rejects_bad_tensors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
