/* CUDA engines end to end: YOLOv8n built for the GPU, loaded, run on the reference inputs and compared
 * with ONNX Runtime's outputs (fp32: rel. L2 <= 1e-4; fp16: <= 1e-2), CUDA-graph capture/replay and
 * re-capture after a rebind, two contexts on two streams, and engines refused on a machine without a GPU
 * or on another compute capability. Without a GPU only the refusal and build tests run (as in CI). */
#include "testlib.h"

#include "backend/cuda/cuda_device.h"
#include "core/hash.h"
#include "kiln/kiln.h"
#include "runtime/engine_format.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL KILN_SHARED_DIR "/models/yolov8n.onnx"
#define REF KILN_SHARED_DIR "/reference/yolov8n/"
#define IN_BYTES ((size_t)1 * 3 * 640 * 640 * 4)
#define OUT_BYTES ((size_t)1 * 84 * 8400 * 4)

static int have_gpu(void) { return kiln_cuda_device_count() > 0; }

static void *build_batch(kiln_precision prec, int arch, int64_t batch, size_t *size) {
  kiln_network *net;
  ASSERT_OK(kiln_network_load_onnx(MODEL, &net));
  kiln_build_config cfg;
  kiln_build_config_init(&cfg);
  cfg.device = KILN_DEVICE_CUDA;
  cfg.precision = prec;
  cfg.cuda_arch = arch;
  cfg.batch = batch;
  /* Under compute-sanitizer (bench/gpu.sh memcheck) timing every conv tactic would take hours: the
   * heuristic's engines exercise the same kernels. test_cuda_tactics covers the timed builds. */
  const char *nt = getenv("KILN_TEST_NO_TACTIC_TIMING");
  cfg.no_tactic_timing = nt && *nt && strcmp(nt, "0") != 0;
  void *img;
  ASSERT_OK(kiln_build(net, &cfg, &img, size));
  kiln_network_destroy(net);
  return img;
}

static void *build(kiln_precision prec, int arch, size_t *size) { return build_batch(prec, arch, 0, size); }

/* Device buffers of one context's bindings. */
typedef struct gpu_io {
  void *in, *out;
} gpu_io;

static void io_alloc(kiln_context *c, gpu_io *io) {
  ASSERT_OK(kiln_cuda_malloc(IN_BYTES, &io->in));
  ASSERT_OK(kiln_cuda_malloc(OUT_BYTES, &io->out));
  ASSERT_OK(kiln_context_bind(c, "images", io->in, IN_BYTES));
  ASSERT_OK(kiln_context_bind(c, "output0", io->out, OUT_BYTES));
}

static void io_free(gpu_io *io) {
  kiln_cuda_free(io->in);
  kiln_cuda_free(io->out);
}

/* Upload `name`'s input, poison the output, enqueue, wait, and return rel. L2 against the reference. */
static double run_image(kiln_context *c, gpu_io *io, void *stream, const char *name) {
  char in_path[512], ref_path[512];
  snprintf(in_path, sizeof in_path, REF "%s.input.bin", name);
  snprintf(ref_path, sizeof ref_path, REF "%s.output.bin", name);
  size_t in_len, ref_len;
  void *in = test_read_file(in_path, &in_len);
  float *ref = test_read_file(ref_path, &ref_len);
  assert_non_null(in);
  assert_non_null(ref);
  assert_int_equal(in_len, IN_BYTES);
  assert_int_equal(ref_len, OUT_BYTES);
  float *out = malloc(OUT_BYTES);
  assert_non_null(out);
  ASSERT_OK(kiln_cuda_copy_to_device(io->in, in, IN_BYTES));
  ASSERT_OK(kiln_cuda_fill(io->out, 0xFF, OUT_BYTES)); /* NaN: an unwritten element fails */
  ASSERT_OK(kiln_context_enqueue(c, stream));
  ASSERT_OK(kiln_cuda_stream_sync(stream));
  ASSERT_OK(kiln_cuda_copy_to_host(out, io->out, OUT_BYTES));
  double err = test_rel_l2(out, ref, OUT_BYTES / 4);
  free(in);
  free(ref);
  free(out);
  return err;
}

