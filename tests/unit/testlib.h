/* Small helpers shared by the unit tests. */
#ifndef KILN_TEST_UTIL_H
#define KILN_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ir/graph.h"

/* Fail the test with the status message if st is an error. */
#define ASSERT_OK(expr)                                                                              \
  do {                                                                                               \
    kiln_status st_ = (expr);                                                                        \
    if (st_) {                                                                                       \
      print_error("%s failed: %s\n", #expr, kiln_status_message(st_));                              \
      kiln_status_destroy(st_);                                                                      \
      fail();                                                                                        \
    }                                                                                                \
  } while (0)

/* Expect an error whose message contains `needle`; frees it. */
void expect_error(kiln_status st, kiln_status_code code, const char *needle);
/* Read a whole file; NULL if missing. *len set. Caller frees. */
void *test_read_file(const char *path, size_t *len);
int test_file_exists(const char *path);
/* Add a value with a known dtype and shape to g; returns its id. */
int32_t test_add_tensor(kiln_graph *g, const char *name, kiln_dtype dt, int32_t rank, const int64_t *dims);

/* Relative L2 error of a against reference r (INFINITY if a holds a NaN or Inf). */
double test_rel_l2(const float *a, const float *r, size_t n);
/* Recompute an engine image's checksum after a test modified it (the header, checksum zeroed, then the rest). */
void test_engine_reseal(uint8_t *img, size_t size);

#endif
