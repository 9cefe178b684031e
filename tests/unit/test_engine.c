/* Engine build -> serialize -> load -> run, against ONNX Runtime's reference outputs for YOLOv8n, plus
 * the loader's refusals (truncated, corrupted, foreign, wrong target) and binding errors. */
#include "testlib.h"

#include "core/file.h"
#include "core/hash.h"
#include "onnx/onnx.h"
#include "passes/passes.h"
#include "runtime/engine_format.h"

#include <math.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL KILN_SHARED_DIR "/models/yolov8n.onnx"
#define REF KILN_SHARED_DIR "/reference/yolov8n/"

static void *g_engine;
static size_t g_engine_size;

static int setup(void **state) {
  if (!test_file_exists(MODEL)) return 0;
  kiln_network *net;
  kiln_status st = kiln_network_load_onnx(MODEL, &net);
  if (st) {
    fprintf(stderr, "%s\n", kiln_status_message(st));
    return -1;
  }
  st = kiln_build(net, NULL, &g_engine, &g_engine_size);
  kiln_network_destroy(net);
  if (st) fprintf(stderr, "%s\n", kiln_status_message(st));
  return st ? -1 : 0;
}

static int teardown(void **state) {
  free(g_engine);
  return 0;
}

static void run_image(kiln_context *c, const char *name, float *out, size_t out_bytes) {
  char in_path[512], ref_path[512];
  snprintf(in_path, sizeof in_path, REF "%s.input.bin", name);
  snprintf(ref_path, sizeof ref_path, REF "%s.output.bin", name);
  size_t in_len, ref_len;
  void *in = test_read_file(in_path, &in_len);
  float *ref = test_read_file(ref_path, &ref_len);
  assert_non_null(in);
  assert_non_null(ref);
  assert_int_equal(ref_len, out_bytes);
  for (size_t i = 0; i < out_bytes / 4; i++) out[i] = NAN; /* poison */
  ASSERT_OK(kiln_context_bind(c, "images", in, in_len));
  ASSERT_OK(kiln_context_bind(c, "output0", out, out_bytes));
  ASSERT_OK(kiln_context_enqueue(c, NULL));
  double err = test_rel_l2(out, ref, out_bytes / 4);
  print_message("yolov8n %s: rel_l2 = %.3e\n", name, err);
  assert_true(err <= 1e-4);
  free(in);
  free(ref);
}

static void test_yolov8n_matches_ort(void **state) {
  if (!g_engine) skip();
  char path[] = "/tmp/kiln_test_engine_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  ASSERT_OK(kiln_file_write_atomic(path, g_engine, g_engine_size));
  kiln_engine *e;
  ASSERT_OK(kiln_engine_load_file(path, &e));
  unlink(path);
  assert_int_equal(kiln_engine_num_bindings(e), 2);
  kiln_binding_info bi;
  ASSERT_OK(kiln_engine_binding(e, 1, &bi));
  assert_string_equal(bi.name, "output0");
  assert_int_equal(bi.nbytes, 84 * 8400 * 4);
  kiln_context *c1, *c2;
  kiln_context_options o = {2};
  ASSERT_OK(kiln_context_create(e, &o, &c1));
  ASSERT_OK(kiln_context_create(e, &o, &c2)); /* a second context shares the weights */
  float *out = malloc(bi.nbytes);
  const char *images[] = {"rand", "dog", "horses", "person"};
  for (int i = 0; i < 4; i++) run_image(i % 2 ? c2 : c1, images[i], out, bi.nbytes);
  free(out);
  kiln_context_destroy(c1);
  kiln_context_destroy(c2);
  kiln_engine_destroy(e);
}

static void test_bindings(void **state) {
  if (!g_engine) skip();
  kiln_engine *e;
  ASSERT_OK(kiln_engine_load_memory(g_engine, g_engine_size, &e));
  kiln_context *c;
  ASSERT_OK(kiln_context_create(e, NULL, &c));
  float x;
  expect_error(kiln_context_bind(c, "nope", &x, 4), KILN_ERR_INVALID_ARGUMENT, "no input or output named 'nope'");
  expect_error(kiln_context_bind(c, "images", &x, 4), KILN_ERR_INVALID_ARGUMENT, "needs 4915200 bytes");
  expect_error(kiln_context_enqueue(c, NULL), KILN_ERR_INVALID_ARGUMENT, "is not bound");
  kiln_context_destroy(c);
  kiln_engine_destroy(e);
}