static void check_precision(kiln_precision prec, double tol) {
  if (!have_gpu()) skip();
  size_t size;
  void *img = build(prec, 0, &size);
  kiln_engine *e;
  ASSERT_OK(kiln_engine_load_memory(img, size, &e));
  kiln_free(img);
  assert_int_equal(kiln_engine_device(e), KILN_DEVICE_CUDA);
  kiln_context *c;
  ASSERT_OK(kiln_context_create(e, NULL, &c));
  gpu_io io;
  io_alloc(c, &io);
  void *stream;
  ASSERT_OK(kiln_cuda_stream_create(&stream));
  const char *names[] = {"rand", "dog", "horses", "person"};
  for (int k = 0; k < 4; k++) {
    double err = run_image(c, &io, stream, names[k]);
    print_message("yolov8n %s %s: rel_l2 = %.3e (limit %.0e)\n", prec == KILN_PRECISION_FP16 ? "fp16" : "fp32", names[k],
                  err, tol);
    assert_true(err <= tol);
  }
  kiln_cuda_stream_destroy(stream);
  io_free(&io);
  kiln_context_destroy(c);
  kiln_engine_destroy(e);
}

static void test_yolov8n_fp32(void **state) {
  (void)state;
  check_precision(KILN_PRECISION_FP32, 1e-4);
}

static void test_yolov8n_fp16(void **state) {
  (void)state;
  check_precision(KILN_PRECISION_FP16, 1e-2);
}

/* Batch 3 (the head's Slices and Concats are row-strided views there, not the batch-1 dense views): each
 * image of the batch matches its own reference. */
static void check_batch3(kiln_precision prec, double tol) {
  if (!have_gpu()) skip();
  size_t size;
  void *img = build_batch(prec, 0, 3, &size);
  kiln_engine *e;
  ASSERT_OK(kiln_engine_load_memory(img, size, &e));
  kiln_free(img);
  kiln_context *c;
  ASSERT_OK(kiln_context_create(e, NULL, &c));
  void *din, *dout;
  ASSERT_OK(kiln_cuda_malloc(3 * IN_BYTES, &din));
  ASSERT_OK(kiln_cuda_malloc(3 * OUT_BYTES, &dout));
  ASSERT_OK(kiln_context_bind(c, "images", din, 3 * IN_BYTES));
  ASSERT_OK(kiln_context_bind(c, "output0", dout, 3 * OUT_BYTES));
  const char *names[] = {"dog", "horses", "person"};
  for (int k = 0; k < 3; k++) {
    char path[512];
    snprintf(path, sizeof path, REF "%s.input.bin", names[k]);
    size_t len;
    void *in = test_read_file(path, &len);
    assert_non_null(in);
    ASSERT_OK(kiln_cuda_copy_to_device((char *)din + k * IN_BYTES, in, IN_BYTES));
    free(in);
  }
  ASSERT_OK(kiln_cuda_fill(dout, 0xFF, 3 * OUT_BYTES));
  ASSERT_OK(kiln_context_enqueue(c, NULL));
  float *out = malloc(3 * OUT_BYTES);
  assert_non_null(out);
  ASSERT_OK(kiln_cuda_copy_to_host(out, dout, 3 * OUT_BYTES));
  for (int k = 0; k < 3; k++) {
    char path[512];
    snprintf(path, sizeof path, REF "%s.output.bin", names[k]);
    size_t len;
    float *ref = test_read_file(path, &len);
    assert_non_null(ref);
    double err = test_rel_l2(out + k * (OUT_BYTES / 4), ref, OUT_BYTES / 4);
    print_message("yolov8n %s batch 3, image %d (%s): rel_l2 = %.3e\n", prec == KILN_PRECISION_FP16 ? "fp16" : "fp32", k,
                  names[k], err);
    assert_true(err <= tol);
    free(ref);
  }
  free(out);
  kiln_cuda_free(din);
  kiln_cuda_free(dout);
  kiln_context_destroy(c);
  kiln_engine_destroy(e);
}

