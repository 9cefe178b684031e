#include "testlib.h"

#include "core/hash.h"
#include "runtime/engine_format.h"

#include <math.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void expect_error(kiln_status st, kiln_status_code code, const char *needle) {
  if (!st) {
    print_error("expected an error containing '%s', got success\n", needle);
    fail();
  }
  const char *msg = kiln_status_message(st);
  if (needle && !strstr(msg, needle)) {
    print_error("error '%s' does not contain '%s'\n", msg, needle);
    kiln_status_destroy(st);
    fail();
  }
  if (code != KILN_OK && kiln_status_get_code(st) != code) {
    print_error("error '%s' has code %d, expected %d\n", msg, kiln_status_get_code(st), code);
    kiln_status_destroy(st);
    fail();
  }
  kiln_status_destroy(st);
}

void *test_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (len) *len = (size_t)(n > 0 ? n : 0);
  return buf;
}

int test_file_exists(const char *path) {
  struct stat s;
  return stat(path, &s) == 0;
}

int32_t test_add_tensor(kiln_graph *g, const char *name, kiln_dtype dt, int32_t rank, const int64_t *dims) {
  int32_t id = -1;
  ASSERT_OK(kiln_graph_add_value(g, name, &id));
  g->values[id].dtype = dt;
  kiln_shape_init(&g->values[id].shape, rank, dims);
  return id;
}

double test_rel_l2(const float *a, const float *r, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(a[i])) return INFINITY;
    double d = (double)a[i] - r[i];
    num += d * d;
    den += (double)r[i] * r[i];
  }
  return sqrt(num) / (sqrt(den) + 1e-30);
}

void test_engine_reseal(uint8_t *img, size_t size) {
  kiln_engine_header h;
  memcpy(&h, img, sizeof h);
  h.checksum = 0;
  memcpy(img, &h, sizeof h);
  uint64_t sum = kiln_hash64(img, sizeof h, 0);
  h.checksum = kiln_hash64(img + sizeof h, size - sizeof h, sum);
  memcpy(img, &h, sizeof h);
}