static void expect_refused(const void *img, size_t size, kiln_status_code code, const char *needle) {
  kiln_engine *e = NULL;
  expect_error(kiln_engine_load_memory(img, size, &e), code, needle);
  assert_null(e);
}

static void test_refuses_bad_engines(void **state) {
  if (!g_engine) skip();
  uint8_t *img = malloc(g_engine_size);
  /* empty, truncated at several points */
  expect_refused(g_engine, 0, KILN_ERR_PARSE, "too short");
  size_t cuts[] = {7, 100, 4096, g_engine_size / 2, g_engine_size - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
    expect_refused(g_engine, cuts[i], KILN_ERR_PARSE, cuts[i] < 128 ? "too short" : "truncated");
  /* one flipped bit anywhere: the checksum catches it */
  size_t spots[] = {200, 5000, g_engine_size / 3, g_engine_size - 10};
  for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
    memcpy(img, g_engine, g_engine_size);
    img[spots[i]] ^= 0x10;
    expect_refused(img, g_engine_size, KILN_ERR_PARSE, "checksum");
  }
  /* foreign files: an ONNX model, random bytes */
  size_t onnx_len;
  void *onnx = test_read_file(MODEL, &onnx_len);
  expect_refused(onnx, onnx_len, KILN_ERR_PARSE, "not a kiln engine");
  free(onnx);
  /* a newer format version */
  memcpy(img, g_engine, g_engine_size);
  ((kiln_engine_header *)img)->format_version = 99;
  expect_refused(img, g_engine_size, KILN_ERR_PARSE, "format version 99");
  /* a target this machine cannot run (valid checksum): a GPU engine, then an impossible ISA */
  memcpy(img, g_engine, g_engine_size);
  const kiln_engine_header *h = (const kiln_engine_header *)img;
  const kiln_section_rec *secs = (const kiln_section_rec *)(img + h->section_table_offset);
  kiln_target_rec *t = NULL;
  for (uint32_t i = 0; i < h->n_sections; i++)
    if (secs[i].kind == KILN_SECTION_TARGET) t = (kiln_target_rec *)(img + secs[i].offset);
  assert_non_null(t);
  t->device = KILN_TARGET_CUDA;
  t->cc_major = 9;
  test_engine_reseal(img, g_engine_size);
  expect_refused(img, g_engine_size, KILN_ERR_DEVICE, "CUDA");
  t->device = KILN_TARGET_CPU;
  t->cpu_isa = 99;
  test_engine_reseal(img, g_engine_size);
  expect_refused(img, g_engine_size, KILN_ERR_DEVICE, "rebuild");
  free(img);
}

static kiln_section_rec *find_sec(uint8_t *img, uint32_t kind) {
  const kiln_engine_header *h = (const kiln_engine_header *)img;
  kiln_section_rec *secs = (kiln_section_rec *)(img + h->section_table_offset);
  for (uint32_t i = 0; i < h->n_sections; i++)
    if (secs[i].kind == kind) return &secs[i];
  return NULL;
}

/* Row-strided LINEAR views (format v3): the loader checks the stride against the record (>= a dense row,
 * views only, no v2 engine), and refuses to hand such a tensor to a kernel that cannot step through it
 * (every CPU kernel). A v2 engine, which never has one, still loads. */