static void test_yolov8n_batch3(void **state) {
  (void)state;
  check_batch3(KILN_PRECISION_FP32, 1e-4);
}

static void test_yolov8n_batch3_fp16(void **state) {
  (void)state;
  check_batch3(KILN_PRECISION_FP16, 1e-2);
}

/* Graph replay gives the same bytes as plain enqueues; a rebind re-captures; two contexts on two
 * streams run concurrently and both match; per-layer profiling reports every layer. */
static void test_graphs_streams_profiling(void **state) {
  (void)state;
  if (!have_gpu()) skip();
  size_t size;
  void *img = build(KILN_PRECISION_FP16, 0, &size);
  kiln_engine *e;
  ASSERT_OK(kiln_engine_load_memory(img, size, &e));
  kiln_free(img);
  kiln_context_options graph_opts = {0, 1};
  kiln_context *plain, *graph;
  ASSERT_OK(kiln_context_create(e, NULL, &plain));
  ASSERT_OK(kiln_context_create(e, &graph_opts, &graph));
  gpu_io a, b;
  io_alloc(plain, &a);
  io_alloc(graph, &b);
  void *s1, *s2;
  ASSERT_OK(kiln_cuda_stream_create(&s1));
  ASSERT_OK(kiln_cuda_stream_create(&s2));
  /* graphs refuse the legacy default stream */
  expect_error(kiln_context_enqueue(graph, NULL), KILN_ERR_INVALID_ARGUMENT, "default stream");
  double e1 = run_image(plain, &a, s1, "dog");
  for (int rep = 0; rep < 3; rep++) { /* capture once, then replay */
    double e2 = run_image(graph, &b, s2, "dog");
    assert_true(e2 == e1);
  }
  /* rebind to new buffers: the graph must be re-captured with them */
  gpu_io c2;
  io_alloc(graph, &c2);
  double e3 = run_image(graph, &c2, s2, "dog");
  assert_true(e3 == e1);
  /* both contexts in flight at once on their own streams */
  char path[512];
  snprintf(path, sizeof path, REF "horses.input.bin");
  size_t len;
  void *in = test_read_file(path, &len);
  assert_non_null(in);
  ASSERT_OK(kiln_cuda_copy_to_device(a.in, in, IN_BYTES));
  ASSERT_OK(kiln_cuda_copy_to_device(c2.in, in, IN_BYTES));
  free(in);
  for (int rep = 0; rep < 5; rep++) {
    ASSERT_OK(kiln_context_enqueue(plain, s1));
    ASSERT_OK(kiln_context_enqueue(graph, s2));
  }
  ASSERT_OK(kiln_cuda_stream_sync(s1));
  ASSERT_OK(kiln_cuda_stream_sync(s2));
  float *o1 = malloc(OUT_BYTES), *o2 = malloc(OUT_BYTES);
  ASSERT_OK(kiln_cuda_copy_to_host(o1, a.out, OUT_BYTES));
  ASSERT_OK(kiln_cuda_copy_to_host(o2, c2.out, OUT_BYTES));
  assert_memory_equal(o1, o2, OUT_BYTES);
  free(o1);
  free(o2);
  /* profiling: every layer gets a GPU time, and they add up to something plausible */
  int n = kiln_engine_num_layers(e);
  double *ms = calloc((size_t)n, sizeof(double)), total = 0;
  kiln_context_set_profiling(graph, 1);
  ASSERT_OK(kiln_context_enqueue(graph, s2));
  ASSERT_OK(kiln_context_layer_times(graph, ms, n));
  for (int i = 0; i < n; i++) {
    assert_true(ms[i] >= 0 && ms[i] < 1000);
    total += ms[i];
  }
  print_message("profiled enqueue: %d layers, %.3f ms of GPU time\n", n, total);
  assert_true(total > 0);
  free(ms);
  kiln_cuda_stream_destroy(s1);
  kiln_cuda_stream_destroy(s2);
  io_free(&a);
  io_free(&b);
  io_free(&c2);
  kiln_context_destroy(plain);
  kiln_context_destroy(graph);
  kiln_engine_destroy(e);
}

