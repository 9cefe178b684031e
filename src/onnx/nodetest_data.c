/* ONNX node-test data: loading test_data_set tensors and comparing results (see nodetest_data.h). */
#include "onnx/nodetest_data.h"

#include "core/dtype.h"
#include "onnx/onnx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static kiln_status load_kind(const char *dir, int set, const char *kind, kiln_tensor *arr, int *n) {
  for (*n = 0; *n < KILN_NODETEST_MAX_TENSORS; (*n)++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/test_data_set_%d/%s_%d.pb", dir, set, kind, *n);
    struct stat s;
    if (stat(path, &s) != 0) break; /* the files are numbered densely: the first gap ends the list */
    KILN_TRY(kiln_onnx_read_tensor_file(path, &arr[*n], NULL));
  }
  return NULL;
}

kiln_status kiln_nodetest_data_load(const char *test_dir, int set, kiln_nodetest_data *d) {
  memset(d, 0, sizeof *d);
  kiln_status st = load_kind(test_dir, set, "input", d->inputs, &d->n_inputs);
  if (!st) st = load_kind(test_dir, set, "output", d->outputs, &d->n_outputs);
  if (st) kiln_nodetest_data_free(d);
  return st;
}

void kiln_nodetest_data_free(kiln_nodetest_data *d) {
  for (int i = 0; i < KILN_NODETEST_MAX_TENSORS; i++) {
    free(d->inputs[i].data);
    free(d->outputs[i].data);
  }
  memset(d, 0, sizeof *d);
}

/* ONNX's test generator stores bfloat16 data as uint16 (numpy has no bfloat16): the same bits, so a
 * uint16 expectation for a bfloat16 tensor is read as bfloat16. */
static kiln_dtype expected_dtype(kiln_dtype have, kiln_dtype want) {
  return have == KILN_DTYPE_BFLOAT16 && want == KILN_DTYPE_UINT16 ? KILN_DTYPE_BFLOAT16 : want;
}

bool kiln_nodetest_type_matches(const kiln_graph *g, const kiln_value *v, const kiln_tensor *want_in, char *why,
                                size_t why_len) {
  kiln_tensor w = *want_in;
  const kiln_tensor *want = &w;
  w.dtype = expected_dtype(v->dtype, want_in->dtype);
  kiln_shape ws;
  kiln_shape_init(&ws, want->rank, want->dims);
  if (kiln_shape_equal(&v->shape, &ws) && v->dtype == want->dtype) return true;
  char a[128], b[128];
  snprintf(why, why_len, "inferred %s %s for '%s', expected %s %s", kiln_dtype_name(v->dtype),
           kiln_shape_format(g, &v->shape, a, sizeof a), v->name, kiln_dtype_name(want->dtype),
           kiln_shape_format(NULL, &ws, b, sizeof b));
  return false;
}

/* Half precision gets a looser tolerance; integers and bool must be exact. */
static bool close_enough(kiln_dtype dt, double a, double b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  if (isinf(a) || isinf(b)) return a == b;
  double rtol = 1e-3, atol = 1e-5;
  if (dt == KILN_DTYPE_FLOAT16 || dt == KILN_DTYPE_BFLOAT16) rtol = 1e-2, atol = 1e-3;
  if (!kiln_dtype_is_float(dt)) rtol = 0, atol = 0;
  return fabs(a - b) <= atol + rtol * fabs(b);
}

bool kiln_nodetest_values_match(const kiln_graph *g, const kiln_value *v, const kiln_tensor *want_in, char *why,
                                size_t why_len) {
  kiln_tensor w = *want_in;
  const kiln_tensor *want = &w;
  w.dtype = expected_dtype(v->dtype, want_in->dtype);
  if (v->dtype != want->dtype) {
    snprintf(why, why_len, "'%s' dtype %s, expected %s", v->name, kiln_dtype_name(v->dtype),
             kiln_dtype_name(want->dtype));
    return false;
  }
  kiln_shape ws;
  kiln_shape_init(&ws, want->rank, want->dims);
  if (!kiln_shape_equal(&v->shape, &ws)) {
    char a[128], b[128];
    snprintf(why, why_len, "'%s' shape %s, expected %s", v->name, kiln_shape_format(g, &v->shape, a, sizeof a),
             kiln_shape_format(NULL, &ws, b, sizeof b));
    return false;
  }
  int64_t n = kiln_tensor_numel(want);
  if (n > 0 && !v->data) {
    snprintf(why, why_len, "'%s' has no value", v->name);
    return false;
  }
  for (int64_t i = 0; i < n; i++) {
    double a = kiln_dtype_load_f64(v->dtype, v->data, i), b = kiln_dtype_load_f64(want->dtype, want->data, i);
    bool ok = kiln_dtype_is_float(v->dtype)
                  ? close_enough(v->dtype, a, b)
                  : kiln_dtype_load_i64(v->dtype, v->data, i) == kiln_dtype_load_i64(want->dtype, want->data, i);
    if (!ok) {
      snprintf(why, why_len, "'%s'[%lld] = %.9g, expected %.9g", v->name, (long long)i, a, b);
      return false;
    }
  }
  return true;
}

kiln_status kiln_nodetest_bind_inputs(kiln_graph *g, const kiln_nodetest_data *d) {
  if (g->n_inputs != d->n_inputs)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "model has %d inputs, test data %d", g->n_inputs, d->n_inputs);
  for (int i = 0; i < d->n_inputs; i++) {
    kiln_shape s;
    kiln_shape_init(&s, d->inputs[i].rank, d->inputs[i].dims);
    kiln_dtype dt = expected_dtype(g->values[g->inputs[i]].dtype, d->inputs[i].dtype);
    KILN_TRY(kiln_value_set_constant(g, g->inputs[i], dt, &s, d->inputs[i].data));
  }
  return NULL;
}