static void test_row_strided_records(void **state) {
  (void)state;
  if (!g_engine) skip();
  uint8_t *img = malloc(g_engine_size);
  assert_non_null(img);
  memcpy(img, g_engine, g_engine_size);
  const kiln_section_rec *ts = find_sec(img, KILN_SECTION_TENSORS), *ls = find_sec(img, KILN_SECTION_LAYERS),
                         *is = find_sec(img, KILN_SECTION_INDICES);
  assert_non_null(ts), assert_non_null(ls), assert_non_null(is);
  kiln_tensor_rec *t = (kiln_tensor_rec *)(img + ts->offset);
  const kiln_layer_rec *l = (const kiln_layer_rec *)(img + ls->offset);
  const int32_t *idx = (const int32_t *)(img + is->offset);
  int32_t nt = (int32_t)(ts->size / sizeof *t), nl = (int32_t)(ls->size / sizeof *l), view = -1, arena = -1;
  /* a one-row view (batch 1) that a layer reads or writes: a row stride keeps its span, so only the kernel
   * check can refuse it */
  for (int32_t i = 0; i < nl && view < 0; i++)
    for (uint32_t k = 0; k < l[i].n_inputs + l[i].n_outputs && view < 0; k++) {
      int32_t id = idx[l[i].io_index + k];
      if (id >= 0 && t[id].storage == KILN_STORAGE_VIEW && t[id].rank >= 2 && t[id].dims[0] == 1) view = id;
    }
  for (int32_t i = 0; i < nt && arena < 0; i++)
    if (t[i].storage == KILN_STORAGE_ARENA && t[i].rank >= 2) arena = i;
  assert_true(view >= 0 && arena >= 0);
  int64_t len = kiln_tensor_row_len(&t[view]);
  /* a v2 engine loads (it has no row-strided tensor) */
  ((kiln_engine_header *)img)->format_version = 2;
  test_engine_reseal(img, g_engine_size);
  kiln_engine *e = NULL;
  ASSERT_OK(kiln_engine_load_memory(img, g_engine_size, &e));
  kiln_engine_destroy(e);
  /* ... but not with a row stride */
  t[view].pixel_stride = len + 1;
  test_engine_reseal(img, g_engine_size);
  expect_refused(img, g_engine_size, KILN_ERR_PARSE, "invalid row stride");
  ((kiln_engine_header *)img)->format_version = KILN_ENGINE_FORMAT_VERSION;
  /* v3: rows closer than a dense row, absurd strides, a row-strided non-view */
  int64_t bad[3] = {len - 1, -5, ((int64_t)1 << 41)};
  for (int k = 0; k < 3; k++) {
    t[view].pixel_stride = bad[k];
    test_engine_reseal(img, g_engine_size);
    expect_refused(img, g_engine_size, KILN_ERR_PARSE, "invalid row stride");
  }
  t[view].pixel_stride = 0;
  t[arena].pixel_stride = kiln_tensor_row_len(&t[arena]) * 2;
  test_engine_reseal(img, g_engine_size);
  expect_refused(img, g_engine_size, KILN_ERR_PARSE, "invalid row stride");
  t[arena].pixel_stride = 0;
  /* a valid row stride, but the CPU kernels step through dense tensors only */
  t[view].pixel_stride = len + 1;
  test_engine_reseal(img, g_engine_size);
  expect_refused(img, g_engine_size, KILN_ERR_PARSE, "row-strided tensor");
  free(img);
}

static void test_build_is_deterministic(void **state) {
  if (!g_engine) skip();
  kiln_network *net;
  ASSERT_OK(kiln_network_load_onnx(MODEL, &net));
  void *img;
  size_t size;
  ASSERT_OK(kiln_build(net, NULL, &img, &size));
  kiln_network_destroy(net);
  assert_int_equal(size, g_engine_size);
  assert_memory_equal(img, g_engine, size);
  free(img);
}


/* A graph built here goes through kiln_build + the runtime (fast kernels) and through the reference
 * kernels (constant folding); outputs must agree. Covers lowering paths YOLOv8n does not use. */
static int32_t add_f32(kiln_graph *g, const char *name, int32_t rank, const int64_t *dims, int constant, unsigned seed) {
  int32_t id = test_add_tensor(g, name, KILN_DTYPE_FLOAT32, rank, dims);
  if (constant) {
    kiln_shape s = g->values[id].shape;
    int64_t n = kiln_shape_numel(&s);
    float *d = malloc(sizeof(float) * (size_t)(n ? n : 1));
    srand(seed);
    for (int64_t i = 0; i < n; i++) d[i] = (float)rand() / RAND_MAX - 0.5f;
    ASSERT_OK(kiln_value_take_constant(g, id, KILN_DTYPE_FLOAT32, &s, d));
    g->values[id].flags |= KILN_VALUE_INITIALIZER;
  }
  return id;
}

