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

#include "onnx/nodetest_data.h"
#include "onnx/onnx.h"
#include "passes/fold.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct nt_opts {
  int verbose;
  const char *filter;
} nt_opts;

typedef enum { NT_PASS, NT_FAIL, NT_SKIP } nt_result;

typedef struct nt_counts {
  int pass, fail, skip, shape_static_ok, shape_deferred;
} nt_counts;

static nt_result run_one(const char *dir, const nt_opts *o, nt_counts *c, char *why, size_t wl) {
  char model[4096];
  snprintf(model, sizeof model, "%s/model.onnx", dir);
  kiln_nodetest_data d;
  nt_result r = NT_PASS;
  kiln_graph *g = NULL;
  kiln_status st = kiln_nodetest_data_load(dir, 0, &d);
  if (st) {
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
  if (g->n_outputs != d.n_outputs) {
    snprintf(why, wl, "model has %d outputs, test data %d", g->n_outputs, d.n_outputs);
    r = NT_FAIL;
    goto done;
  }
  int deferred = 0;
  for (int i = 0; i < d.n_outputs; i++) {
    const kiln_value *v = &g->values[g->outputs[i]];
    if (!kiln_shape_is_static(&v->shape)) {
      deferred++;
      continue;
    }
    if (!kiln_nodetest_type_matches(g, v, &d.outputs[i], why, wl)) {
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
  if (!st) st = kiln_nodetest_bind_inputs(g, &d);
  if (st) {
    snprintf(why, wl, "%s", kiln_status_message(st));
    r = NT_FAIL;
    goto done;
  }
  for (int32_t i = 0; i < g->n_nodes && !st; i++) st = kiln_fold_node(g, i);
  if (st) {
    snprintf(why, wl, "%s", kiln_status_message(st));
    r = kiln_status_get_code(st) == KILN_ERR_UNSUPPORTED ? NT_SKIP : NT_FAIL;
    goto done;
  }
  for (int i = 0; i < d.n_outputs; i++)
    if (!kiln_nodetest_values_match(g, &g->values[g->outputs[i]], &d.outputs[i], why, wl)) {
      r = NT_FAIL;
      goto done;
    }
done:
  kiln_status_destroy(st);
  kiln_graph_destroy(g);
  kiln_nodetest_data_free(&d);
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
