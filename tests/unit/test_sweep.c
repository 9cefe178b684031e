/*
 * The import acceptance sweep over ONNX's backend node tests (Debian libonnx-testdata):
 *  - every model.onnx either imports, or is refused as unsupported with a message that names the op
 *    of one of its nodes ("unsupported op 'Loop'", "node 'x' (Loop): ...");
 *  - for every imported model, shape inference agrees with the dtype and shape of each expected output.
 *    Where an output's shape depends on input values, the test inputs are bound as constants and the
 *    graph is evaluated node by node (kiln_fold_node; kiln_node_infer where no kernel exists yet), then
 *    the shapes are compared. Values are not compared here: that is `kiln nodetest`'s job.
 * Prints one summary line and fails on any mismatch or any import error that does not name an op.
 */
#include "testlib.h"

#include "onnx/nodetest_data.h"
#include "onnx/onnx.h"
#include "passes/fold.h"
#include "onnx.pb-c.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sweep_counts {
  int models, imported, refused, shapes_ok, data_dep_ok, mismatches, bad_errors, unchecked, no_data;
} sweep_counts;

/* Does msg name the op type of some node of the model? The model is read with protobuf-c directly,
 * because kiln refused it. Subgraph nodes count too (an If branch's op may be what is unsupported). */
static bool graph_names_op(const Onnx__GraphProto *gp, const char *msg, int depth) {
  if (!gp || depth > 8) return false;
  for (size_t i = 0; i < gp->n_node; i++) {
    const Onnx__NodeProto *n = gp->node[i];
    if (n->op_type && n->op_type[0] && strstr(msg, n->op_type)) return true;
    for (size_t k = 0; k < n->n_attribute; k++) {
      const Onnx__AttributeProto *a = n->attribute[k];
      if (graph_names_op(a->g, msg, depth + 1)) return true;
      for (size_t j = 0; j < a->n_graphs; j++)
        if (graph_names_op(a->graphs[j], msg, depth + 1)) return true;
    }
  }
  return false;
}

static bool message_names_op(const char *model_path, const char *msg) {
  size_t len;
  void *buf = test_read_file(model_path, &len);
  if (!buf) return false;
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
  free(buf);
  if (!m) return false;
  bool named = graph_names_op(m->graph, msg, 0);
  onnx__model_proto__free_unpacked(m, NULL);
  return named;
}

/* Bind the test inputs as constants and evaluate node by node, so that shapes depending on input values
 * become static. A node without a reference kernel yet is only inferred (its outputs stay non-constant,
 * and later data-dependent shapes may stay dynamic: those are counted as unchecked, not as errors). */
static kiln_status infer_with_inputs(const char *model, const kiln_nodetest_data *d, kiln_graph **out) {
  kiln_onnx_import_options io = {.skip_infer = true};
  kiln_graph *g;
  KILN_TRY(kiln_onnx_load(model, &io, &g));
  kiln_status st = kiln_nodetest_bind_inputs(g, d);
  for (int32_t i = 0; i < g->n_nodes && !st; i++) {
    st = kiln_fold_node(g, i);
    if (st && kiln_status_get_code(st) == KILN_ERR_UNSUPPORTED) {
      kiln_status_destroy(st);
      st = kiln_node_infer(g, &g->nodes[i]);
    }
  }
  if (st) {
    kiln_graph_destroy(g);
    return st;
  }
  *out = g;
  return NULL;
}

