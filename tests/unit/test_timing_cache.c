/*
 * The builder's timing cache (src/build/timing_cache.c), host only: round trips in memory and through a
 * file, the key, and refusal of every malformed file (invalid or truncated JSON, foreign JSON, other
 * versions, bad entries) with a message that names the file, leaving the cache unchanged. Runs in the
 * sanitizer build too (label robust).
 */
#include "testlib.h"

#include "build/timing_cache.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static kiln_timing_cache *fresh(void) {
  kiln_timing_cache *c;
  ASSERT_OK(kiln_timing_cache_create(&c));
  return c;
}

static void fill3(kiln_timing_cache *c) {
  ASSERT_OK(kiln_timing_cache_put(c, "k2 | GPU \"quoted\" | sm_90", "conv_b", 0.25, 0.5));
  ASSERT_OK(kiln_timing_cache_put(c, "k1", "conv_a", 0.125, -1));
  ASSERT_OK(kiln_timing_cache_put(c, "k3\\back", "conv_c", 1.5, 1.5));
}

static void test_put_find(void **state) {
  (void)state;
  kiln_timing_cache *c = fresh();
  assert_false(kiln_timing_cache_dirty(c));
  fill3(c);
  assert_int_equal(kiln_timing_cache_size(c), 3);
  assert_true(kiln_timing_cache_dirty(c));
  const kiln_timing_entry *e = kiln_timing_cache_find(c, "k1");
  assert_non_null(e);
  assert_string_equal(e->kernel, "conv_a");
  assert_true(e->ms == 0.125 && e->heuristic_ms < 0);
  assert_null(kiln_timing_cache_find(c, "k0"));
  /* replace */
  ASSERT_OK(kiln_timing_cache_put(c, "k1", "conv_z", 0.5, 0.75));
  assert_int_equal(kiln_timing_cache_size(c), 3);
  assert_string_equal(kiln_timing_cache_find(c, "k1")->kernel, "conv_z");
  expect_error(kiln_timing_cache_put(c, "", "x", 1, 1), KILN_ERR_INVALID_ARGUMENT, "empty");
  kiln_timing_cache_destroy(c);
}

static void test_round_trip_memory(void **state) {
  (void)state;
  kiln_timing_cache *a = fresh(), *b = fresh();
  fill3(a);
  char *text, *text2;
  ASSERT_OK(kiln_timing_cache_serialize(a, &text));
  assert_non_null(strstr(text, "\"version\":\t1"));
  ASSERT_OK(kiln_timing_cache_parse(b, text, strlen(text), "mem"));
  assert_int_equal(kiln_timing_cache_size(b), 3);
  const kiln_timing_entry *e = kiln_timing_cache_find(b, "k2 | GPU \"quoted\" | sm_90");
  assert_non_null(e);
  assert_string_equal(e->kernel, "conv_b");
  assert_true(e->ms == 0.25 && e->heuristic_ms == 0.5);
  assert_true(kiln_timing_cache_find(b, "k1")->heuristic_ms < 0);
  assert_string_equal(kiln_timing_cache_find(b, "k3\\back")->kernel, "conv_c");
  /* sorted output: the same entries in another order give the same text */
  ASSERT_OK(kiln_timing_cache_serialize(b, &text2));
  assert_string_equal(text, text2);
  free(text);
  free(text2);
  kiln_timing_cache_destroy(a);
  kiln_timing_cache_destroy(b);
}

static char dir[64];

static int setup_dir(void **state) {
  (void)state;
  strcpy(dir, "/tmp/kiln_tcache_XXXXXX");
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

static int count_files(void) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int n = 0;
  while (d && (de = readdir(d))) n += de->d_name[0] != '.';
  if (d) closedir(d);
  return n;
}

static void write_text(const char *path, const char *s, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(s, 1, n, f), n);
  fclose(f);
}