static kiln_graph *small_graph(void) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  g->opset = 17;
  int64_t xd[] = {3, 5, 7}, bd[] = {7, 9}, cd[] = {9}, yd[] = {15, 9};
  int32_t x = add_f32(g, "x", 3, xd, 0, 1), b = add_f32(g, "b", 2, bd, 1, 2), c = add_f32(g, "c", 1, cd, 1, 3);
  int32_t mm, r, shp, gm, y;
  ASSERT_OK(kiln_graph_add_value(g, "mm", &mm));
  ASSERT_OK(kiln_graph_add_value(g, "r", &r));
  ASSERT_OK(kiln_graph_add_value(g, "y", &y));
  int32_t mm_in[] = {x, b};
  ASSERT_OK(kiln_graph_add_node(g, "matmul", "", "MatMul", mm_in, 2, &mm, 1, NULL));
  int64_t t[] = {15, 9}, two = 2;
  ASSERT_OK(kiln_graph_add_value(g, "shape", &shp));
  kiln_shape ss;
  kiln_shape_init(&ss, 1, &two);
  ASSERT_OK(kiln_value_set_constant(g, shp, KILN_DTYPE_INT64, &ss, t));
  int32_t r_in[] = {mm, shp};
  ASSERT_OK(kiln_graph_add_node(g, "reshape", "", "Reshape", r_in, 2, &r, 1, NULL));
  int64_t wd[] = {9, 9};
  int32_t w = add_f32(g, "w", 2, wd, 1, 4);
  ASSERT_OK(kiln_graph_add_value(g, "gm", &gm));
  int32_t g_in[] = {r, w, c};
  ASSERT_OK(kiln_graph_add_node(g, "gemm", "", "Gemm", g_in, 3, &gm, 1, NULL));
  ASSERT_OK(kiln_node_set_int(&g->nodes[2], "transB", 1));
  ASSERT_OK(kiln_node_set_float(&g->nodes[2], "alpha", 0.5f));
  ASSERT_OK(kiln_graph_add_node(g, "sig", "", "Sigmoid", &gm, 1, &y, 1, NULL));
  g->inputs = malloc(sizeof(int32_t));
  g->inputs[0] = x;
  g->n_inputs = 1;
  g->values[x].flags |= KILN_VALUE_GRAPH_INPUT;
  g->outputs = malloc(sizeof(int32_t));
  g->outputs[0] = y;
  g->n_outputs = 1;
  for (int32_t i = 0; i < g->n_nodes; i++) ASSERT_OK(kiln_node_parse(g, &g->nodes[i]));
  ASSERT_OK(kiln_graph_infer_shapes(g));
  assert_int_equal(g->values[y].shape.dims[0], yd[0]);
  return g;
}

static void test_small_graph_fast_vs_reference(void **state) {
  float x[3 * 5 * 7], y_fast[15 * 9];
  srand(9);
  for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = (float)rand() / RAND_MAX * 2 - 1;
  kiln_graph *g = small_graph();
  void *img;
  size_t size;
  ASSERT_OK(kiln_build(g, NULL, &img, &size));
  kiln_graph_destroy(g);
  kiln_engine *e;
  ASSERT_OK(kiln_engine_load_memory(img, size, &e));
  free(img);
  kiln_layer_info li;
  ASSERT_OK(kiln_engine_layer(e, 0, &li));
  assert_string_equal(li.kernel, "cpu.gemm"); /* MatMul with a constant B */
  kiln_context *c;
  ASSERT_OK(kiln_context_create(e, NULL, &c));
  for (int i = 0; i < 15 * 9; i++) y_fast[i] = NAN;
  ASSERT_OK(kiln_context_bind(c, "x", x, sizeof x));
  ASSERT_OK(kiln_context_bind(c, "y", y_fast, sizeof y_fast));
  ASSERT_OK(kiln_context_enqueue(c, NULL));
  kiln_context_destroy(c);
  kiln_engine_destroy(e);
  /* the same graph evaluated by the reference kernels */
  g = small_graph();
  kiln_shape s = g->values[g->inputs[0]].shape;
  ASSERT_OK(kiln_value_set_constant(g, g->inputs[0], KILN_DTYPE_FLOAT32, &s, x));
  int folded;
  ASSERT_OK(kiln_pass_fold_constants(g, &folded));
  const kiln_value *y = &g->values[g->outputs[0]];
  assert_non_null(y->data);
  for (int i = 0; i < 15 * 9; i++) assert_true(fabsf(y_fast[i] - ((float *)y->data)[i]) <= 1e-5f);
  kiln_graph_destroy(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_yolov8n_matches_ort),
      cmocka_unit_test(test_bindings),
      cmocka_unit_test(test_refuses_bad_engines),
      cmocka_unit_test(test_row_strided_records),
      cmocka_unit_test(test_build_is_deterministic),
      cmocka_unit_test(test_small_graph_fast_vs_reference),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
