/*
 * `kiln inspect MODEL.onnx [--layers]`: what a model is, before building it. Prints the interface
 * (inputs/outputs with dtypes and shapes), opset and IR version, node count, a histogram of op types with
 * MACs, the parameter count (elements of all initializers) and, with --layers, one line per node.
 * Engine files (issue: engine format) get the same command.
 */
#include "commands.h"

#include "core/dtype.h"
#include "engine_source.h"
#include "onnx/onnx.h"
#include "runtime/engine.h"
#include "tool_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *human(double v, char *buf, size_t len) {
  const char *units[] = {"", " K", " M", " G", " T"};
  int u = 0;
  while (v >= 1000.0 && u < 4) {
    v /= 1000.0;
    u++;
  }
  snprintf(buf, len, u ? "%.2f%s" : "%.0f%s", v, units[u]);
  return buf;
}

static void print_value_line(const kiln_graph *g, const kiln_value *v) {
  char shape[256];
  printf("  %-24s %-9s %s\n", v->name, kiln_dtype_name(v->dtype), kiln_shape_format(g, &v->shape, shape, sizeof shape));
}

static void usage(FILE *f) {
  fprintf(f, "usage: kiln inspect MODEL.onnx|ENGINE [--layers]\n"
             "  prints inputs, outputs, opset, op histogram, parameters and MACs; for an engine file:\n"
             "  target, build options, bindings, layers and kernels, activation and weight memory\n"
             "  --layers   one line per node: name, op, inputs -> outputs with shapes, MACs\n");
}

/* Engine files start with the engine magic; anything else is treated as ONNX. */
static int kiln_file_is_engine(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  char magic[8] = {0};
  size_t n = fread(magic, 1, 8, f);
  fclose(f);
  return n == 8 && !memcmp(magic, "KILNENG", 8);
}

static int inspect_engine(const char *path, int layers) {
  kiln_engine *e;
  kiln_status st = kiln_engine_describe_file(path, &e);
  if (st) return kiln_report("inspect", st);
  kiln_engine_print(e, layers);
  kiln_engine_destroy(e);
  return 0;
}

typedef struct op_stat {
  const char *name;
  int count;
  int64_t macs;
} op_stat;

int kiln_cmd_inspect(int argc, char **argv) {
  const char *path = NULL;
  int layers = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--layers")) layers = 1;
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "kiln inspect: unknown flag '%s'\n", argv[i]);
      usage(stderr);
      return KILN_EXIT_USAGE;
    } else if (path) {
      fprintf(stderr, "kiln inspect: more than one model given ('%s' and '%s')\n", path, argv[i]);
      return KILN_EXIT_USAGE;
    } else path = argv[i];
  }
  if (!path) {
    usage(stderr);
    return KILN_EXIT_USAGE;
  }
  if (!kiln_path_is_onnx(path) && kiln_file_is_engine(path)) return inspect_engine(path, layers);
  kiln_graph *g = NULL;
  kiln_status st = kiln_onnx_load(path, NULL, &g);
  if (st) {
    fprintf(stderr, "kiln inspect: %s\n", kiln_status_message(st));
    int code = kiln_status_get_code(st) == KILN_ERR_OUT_OF_MEMORY ? KILN_EXIT_FAILURE : KILN_EXIT_BAD_INPUT;
    kiln_status_destroy(st);
    return code;
  }
  printf("model       %s\n", path);
  printf("format      ONNX, IR version %" PRId64 ", opset %" PRId64, g->ir_version, g->opset);
  for (int32_t i = 0; i < g->n_opsets; i++)
    if (g->opsets[i].domain[0] && strcmp(g->opsets[i].domain, "ai.onnx"))
      printf(", %s %" PRId64, g->opsets[i].domain, g->opsets[i].version);
  if (g->producer_name) printf(", producer %s %s", g->producer_name, g->producer_version ? g->producer_version : "");
  printf("\ninputs\n");
  for (int32_t i = 0; i < g->n_inputs; i++) print_value_line(g, &g->values[g->inputs[i]]);
  printf("outputs\n");
  for (int32_t i = 0; i < g->n_outputs; i++) print_value_line(g, &g->values[g->outputs[i]]);

  int64_t params = 0, param_bytes = 0;
  for (int32_t v = 0; v < g->n_values; v++)
    if ((g->values[v].flags & KILN_VALUE_INITIALIZER) && g->values[v].data) {
      params += kiln_shape_numel(&g->values[v].shape);
      param_bytes += (int64_t)g->values[v].nbytes;
    }
  op_stat *stats = calloc((size_t)g->n_nodes + 1, sizeof(op_stat));
  int n_stats = 0;
  int64_t total_macs = 0;
  for (int32_t i = 0; stats && i < g->n_nodes; i++) {
    const kiln_node *n = &g->nodes[i];
    int64_t macs = kiln_node_macs(g, n);
    total_macs += macs;
    int k = 0;
    while (k < n_stats && strcmp(stats[k].name, n->op_type)) k++;
    if (k == n_stats) stats[n_stats++].name = n->op_type;
    stats[k].count++;
    stats[k].macs += macs;
  }
  char b1[32], b2[32];
  printf("nodes       %d\n", g->n_nodes);
  printf("parameters  %" PRId64 " (%s, %s bytes)\n", params, human((double)params, b1, sizeof b1),
         human((double)param_bytes, b2, sizeof b2));
  printf("MACs        %" PRId64 " (%s)\n", total_macs, human((double)total_macs, b1, sizeof b1));
  printf("op histogram (op count, MACs)\n");
  /* most frequent first; ties in order of first appearance */
  for (int a = 0; a < n_stats; a++)
    for (int b = a + 1; b < n_stats; b++)
      if (stats[b].count > stats[a].count) {
        op_stat t = stats[a];
        stats[a] = stats[b];
        stats[b] = t;
      }
  for (int k = 0; k < n_stats; k++) {
    char line[128];
    int w = snprintf(line, sizeof line, "  %s %d", stats[k].name, stats[k].count);
    if (stats[k].macs) printf("%s%*s%s MACs\n", line, w < 28 ? 28 - w : 1, "", human((double)stats[k].macs, b1, sizeof b1));
    else printf("%s\n", line);
  }
  if (layers) {
    printf("layers (name, op, inputs -> outputs, MACs)\n");
    for (int32_t i = 0; i < g->n_nodes; i++) {
      const kiln_node *n = &g->nodes[i];
      printf("  %-40s %-18s", n->name, n->op_type);
      for (int32_t k = 0; k < n->n_inputs; k++) {
        char shape[128];
        const kiln_value *v = kiln_node_input(g, n, k);
        if (!v) printf(" -");
        else printf(" %s%s", v->data ? "const:" : "", kiln_shape_format(g, &v->shape, shape, sizeof shape));
        printf("%s", k + 1 < n->n_inputs ? "," : "");
      }
      printf(" ->");
      for (int32_t k = 0; k < n->n_outputs; k++) {
        char shape[128];
        const kiln_value *v = kiln_node_output(g, n, k);
        printf(" %s", v ? kiln_shape_format(g, &v->shape, shape, sizeof shape) : "-");
      }
      int64_t macs = kiln_node_macs(g, n);
      if (macs) printf("  %s MACs", human((double)macs, b1, sizeof b1));
      printf("\n");
    }
  }
  free(stats);
  kiln_graph_destroy(g);
  return 0;
}