static void test_round_trip_file(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof path, "%s/cache.json", dir);
  kiln_timing_cache *a = fresh(), *b = fresh();
  ASSERT_OK(kiln_timing_cache_load(b, path)); /* missing: empty, no error */
  assert_int_equal(kiln_timing_cache_size(b), 0);
  fill3(a);
  ASSERT_OK(kiln_timing_cache_save(a, path));
  ASSERT_OK(kiln_timing_cache_save(a, path)); /* over an existing file */
  assert_int_equal(count_files(), 1);         /* no temp file left behind */
  ASSERT_OK(kiln_timing_cache_load(b, path));
  assert_int_equal(kiln_timing_cache_size(b), 3);
  assert_false(kiln_timing_cache_dirty(b)); /* loaded entries are already in the file */
  assert_string_equal(kiln_timing_cache_find(b, "k1")->kernel, "conv_a");
  /* loading merges: an entry added before the load stays, and the cache then needs writing */
  kiln_timing_cache *m = fresh();
  ASSERT_OK(kiln_timing_cache_put(m, "k9", "conv_9", 2, 2));
  ASSERT_OK(kiln_timing_cache_load(m, path));
  assert_int_equal(kiln_timing_cache_size(m), 4);
  assert_true(kiln_timing_cache_dirty(m));
  /* an empty file is an empty cache */
  write_text(path, "", 0);
  kiln_timing_cache *e = fresh();
  ASSERT_OK(kiln_timing_cache_load(e, path));
  assert_int_equal(kiln_timing_cache_size(e), 0);
  /* a directory is refused with its name */
  expect_error(kiln_timing_cache_load(e, dir), KILN_ERR_IO, dir);
  kiln_timing_cache_destroy(a);
  kiln_timing_cache_destroy(b);
  kiln_timing_cache_destroy(m);
  kiln_timing_cache_destroy(e);
}

/* Every malformed text is a PARSE error naming the source and leaves the cache as it was. */
static void expect_bad(const char *text, size_t len, const char *needle) {
  kiln_timing_cache *c = fresh();
  ASSERT_OK(kiln_timing_cache_put(c, "keep", "conv_keep", 1, 1));
  kiln_status st = kiln_timing_cache_parse(c, text, len, "bad.json");
  if (!st) {
    print_error("accepted: %.*s\n", (int)len, text);
    fail();
  }
  assert_non_null(strstr(kiln_status_message(st), "bad.json"));
  expect_error(st, KILN_ERR_PARSE, needle);
  assert_int_equal(kiln_timing_cache_size(c), 1);
  assert_string_equal(kiln_timing_cache_find(c, "keep")->kernel, "conv_keep");
  kiln_timing_cache_destroy(c);
}
#define BAD(s, needle) expect_bad(s, strlen(s), needle)

static void test_malformed(void **state) {
  (void)state;
  BAD("{", "not valid JSON");
  BAD("not json at all", "not valid JSON");
  BAD("{\"format\": \"kiln-timing-cache\", \"version\": 1, \"entries\": []} trailing", "not valid JSON");
  BAD("[1, 2, 3]", "not a kiln timing cache");
  BAD("{\"version\": 1, \"entries\": []}", "not a kiln timing cache");
  BAD("{\"format\": \"trt-timing-cache\", \"version\": 1, \"entries\": []}", "not a kiln timing cache");
  BAD("{\"format\": \"kiln-timing-cache\", \"version\": 2, \"entries\": []}", "version 2");
  BAD("{\"format\": \"kiln-timing-cache\", \"version\": \"1\", \"entries\": []}", "version");
  BAD("{\"format\": \"kiln-timing-cache\", \"entries\": []}", "version");
  BAD("{\"format\": \"kiln-timing-cache\", \"version\": 1}", "entries");
  BAD("{\"format\": \"kiln-timing-cache\", \"version\": 1, \"entries\": {}}", "entries");
  BAD("{\"format\": \"kiln-timing-cache\", \"version\": 1, \"entries\": [1]}", "entry 0");
  BAD("{\"format\": \"kiln-timing-cache\", \"version\": 1, \"entries\": [{\"key\": \"a\", \"kernel\": \"b\"}]}", "entry 0");
  BAD("{\"format\": \"kiln-timing-cache\", \"version\": 1, \"entries\": [{\"key\": \"a\", \"kernel\": \"b\", \"ms\": 1},"
      " {\"key\": \"\", \"kernel\": \"b\", \"ms\": 1}]}",
      "entry 1");
  BAD("{\"format\": \"kiln-timing-cache\", \"version\": 1, \"entries\": [{\"key\": \"a\", \"kernel\": 7, \"ms\": 1}]}", "entry 0");
  BAD("{\"format\": \"kiln-timing-cache\", \"version\": 1, \"entries\": [{\"key\": \"a\", \"kernel\": \"b\", \"ms\": -1}]}", "entry 0");
  BAD("{\"format\": \"kiln-timing-cache\", \"version\": 1, \"entries\": [{\"key\": \"a\", \"kernel\": \"b\", \"ms\": 1, "
      "\"heuristic_ms\": \"x\"}]}",
      "entry 0");
  /* binary garbage, embedded NUL */
  expect_bad("\x01\x02\xff{", 4, "not valid JSON");
  expect_bad("{\"format\"\0: 1}", 14, "timing cache"); /* cJSON skips the NUL as white space; refused anyway */
}