static void sweep_one(const char *dir, const char *name, sweep_counts *c) {
  char model[4096], why[1024] = "";
  snprintf(model, sizeof model, "%s/model.onnx", dir);
  c->models++;
  kiln_graph *g = NULL;
  kiln_status st = kiln_onnx_load(model, NULL, &g);
  if (st) {
    const char *msg = kiln_status_message(st);
    if (kiln_status_get_code(st) == KILN_ERR_UNSUPPORTED && message_names_op(model, msg)) {
      c->refused++;
    } else {
      c->bad_errors++;
      print_message("IMPORT ERROR %s: [%s] %s\n", name, kiln_status_code_name(kiln_status_get_code(st)), msg);
    }
    kiln_status_destroy(st);
    return;
  }
  c->imported++;
  kiln_nodetest_data d;
  st = kiln_nodetest_data_load(dir, 0, &d);
  if (st) { /* e.g. string outputs of a model kiln imported anyway: nothing to compare with */
    c->no_data++;
    kiln_status_destroy(st);
    kiln_graph_destroy(g);
    return;
  }
  bool ok = true, deferred = false;
  if (g->n_outputs != d.n_outputs) {
    snprintf(why, sizeof why, "model has %d outputs, test data %d", g->n_outputs, d.n_outputs);
    ok = false;
  }
  for (int i = 0; ok && i < d.n_outputs; i++) {
    const kiln_value *v = &g->values[g->outputs[i]];
    if (kiln_shape_is_static(&v->shape)) ok = kiln_nodetest_type_matches(g, v, &d.outputs[i], why, sizeof why);
    else if (v->dtype != KILN_DTYPE_UNDEFINED && v->dtype != d.outputs[i].dtype)
      ok = kiln_nodetest_type_matches(g, v, &d.outputs[i], why, sizeof why); /* a known dtype must agree */
    else deferred = true;
  }
  kiln_graph_destroy(g);
  g = NULL;
  if (ok && deferred) {
    st = infer_with_inputs(model, &d, &g);
    if (st) {
      snprintf(why, sizeof why, "with constant inputs: %s", kiln_status_message(st));
      kiln_status_destroy(st);
      ok = false;
    }
    bool all_static = true;
    for (int i = 0; ok && i < d.n_outputs; i++) {
      const kiln_value *v = &g->values[g->outputs[i]];
      if (kiln_shape_is_static(&v->shape)) ok = kiln_nodetest_type_matches(g, v, &d.outputs[i], why, sizeof why);
      else all_static = false;
    }
    if (ok && !all_static) c->unchecked++;
    else if (ok) c->data_dep_ok++;
  } else if (ok) {
    c->shapes_ok++;
  }
  if (!ok) {
    c->mismatches++;
    print_message("MISMATCH %s: %s\n", name, why);
  }
  kiln_graph_destroy(g);
  kiln_nodetest_data_free(&d);
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_node_sweep(void **state) {
  const char *root = getenv("KILN_TESTDATA_DIR") ? getenv("KILN_TESTDATA_DIR") : KILN_TESTDATA_DIR;
  DIR *dh = opendir(root);
  if (!dh) {
    print_message("skipped: %s not found (Debian package libonnx-testdata)\n", root);
    skip();
  }
  char **names = NULL;
  int n = 0, cap = 0;
  for (struct dirent *e; (e = readdir(dh));) {
    if (strncmp(e->d_name, "test_", 5) != 0) continue;
    if (n == cap) {
      cap = cap ? 2 * cap : 1024;
      names = realloc(names, sizeof(char *) * (size_t)cap);
      assert_non_null(names);
    }
    names[n] = strdup(e->d_name);
    assert_non_null(names[n++]);
  }
  closedir(dh);
  qsort(names, (size_t)n, sizeof(char *), name_cmp); /* stable output order */
  sweep_counts c = {0};
  for (int i = 0; i < n; i++) {
    char dir[4096], model[4200];
    snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
    snprintf(model, sizeof model, "%s/model.onnx", dir);
    if (test_file_exists(model)) sweep_one(dir, names[i], &c);
    free(names[i]);
  }
  free(names);
  print_message("sweep: %d models, %d imported, %d refused (unsupported op), %d shapes agree, %d data-dependent "
                "shapes agree, %d mismatches\n",
                c.models, c.imported, c.refused, c.shapes_ok, c.data_dep_ok, c.mismatches);
  print_message("sweep: %d import errors not naming an op, %d data-dependent shapes left unchecked (no reference "
                "kernel upstream yet), %d without decodable test data\n",
                c.bad_errors, c.unchecked, c.no_data);
  assert_int_equal(c.mismatches, 0);
  assert_int_equal(c.bad_errors, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_node_sweep),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