static const kiln_section_rec *section(const uint8_t *img, uint32_t kind) {
  kiln_engine_header h;
  memcpy(&h, img, sizeof h);
  const kiln_section_rec *t = (const kiln_section_rec *)(img + h.section_table_offset);
  for (uint32_t i = 0; i < h.n_sections; i++)
    if (t[i].kind == kind) return &t[i];
  return NULL;
}

/* Corrupted GPU engines whose checksum still matches (a buggy or hostile writer): random bytes of the
 * layer parameters, tensor records, layer records and index lists are changed. Loading must either
 * refuse with a message or give an engine that runs without a CUDA fault (compute-sanitizer would name
 * any out-of-bounds access: bench/gpu.sh runs this test under memcheck too). */
static void test_corrupted_engines(void **state) {
  (void)state;
  if (!have_gpu()) skip();
  size_t size;
  uint8_t *good = build(KILN_PRECISION_FP16, 0, &size);
  uint8_t *img = malloc(size);
  assert_non_null(img);
  const uint32_t kinds[4] = {KILN_SECTION_PARAMS, KILN_SECTION_TENSORS, KILN_SECTION_LAYERS, KILN_SECTION_INDICES};
  uint32_t seed = 99;
  int refused = 0, ran = 0;
  void *stream;
  ASSERT_OK(kiln_cuda_stream_create(&stream));
  for (int iter = 0; iter < 240; iter++) {
    memcpy(img, good, size);
    seed = seed * 1664525u + 1013904223u;
    const kiln_section_rec *sec = section(img, kinds[(seed >> 8) % 4]);
    assert_non_null(sec);
    for (int k = 0; k < 1 + (int)((seed >> 4) % 3); k++) {
      seed = seed * 1664525u + 1013904223u;
      size_t at = sec->offset + (seed >> 3) % sec->size;
      seed = seed * 1664525u + 1013904223u;
      img[at] ^= (uint8_t)(1u << ((seed >> 9) % 8)) | (uint8_t)((seed >> 20) & 0x80);
    }
    test_engine_reseal(img, size);
    kiln_engine *e = NULL;
    kiln_status st = kiln_engine_load_memory(img, size, &e);
    if (st) {
      assert_true(kiln_status_message(st)[0] != 0);
      kiln_status_destroy(st);
      refused++;
      continue;
    }
    kiln_context *c = NULL;
    st = kiln_context_create(e, NULL, &c);
    void *bufs[8] = {0};
    int nb = kiln_engine_num_bindings(e);
    for (int b = 0; !st && b < nb && b < 8; b++) {
      kiln_binding_info bi;
      st = kiln_engine_binding(e, b, &bi);
      if (!st) st = kiln_cuda_malloc(bi.nbytes, &bufs[b]);
      if (!st) st = kiln_cuda_fill(bufs[b], 0, bi.nbytes);
      if (!st) st = kiln_context_bind(c, bi.name, bufs[b], bi.nbytes);
    }
    if (!st) st = kiln_context_enqueue(c, stream);
    kiln_status_destroy(st); /* an error status is fine; a fault is not: */
    ASSERT_OK(kiln_cuda_stream_sync(stream));
    for (int b = 0; b < 8; b++) kiln_cuda_free(bufs[b]);
    kiln_context_destroy(c);
    kiln_engine_destroy(e);
    ran++;
  }
  print_message("corrupted GPU engines: %d refused at load, %d loaded and ran without a fault\n", refused, ran);
  kiln_cuda_stream_destroy(stream);
  free(img);
  kiln_free(good);
}

/* A GPU engine is refused where it cannot run: no GPU here (CI), or a GPU of another compute capability
 * (an engine built for sm_80 on the H100). The message names the reason. */
