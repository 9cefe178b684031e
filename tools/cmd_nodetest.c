/*
 * `kiln nodetest`: check kiln's import, shape inference and reference kernels against ONNX's backend
 * node tests (model.onnx + test_data_set_0/{input,output}_N.pb).
 *
 * Per test:
 *  1. import (an unsupported op is a SKIP naming the op; any other import error is a FAIL)
 *  2. shape inference with the inputs as plain tensors; each static output shape must equal the
 *     expected output's shape (outputs whose shape depends on input values are checked in step 3)
 *  3. the inputs bound as constants, every node evaluated with the reference kernels; every output
 *     must match in dtype, shape and values (per-dtype tolerance)
 */
#include "commands.h"

#include "core/dtype.h"
#include "onnx/onnx.h"
#include "passes/fold.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct nt_opts {
  int verbose;
  const char *filter;
} nt_opts;

typedef enum { NT_PASS, NT_FAIL, NT_SKIP } nt_result;

typedef struct nt_counts {
  int pass, fail, skip, shape_static_ok, shape_deferred;
} nt_counts;

static int load_expected(const char *dir, const char *kind, kiln_tensor *arr, int max) {
  int n = 0;
  for (; n < max; n++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/test_data_set_0/%s_%d.pb", dir, kind, n);
    struct stat s;
    if (stat(path, &s) != 0) break;
    kiln_status st = kiln_onnx_read_tensor_file(path, &arr[n], NULL);
    if (st) {
      kiln_status_destroy(st);
      return -1 - n;
    }
  }
  return n;
}

static bool close_enough(kiln_dtype dt, double a, double b) {
  if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
  if (isinf(a) || isinf(b)) return a == b;
  double rtol = 1e-3, atol = 1e-5;
  if (dt == KILN_DTYPE_FLOAT16 || dt == KILN_DTYPE_BFLOAT16) rtol = 1e-2, atol = 1e-3;
  if (!kiln_dtype_is_float(dt)) rtol = 0, atol = 0;
  return fabs(a - b) <= atol + rtol * fabs(b);
}

static int compare(const kiln_value *v, const kiln_tensor *want, char *why, size_t wl) {
  if (v->dtype != want->dtype) {
    snprintf(why, wl, "'%s' dtype %s, expected %s", v->name, kiln_dtype_name(v->dtype), kiln_dtype_name(want->dtype));
    return 0;
  }
  kiln_shape ws;
  kiln_shape_init(&ws, want->rank, want->dims);
  if (!kiln_shape_equal(&v->shape, &ws)) {
    char a[128], b[128];
    snprintf(why, wl, "'%s' shape %s, expected %s", v->name, kiln_shape_format(NULL, &v->shape, a, sizeof a),
             kiln_shape_format(NULL, &ws, b, sizeof b));
    return 0;
  }
  int64_t n = kiln_tensor_numel(want);
  for (int64_t i = 0; i < n; i++) {
    double a = kiln_dtype_load_f64(v->dtype, v->data, i), b = kiln_dtype_load_f64(want->dtype, want->data, i);
    if (!kiln_dtype_is_float(v->dtype) && kiln_dtype_load_i64(v->dtype, v->data, i) != kiln_dtype_load_i64(want->dtype, want->data, i)) {
      snprintf(why, wl, "'%s'[%lld] = %.9g, expected %.9g", v->name, (long long)i, a, b);
      return 0;
    }
    if (!close_enough(v->dtype, a, b)) {
      snprintf(why, wl, "'%s'[%lld] = %.9g, expected %.9g", v->name, (long long)i, a, b);
      return 0;
    }
  }
  return 1;
}

