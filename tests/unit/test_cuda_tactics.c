/*
 * Build-time tactic timing and the timing cache, end to end on YOLOv8n fp16 at batch 1:
 *  - a build on the GPU times the conv layers, every chosen tactic is valid (in range, its workspace in the
 *    layer record), the engine matches ONNX Runtime (rel. L2 <= 1e-2), and the cache file gets entries;
 *  - a rebuild with that cache gives the identical engine and leaves the file untouched (nothing timed);
 *  - a cache whose entries name other kernels is obeyed (so the cached build really times nothing);
 *  - a workspace limit keeps every chosen tactic within it;
 *  - without a GPU, or for another compute capability, every tactic stays 0 and no cache file appears.
 * Without a GPU only the last one runs.
 */
#include "testlib.h"

#include "backend/cuda/cuda_device.h"
#include "backend/cuda/cuda_layers.h"
#include "build/timing_cache.h"
#include "kiln/kiln.h"
#include "runtime/engine_format.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MODEL KILN_SHARED_DIR "/models/yolov8n.onnx"
#define REF KILN_SHARED_DIR "/reference/yolov8n/"
#define IN_BYTES ((size_t)1 * 3 * 640 * 640 * 4)
#define OUT_BYTES ((size_t)1 * 84 * 8400 * 4)


static char dir[64];

static int setup_dir(void **state) {
  (void)state;
  strcpy(dir, "/tmp/kiln_tactics_XXXXXX");
  return mkdtemp(dir) ? 0 : -1;
}