static void test_refused_elsewhere(void **state) {
  (void)state;
#ifndef KILN_HAVE_CUDA
  skip(); /* without nvcc this kiln cannot build GPU engines at all */
#endif
  int other = 80;
  if (have_gpu()) {
    kiln_cuda_device_info info;
    ASSERT_OK(kiln_cuda_device_query(0, &info));
    if (info.cc_major * 10 + info.cc_minor == 80) other = 90;
  }
  size_t size;
  void *img = build(KILN_PRECISION_FP16, other, &size);
  kiln_engine *e = NULL;
  kiln_status st = kiln_engine_load_memory(img, size, &e);
  kiln_free(img);
  assert_null(e);
  expect_error(st, KILN_ERR_DEVICE, have_gpu() ? "rebuild the engine on this GPU" : "no CUDA device");
}

/* `kiln inspect --layers` of an engine built for sm_90 (no GPU needed); the caller frees the text. */
static char *inspect_built(kiln_precision prec, int64_t batch) {
  size_t size;
  void *img = build_batch(prec, 90, batch, &size);
  char path[] = "/tmp/kiln_cuda_engine_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "wb");
  assert_int_equal(fwrite(img, 1, size, f), size);
  fclose(f);
  kiln_free(img);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "%s/kiln inspect %s --layers > %s.txt 2>&1", KILN_BINARY_DIR, path, path);
  assert_int_equal(system(cmd), 0);
  char txt[600];
  snprintf(txt, sizeof txt, "%s.txt", path);
  size_t len;
  char *out = test_read_file(txt, &len);
  assert_non_null(out);
  remove(path);
  remove(txt);
  return out;
}

/* The line of layer `name` in inspect's output (the name followed by a space), or NULL. */
static const char *layer_line(const char *out, const char *name, char *line, size_t cap) {
  char key[200];
  snprintf(key, sizeof key, "  %s ", name);
  const char *l = strstr(out, key);
  if (!l) return NULL;
  const char *end = strchr(l, '\n');
  size_t n = end ? (size_t)(end - l) : strlen(l);
  if (n >= cap) n = cap - 1;
  memcpy(line, l, n);
  line[n] = 0;
  return line;
}

/* At batch > 1 the head's Concats, Slices and the output Concat are no copies either: the class scores'
 * convert_concat and the box decode's last Mul write their slices of output0 (row-strided views, 84*8400
 * elements per image), the decode's inner Concat is written in place the same way, and the DFL output's
 * halves are row-strided views that the decode reads. The decode's five elementwise ops on [N,2,8400] are
 * one cuda.pointwise at any batch. Both precisions. */
static void test_build_structure_batch2(void **state) {
  (void)state;
#ifndef KILN_HAVE_CUDA
  skip();
#endif
  for (int fp16 = 0; fp16 < 2; fp16++) {
    char *out = inspect_built(fp16 ? KILN_PRECISION_FP16 : KILN_PRECISION_FP32, 2);
    char line[1024];
    assert_non_null(strstr(out, "output output0                  float32   2x84x8400"));
    assert_null(strstr(out, "cuda.concat")); /* no copy layers left in the head */
    assert_null(strstr(out, "cuda.split"));
    assert_null(layer_line(out, "/model.22/Concat_3", line, sizeof line));
    assert_null(layer_line(out, "/model.22/Concat_2", line, sizeof line));
    assert_non_null(layer_line(out, "/model.22/Concat_1", line, sizeof line));
    assert_non_null(strstr(line, "cuda.convert_concat"));
    assert_non_null(strstr(line, "-> 2x80x8400(view rows/705600)"));
    assert_non_null(layer_line(out, "/model.22/Mul_2", line, sizeof line));
    assert_non_null(strstr(line, "cuda.eltwise"));
    assert_non_null(strstr(line, "-> 2x4x8400(view rows/705600)"));
    assert_non_null(layer_line(out, "/model.22/Sub", line, sizeof line));
    assert_non_null(strstr(line, "Sub+Add+Add+Sub+Div cuda.pointwise"));
    const char *arrow = strstr(line, " ->");
    assert_non_null(arrow);
    assert_true(strstr(line, "2x2x8400(view rows/33600)") < arrow);             /* reads the DFL halves in place */
    assert_non_null(strstr(arrow, "-> 2x2x8400(view rows/33600) 2x2x8400(view rows/33600)")); /* writes Concat_2's */
    const char *fused[] = {"/model.22/Add_1", "/model.22/Add_2", "/model.22/Sub_1", "/model.22/Div_1"};
    for (int k = 0; k < 4; k++) assert_null(layer_line(out, fused[k], line, sizeof line));
    free(out);
  }
  /* batch 1: the same fusion */
  char *out = inspect_built(KILN_PRECISION_FP16, 0), line[1024];
  assert_non_null(layer_line(out, "/model.22/Sub", line, sizeof line));
  assert_non_null(strstr(line, "cuda.pointwise"));
  assert_null(layer_line(out, "/model.22/Div_1", line, sizeof line));
  free(out);
}