static nt_result run_one(const char *dir, const nt_opts *o, nt_counts *c, char *why, size_t wl) {
  char model[4096];
  snprintf(model, sizeof model, "%s/model.onnx", dir);
  kiln_tensor inputs[32], outputs[32];
  memset(inputs, 0, sizeof inputs);
  memset(outputs, 0, sizeof outputs);
  int n_in = load_expected(dir, "input", inputs, 32), n_out = load_expected(dir, "output", outputs, 32);
  nt_result r = NT_PASS;
  kiln_graph *g = NULL;
  kiln_status st = NULL;
  if (n_in < 0 || n_out < 0) {
    snprintf(why, wl, "cannot decode test data (string or unsupported dtype?)");
    r = NT_SKIP;
    goto done;
  }
  /* step 1+2: import with shape inference, inputs unknown */
  st = kiln_onnx_load(model, NULL, &g);
  if (st) {
    snprintf(why, wl, "%s", kiln_status_message(st));
    r = kiln_status_get_code(st) == KILN_ERR_UNSUPPORTED ? NT_SKIP : NT_FAIL;
    goto done;
  }
  if (g->n_outputs != n_out) {
    snprintf(why, wl, "model has %d outputs, test data %d", g->n_outputs, n_out);
    r = NT_FAIL;
    goto done;
  }
  int deferred = 0;
  for (int i = 0; i < n_out; i++) {
    const kiln_value *v = &g->values[g->outputs[i]];
    if (!kiln_shape_is_static(&v->shape)) {
      deferred++;
      continue;
    }
    kiln_shape ws;
    kiln_shape_init(&ws, outputs[i].rank, outputs[i].dims);
    if (!kiln_shape_equal(&v->shape, &ws) || v->dtype != outputs[i].dtype) {
      char a[128], b[128];
      snprintf(why, wl, "inferred %s %s for '%s', expected %s %s", kiln_dtype_name(v->dtype),
               kiln_shape_format(g, &v->shape, a, sizeof a), v->name, kiln_dtype_name(outputs[i].dtype),
               kiln_shape_format(NULL, &ws, b, sizeof b));
      r = NT_FAIL;
      goto done;
    }
  }
  if (deferred) c->shape_deferred++;
  else c->shape_static_ok++;
  kiln_graph_destroy(g);
  g = NULL;
  /* step 3: evaluate with inputs bound as constants */
  kiln_onnx_import_options io = {.skip_infer = true};
  st = kiln_onnx_load(model, &io, &g);
  if (st) {
    snprintf(why, wl, "%s", kiln_status_message(st));
    r = NT_FAIL;
    goto done;
  }
  if (g->n_inputs != n_in) {
    snprintf(why, wl, "model has %d inputs, test data %d", g->n_inputs, n_in);
    r = NT_FAIL;
    goto done;
  }
  for (int i = 0; i < n_in && !st; i++) {
    kiln_shape s;
    kiln_shape_init(&s, inputs[i].rank, inputs[i].dims);
    st = kiln_value_set_constant(g, g->inputs[i], inputs[i].dtype, &s, inputs[i].data);
  }
  for (int32_t i = 0; i < g->n_nodes && !st; i++) st = kiln_fold_node(g, i);
  if (st) {
    snprintf(why, wl, "%s", kiln_status_message(st));
    r = kiln_status_get_code(st) == KILN_ERR_UNSUPPORTED ? NT_SKIP : NT_FAIL;
    goto done;
  }
  for (int i = 0; i < n_out; i++)
    if (!compare(&g->values[g->outputs[i]], &outputs[i], why, wl)) {
      r = NT_FAIL;
      goto done;
    }
done:
  kiln_status_destroy(st);
  kiln_graph_destroy(g);
  for (int i = 0; i < 32; i++) {
    free(inputs[i].data);
    free(outputs[i].data);
  }
  return r;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int kiln_cmd_nodetest(int argc, char **argv) {
  nt_opts o = {0};
  const char *all = NULL;
  const char *dirs[256];
  int n_dirs = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) o.verbose = 1;
    else if (!strcmp(argv[i], "--all") && i + 1 < argc) all = argv[++i];
    else if (!strcmp(argv[i], "--filter") && i + 1 < argc) o.filter = argv[++i];
    else if (!strcmp(argv[i], "--help")) {
      printf("usage: kiln nodetest [-v] TESTDIR...\n       kiln nodetest [-v] --all DIR [--filter SUBSTRING]\n");
      return 0;
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "kiln nodetest: unknown flag '%s'\n", argv[i]);
      return KILN_EXIT_USAGE;
    } else if (n_dirs < 256) dirs[n_dirs++] = argv[i];
  }
  char **names = NULL;
  int n_names = 0;
  if (all) {
    DIR *d = opendir(all);
    if (!d) {
      fprintf(stderr, "kiln nodetest: cannot open '%s'\n", all);
      return KILN_EXIT_USAGE;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
      if (strncmp(e->d_name, "test_", 5) != 0) continue;
      if (o.filter && !strstr(e->d_name, o.filter)) continue;
      names = realloc(names, sizeof(char *) * (size_t)(n_names + 1));
      size_t l = strlen(all) + strlen(e->d_name) + 2;
      names[n_names] = malloc(l);
      snprintf(names[n_names++], l, "%s/%s", all, e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n_names, sizeof(char *), name_cmp);
  } else {
    for (int i = 0; i < n_dirs; i++) {
      names = realloc(names, sizeof(char *) * (size_t)(n_names + 1));
      names[n_names++] = strdup(dirs[i]);
    }
  }
  if (!n_names) {
    fprintf(stderr, "kiln nodetest: no tests given\n");
    return KILN_EXIT_USAGE;
  }
  nt_counts c = {0};
  for (int i = 0; i < n_names; i++) {
    char why[1024] = "";
    nt_result r = run_one(names[i], &o, &c, why, sizeof why);
    const char *base = strrchr(names[i], '/') ? strrchr(names[i], '/') + 1 : names[i];
    if (r == NT_PASS) c.pass++;
    else if (r == NT_FAIL) c.fail++;
    else c.skip++;
    if (r == NT_FAIL || o.verbose || n_names == 1)
      printf("%-4s %s%s%s\n", r == NT_PASS ? "PASS" : r == NT_FAIL ? "FAIL" : "SKIP", base, why[0] ? ": " : "", why);
    free(names[i]);
  }
  free(names);
  printf("nodetest: %d passed, %d failed, %d skipped (shapes: %d static ok, %d data-dependent checked by value)\n",
         c.pass, c.fail, c.skip, c.shape_static_ok, c.shape_deferred);
  return c.fail ? KILN_EXIT_FAILURE : 0;
}