/* Every truncation of a real cache file (a crash while writing it, were it not written atomically) is
 * refused, as is every single-byte corruption that breaks the JSON; none of them crash. */
static void test_truncated(void **state) {
  (void)state;
  kiln_timing_cache *a = fresh();
  fill3(a);
  char *text;
  ASSERT_OK(kiln_timing_cache_serialize(a, &text));
  size_t n = strlen(text);
  size_t first = strspn(text, " \t\r\n");
  for (size_t len = first + 1; len + 1 < n; len++) expect_bad(text, len, "not valid JSON");
  for (size_t i = 0; i < n; i++) { /* corruptions: accepted or refused, never a crash or a leak */
    char *t = malloc(n);
    memcpy(t, text, n);
    t[i] ^= 0x5a;
    kiln_timing_cache *c = fresh();
    kiln_status_destroy(kiln_timing_cache_parse(c, t, n, "x"));
    kiln_timing_cache_destroy(c);
    free(t);
  }
  free(text);
  kiln_timing_cache_destroy(a);
}

static void test_key(void **state) {
  (void)state;
  kiln_cuda_conv_desc d = {.batch = 1, .in_c = 64, .in_h = 80, .in_w = 80, .out_c = 64, .out_h = 80, .out_w = 80,
                           .kernel_h = 3, .kernel_w = 3, .stride_h = 1, .stride_w = 1, .pad_top = 1, .pad_left = 1,
                           .dilation_h = 1, .dilation_w = 1, .group = 1, .compute = KILN_CUDA_F16,
                           .out_dtype = KILN_CUDA_F16, .has_bias = 1, .epilogue = {KILN_ACT_SILU, 0, 0, 0}};
  unsigned al[3] = {0, 0, 0};
  char k0[512], k1[512];
  kiln_timing_key_conv(&d, al, "NVIDIA H100 80GB HBM3", 9, 0, k0, sizeof k0);
  assert_non_null(strstr(k0, "NVIDIA H100 80GB HBM3"));
  assert_non_null(strstr(k0, "sm_90"));
  kiln_cuda_conv_desc e = d;
  e.tactic = 7; /* not part of the key: it is what the cache answers */
  e.in_pixel_stride = 64, e.out_pixel_stride = 64; /* explicit dense == 0 */
  kiln_timing_key_conv(&e, al, "NVIDIA H100 80GB HBM3", 9, 0, k1, sizeof k1);
  assert_string_equal(k0, k1);
  /* everything that changes the speed changes the key */
#define DIFFERS(stmt)                                                                                   \
  do {                                                                                                  \
    e = d;                                                                                              \
    unsigned a2[3] = {0, 0, 0};                                                                         \
    const char *gpu = "NVIDIA H100 80GB HBM3";                                                          \
    int ccmin = 0;                                                                                      \
    stmt;                                                                                               \
    kiln_timing_key_conv(&e, a2, gpu, 9, ccmin, k1, sizeof k1);                                         \
    if (!strcmp(k0, k1)) {                                                                              \
      print_error("same key after %s\n", #stmt);                                                       \
      fail();                                                                                           \
    }                                                                                                   \
  } while (0)
  DIFFERS(e.batch = 2);
  DIFFERS(e.in_c = 32);
  DIFFERS(e.in_h = 40);
  DIFFERS(e.out_c = 80);
  DIFFERS(e.kernel_w = 1);
  DIFFERS(e.stride_h = 2);
  DIFFERS(e.pad_left = 0);
  DIFFERS(e.dilation_w = 2);
  DIFFERS(e.group = 2);
  DIFFERS(e.in_pixel_stride = 128);
  DIFFERS(e.out_pixel_stride = 192);
  DIFFERS((e.has_residual = 1, e.residual_pixel_stride = 128));
  DIFFERS(e.out_c_offset = 4);
  DIFFERS(e.out_dtype = KILN_CUDA_F32);
  DIFFERS(e.has_bias = 0);
  DIFFERS(e.epilogue.act = KILN_ACT_RELU);
  DIFFERS(e.in_zero_padded = 1);
  DIFFERS(a2[0] = 8);
  DIFFERS(a2[2] = 4);
  DIFFERS(gpu = "NVIDIA H200");
  DIFFERS(ccmin = 9);
  e = d;
  e.out_c_offset = 8; /* only the alignment of the offset matters */
  kiln_timing_key_conv(&e, al, "NVIDIA H100 80GB HBM3", 9, 0, k1, sizeof k1);
  assert_string_equal(k0, k1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_put_find),
      cmocka_unit_test(test_round_trip_memory),
      cmocka_unit_test_setup_teardown(test_round_trip_file, setup_dir, teardown_dir),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