/* GPU engines built without a GPU (--cuda-arch) are complete: every layer has a CUDA kernel, the
 * convolutions are fused, the Concats are gone, and the head stays fp32. */
static void test_build_structure(void **state) {
  (void)state;
#ifndef KILN_HAVE_CUDA
  skip();
#endif
  char *out = inspect_built(KILN_PRECISION_FP16, 0);
  assert_non_null(strstr(out, "target      CUDA sm_90, compute capability 9.0"));
  assert_non_null(strstr(out, "precision fp16"));
  assert_non_null(strstr(out, "cuda.conv 63"));          /* every trunk Conv, activations and residuals fused */
  assert_null(strstr(out, " ref "));                     /* no reference (CPU) layers */
  assert_null(strstr(out, "Sigmoid          cuda.eltwise       1x16")); /* SiLU inside the convs */
  /* the head stays fp32 and LINEAR: the DFL (Transpose + Softmax + 1x1 conv) is one cuda.softmax_dot, no layout
   * round trip */
  /* ... and reads the box convs' NHWC maps directly (cuda.softmax_dot_nhwc): no fp32 box tensor between */
  const char *dfl = strstr(out, "/model.22/Concat (+/model.22/dfl/conv/Conv)");
  assert_non_null(dfl);
  assert_true(strstr(dfl, "cuda.softmax_dot_nhwc") && strstr(dfl, "cuda.softmax_dot_nhwc") < strchr(dfl, '\n'));
  assert_null(strstr(out, "cuda.transpose"));
  assert_null(strstr(out, "cuda.softmax "));
  assert_null(strstr(out, "(to NHWC fp32)"));
  assert_non_null(strstr(out, "cuda.convert_concat 1")); /* the class maps straight into the output */
  assert_non_null(strstr(out, "cuda.maxpool_chain 1"));  /* SPPF's three pools: one layer */
  assert_null(strstr(out, "cuda.maxpool "));
  /* the stem reads the fp32 input binding in place (conv_direct_nchw): no conversion layer at all */
  assert_null(strstr(out, "cuda.convert "));
  const char *stem = strstr(out, "/model.0/conv/Conv ");
  assert_non_null(stem);
  assert_true(strstr(stem, "1x3x640x640(io) -> ") && strstr(stem, "1x3x640x640(io) -> ") < strchr(stem, '\n'));
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_build_structure),
      cmocka_unit_test(test_build_structure_batch2),
      cmocka_unit_test(test_refused_elsewhere),
      cmocka_unit_test(test_yolov8n_fp32),
      cmocka_unit_test(test_yolov8n_fp16),
      cmocka_unit_test(test_yolov8n_batch3),
      cmocka_unit_test(test_yolov8n_batch3_fp16),
      cmocka_unit_test(test_graphs_streams_profiling),
      cmocka_unit_test(test_corrupted_engines),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