static int teardown_dir(void **state) {
  (void)state;
  DIR *d = opendir(dir);
  struct dirent *de;
  char p[512];
  while (d && (de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    unlink(p);
  }
  if (d) closedir(d);
  rmdir(dir);
  return 0;
}

#ifdef KILN_HAVE_CUDA /* the helpers call the CUDA conv API, which builds without nvcc lack */
static int have_gpu(void) { return kiln_cuda_device_count() > 0; }

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *build(const char *cache, int arch, size_t ws_limit, size_t *size) {
  kiln_network *net;
  ASSERT_OK(kiln_network_load_onnx(MODEL, &net));
  kiln_build_config cfg;
  kiln_build_config_init(&cfg);
  cfg.device = KILN_DEVICE_CUDA;
  cfg.precision = KILN_PRECISION_FP16;
  cfg.cuda_arch = arch;
  cfg.timing_cache_path = cache;
  cfg.workspace_limit = ws_limit;
  void *img;
  double t0 = now_ms();
  ASSERT_OK(kiln_build(net, &cfg, &img, size));
  print_message("build (cache %s, arch %d, workspace limit %zu): %.0f ms\n", cache ? cache : "none", arch, ws_limit,
                now_ms() - t0);
  kiln_network_destroy(net);
  return img;
}

/* ---- the engine image's conv layers ------------------------------------------------------------------ */
typedef struct eng {
  const uint8_t *img;
  const char *strings;
  const kiln_tensor_rec *tensors;
  const kiln_layer_rec *layers;
  const int32_t *indices;
  const uint8_t *params;
  int n_layers;
} eng;

static void eng_open(eng *e, const void *img, size_t size) {
  memset(e, 0, sizeof *e);
  e->img = img;
  kiln_engine_header h;
  assert_true(size >= sizeof h);
  memcpy(&h, img, sizeof h);
  const kiln_section_rec *sec = (const kiln_section_rec *)(e->img + h.section_table_offset);
  for (uint32_t i = 0; i < h.n_sections; i++) {
    const uint8_t *p = e->img + sec[i].offset;
    switch (sec[i].kind) {
    case KILN_SECTION_STRINGS: e->strings = (const char *)p; break;
    case KILN_SECTION_TENSORS: e->tensors = (const kiln_tensor_rec *)p; break;
    case KILN_SECTION_LAYERS:
      e->layers = (const kiln_layer_rec *)p;
      e->n_layers = (int)(sec[i].size / sizeof(kiln_layer_rec));
      break;
    case KILN_SECTION_INDICES: e->indices = (const int32_t *)p; break;
    case KILN_SECTION_PARAMS: e->params = p; break;
    default: break;
    }
  }
  assert_true(e->strings && e->tensors && e->layers && e->indices && e->params);
}

/* The conv params of layer i, or NULL for other layers. */
static const kiln_cuda_conv_params *conv_at(const eng *e, int i, kiln_cuda_conv_params *out) {
  if (strcmp(e->strings + e->layers[i].kernel, "cuda.conv")) return NULL;
  assert_int_equal(e->layers[i].params_size, sizeof *out);
  memcpy(out, e->params + e->layers[i].params_offset, sizeof *out);
  return out;
}

static unsigned misalign16(const eng *e, int32_t id) {
  uint64_t off = 0;
  while (e->tensors[id].storage == KILN_STORAGE_VIEW) {
    off += e->tensors[id].offset;
    id = e->tensors[id].alias_of;
  }
  return (unsigned)(off % 16);
}

static void key_of(const eng *e, int i, const kiln_cuda_conv_desc *d, char *key, size_t n) {
  const kiln_layer_rec *l = &e->layers[i];
  const int32_t *io = e->indices + l->io_index;
  unsigned al[3] = {misalign16(e, io[0]), l->n_inputs > 1 ? misalign16(e, io[1]) : 0, misalign16(e, io[l->n_inputs])};
  kiln_cuda_device_info info;
  ASSERT_OK(kiln_cuda_device_query(0, &info));
  kiln_timing_key_conv(d, al, info.name, info.cc_major, info.cc_minor, key, n);
}

static const char *name_of(const kiln_cuda_conv_desc *d, int tactic) {
  kiln_cuda_conv_desc c = *d;
  c.tactic = tactic;
  return kiln_cuda_conv_kernel_name(&c);
}

/* Every conv's tactic is in range and its workspace is in the layer record; returns how many convs had
 * a choice (more than one candidate). */
static int check_tactics(const void *img, size_t size, size_t ws_limit, int expect_all_zero) {
  eng e;
  eng_open(&e, img, size);
  int tunable = 0;
  for (int i = 0; i < e.n_layers; i++) {
    kiln_cuda_conv_params p;
    if (!conv_at(&e, i, &p)) continue;
    int count = kiln_cuda_conv_tactic_count(&p.desc);
    assert_true(p.desc.tactic >= 0 && p.desc.tactic <= count);
    assert_int_equal(e.layers[i].workspace, kiln_cuda_conv_workspace_size(&p.desc));
    if (ws_limit) assert_true(e.layers[i].workspace <= ws_limit);
    if (expect_all_zero) assert_int_equal(p.desc.tactic, 0);
    tunable += count > 1;
  }
  return tunable;
}

static double run_image(kiln_context *c, void *in_d, void *out_d, void *stream, const char *name) {
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
  ASSERT_OK(kiln_cuda_copy_to_device(in_d, in, IN_BYTES));
  ASSERT_OK(kiln_cuda_fill(out_d, 0xFF, OUT_BYTES)); /* NaN: an unwritten element fails */
  ASSERT_OK(kiln_context_enqueue(c, stream));
  ASSERT_OK(kiln_cuda_stream_sync(stream));
  ASSERT_OK(kiln_cuda_copy_to_host(out, out_d, OUT_BYTES));
  double err = test_rel_l2(out, ref, OUT_BYTES / 4);
  free(in);
  free(ref);
  free(out);
  return err;
}

static void check_outputs(const void *img, size_t size, int n_names) {
  kiln_engine *e;
  ASSERT_OK(kiln_engine_load_memory(img, size, &e));
  kiln_context *c;
  ASSERT_OK(kiln_context_create(e, NULL, &c));
  void *in_d, *out_d, *stream;
  ASSERT_OK(kiln_cuda_malloc(IN_BYTES, &in_d));
  ASSERT_OK(kiln_cuda_malloc(OUT_BYTES, &out_d));
  ASSERT_OK(kiln_context_bind(c, "images", in_d, IN_BYTES));
  ASSERT_OK(kiln_context_bind(c, "output0", out_d, OUT_BYTES));
  ASSERT_OK(kiln_cuda_stream_create(&stream));
  const char *names[] = {"dog", "rand", "horses", "person"};
  for (int k = 0; k < n_names; k++) {
    double err = run_image(c, in_d, out_d, stream, names[k]);
    print_message("yolov8n fp16 (timed tactics) %s: rel_l2 = %.3e (limit 1e-2)\n", names[k], err);
    assert_true(err <= 1e-2);
  }
  kiln_cuda_stream_destroy(stream);
  kiln_cuda_free(in_d);
  kiln_cuda_free(out_d);
  kiln_context_destroy(c);
  kiln_engine_destroy(e);
}

#endif

static void test_timed_and_cached(void **state) {
  (void)state;
#ifndef KILN_HAVE_CUDA
  skip();
#else
  if (!have_gpu()) skip();
  char cache[128], forced[128];
  snprintf(cache, sizeof cache, "%s/cache.json", dir);
  snprintf(forced, sizeof forced, "%s/forced.json", dir);
  /* 1. timed */
  size_t size1;
  void *img1 = build(cache, 0, 0, &size1);
  int tunable = check_tactics(img1, size1, 0, 0);
  print_message("%d conv layers with a choice\n", tunable);
  assert_true(tunable >= 40);
  size_t clen;
  char *ctext = test_read_file(cache, &clen);
  assert_non_null(ctext);
  kiln_timing_cache *tc;
  ASSERT_OK(kiln_timing_cache_create(&tc));
  ASSERT_OK(kiln_timing_cache_load(tc, cache));
  print_message("timing cache: %d entries, %zu bytes\n", kiln_timing_cache_size(tc), clen);
  assert_true(kiln_timing_cache_size(tc) > 0 && kiln_timing_cache_size(tc) <= tunable);
  check_outputs(img1, size1, 4);

  /* 2. cached: the same engine, the file untouched */
  size_t size2;
  void *img2 = build(cache, 0, 0, &size2);
  assert_int_equal(size1, size2);
  assert_memory_equal(img1, img2, size1);
  size_t clen2;
  char *ctext2 = test_read_file(cache, &clen2);
  assert_int_equal(clen, clen2);
  assert_memory_equal(ctext, ctext2, clen);

  /* 3. a cache that names other kernels is obeyed: pick the second candidate for every layer */
  eng e;
  eng_open(&e, img1, size1);
  for (int i = 0; i < e.n_layers; i++) {
    kiln_cuda_conv_params p;
    if (!conv_at(&e, i, &p) || kiln_cuda_conv_tactic_count(&p.desc) <= 1) continue;
    char key[640];
    kiln_cuda_conv_desc d = p.desc;
    d.tactic = 0;
    key_of(&e, i, &d, key, sizeof key);
    assert_non_null(kiln_timing_cache_find(tc, key)); /* the key the builder used */
    ASSERT_OK(kiln_timing_cache_put(tc, key, name_of(&d, 2), 1.0, 1.0));
  }
  ASSERT_OK(kiln_timing_cache_save(tc, forced));
  size_t flen;
  char *ftext = test_read_file(forced, &flen);
  size_t size3;
  void *img3 = build(forced, 0, 0, &size3);
  check_tactics(img3, size3, 0, 0);
  eng_open(&e, img3, size3);
  for (int i = 0; i < e.n_layers; i++) {
    kiln_cuda_conv_params p;
    if (!conv_at(&e, i, &p) || kiln_cuda_conv_tactic_count(&p.desc) <= 1) continue;
    int want = 1;
    while (strcmp(name_of(&p.desc, want), name_of(&p.desc, 2))) want++; /* first index with that name */
    assert_int_equal(p.desc.tactic, want);
  }
  size_t flen2;
  char *ftext2 = test_read_file(forced, &flen2);
  assert_int_equal(flen, flen2);
  assert_memory_equal(ftext, ftext2, flen); /* nothing was timed, so nothing was added */
  check_outputs(img3, size3, 1);            /* and the forced kernels compute the same network */

  kiln_timing_cache_destroy(tc);
  free(ctext);
  free(ctext2);
  free(ftext);
  free(ftext2);
  kiln_free(img1);
  kiln_free(img2);
  kiln_free(img3);
#endif
}

/* Tactics whose workspace exceeds cfg.workspace_limit are not candidates. */
static void test_workspace_limit(void **state) {
  (void)state;
#ifndef KILN_HAVE_CUDA
  skip();
#else
  if (!have_gpu()) skip();
  size_t size;
  void *img = build(NULL, 0, 1, &size);
  check_tactics(img, size, 1, 0);
  kiln_free(img);
#endif
}

/* No timing where the GPU is not the target: tactics stay 0 (the heuristic), no cache file is written. */
static void test_other_target_untimed(void **state) {
  (void)state;
#ifndef KILN_HAVE_CUDA
  skip();
#else
  int other = 80;
  if (have_gpu()) {
    kiln_cuda_device_info info;
    ASSERT_OK(kiln_cuda_device_query(0, &info));
    if (info.cc_major * 10 + info.cc_minor == 80) other = 90;
  }
  char cache[128];
  snprintf(cache, sizeof cache, "%s/unused.json", dir);
  size_t size;
  void *img = build(cache, other, 0, &size);
  assert_true(check_tactics(img, size, 0, 1) >= 40);
  assert_false(test_file_exists(cache));
  kiln_free(img);
  /* a malformed cache is an error naming the file even then */
  FILE *f = fopen(cache, "wb");
  assert_non_null(f);
  fputs("{\"format\": \"kiln-timing-cache\", \"version\": 1, \"entries\": [", f);
  fclose(f);
  kiln_network *net;
  ASSERT_OK(kiln_network_load_onnx(MODEL, &net));
  kiln_build_config cfg;
  kiln_build_config_init(&cfg);
  cfg.device = KILN_DEVICE_CUDA;
  cfg.precision = KILN_PRECISION_FP16;
  cfg.cuda_arch = other;
  cfg.timing_cache_path = cache;
  void *bad = NULL;
  size_t bad_size = 0;
  expect_error(kiln_build(net, &cfg, &bad, &bad_size), KILN_ERR_PARSE, cache);
  assert_null(bad);
  kiln_network_destroy(net);
#endif
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_other_target_untimed, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_timed_and_cached, setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_workspace_limit, setup_dir, teardown_dir),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
