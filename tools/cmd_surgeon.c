/*
 * `kiln surgeon`: rewrite an ONNX model and write it back as ONNX.
 *
 *   kiln surgeon sanitize IN.onnx -o OUT.onnx [--fold-constants] [--cleanup] [--toposort] [--ir-version N]
 *   kiln surgeon batch    IN.onnx -o OUT.onnx --batch N|dynamic [--ir-version N]
 *
 * Like `polygraphy surgeon sanitize --fold-constants`: with no pass flag, sanitize folds constants,
 * removes no-ops and dead nodes, and sorts. The output is written atomically, so a failure never leaves a
 * partial OUT behind (and OUT may be IN).
 */
#include "commands.h"

#include "onnx/onnx.h"
#include "passes/passes.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ONNX IR versions kiln can write: 3 (first with opset_import) up to 10 (ONNX 1.16). */
#define MIN_IR_VERSION 3
#define MAX_IR_VERSION 10
#define MAX_BATCH 1000000

static void usage(FILE *f) {
  fprintf(f,
          "usage: kiln surgeon sanitize IN.onnx -o OUT.onnx [--fold-constants] [--cleanup] [--toposort]\n"
          "                             [--ir-version N]\n"
          "       kiln surgeon batch IN.onnx -o OUT.onnx --batch N|dynamic [--ir-version N]\n"
          "\n"
          "Rewrite an ONNX model and save it as ONNX (written atomically: OUT is never left half-written).\n"
          "\n"
          "sanitize   simplify the graph; with no pass flag: --fold-constants --toposort\n"
          "  --fold-constants  evaluate nodes whose inputs are all constant, then remove no-op nodes\n"
          "                    (Identity, same-shape Reshape, ...) and dead nodes, until nothing changes\n"
          "  --cleanup         remove nodes whose outputs nobody uses, and unused constants\n"
          "  --toposort        order nodes so each comes after the producers of its inputs\n"
          "batch      set the batch (first) dimension of the inputs and everything that depends on it\n"
          "  --batch N         a fixed batch N >= 1, or 'dynamic' for a symbolic 'batch' dimension\n"
          "common\n"
          "  -o, --output PATH where to write the result (required)\n"
          "  --ir-version N    write this ONNX IR version (%d-%d); by default the model's own, raised to 4\n"
          "                    if lower (IR 3 would have to list every initializer as a graph input)\n"
          "  -h, --help        show this help\n"
          "\n"
          "Exit status: 0 ok, 1 the result could not be written, 2 bad flags or a model kiln cannot read.\n",
          MIN_IR_VERSION, MAX_IR_VERSION);
}

/* Bad user input (flags, files, models) is exit 2; kiln failing at its own work is exit 1. */
static int exit_code_for(kiln_status st) {
  switch (kiln_status_get_code(st)) {
  case KILN_ERR_INVALID_ARGUMENT:
  case KILN_ERR_PARSE:
  case KILN_ERR_UNSUPPORTED:
  case KILN_ERR_SHAPE: return KILN_EXIT_BAD_INPUT;
  default: return KILN_EXIT_FAILURE;
  }
}

static int fail(kiln_status st, const char *what, int code) {
  fprintf(stderr, "kiln surgeon: %s: %s\n", what, kiln_status_message(st));
  kiln_status_destroy(st);
  return code;
}

/* Strict integer parse: the whole string, in range. */
static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out) {
  if (!s || !*s) return false;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

static int32_t live_nodes(const kiln_graph *g) {
  int32_t n = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) n += !g->nodes[i].dead;
  return n;
}

/* Constants the exported file will hold as initializers: read by a live node or a graph output, and not
 * computed by a live node (mirrors export.c). */
static int32_t count_initializers(const kiln_graph *g) {
  bool *used = calloc((size_t)g->n_values + 1, sizeof(bool)), *produced = calloc((size_t)g->n_values + 1, sizeof(bool));
  int32_t n = -1;
  if (used && produced) {
    for (int32_t i = 0; i < g->n_nodes; i++) {
      const kiln_node *nd = &g->nodes[i];
      if (nd->dead) continue;
      for (int32_t k = 0; k < nd->n_inputs; k++)
        if (nd->inputs[k] >= 0 && nd->inputs[k] < g->n_values) used[nd->inputs[k]] = true;
      for (int32_t k = 0; k < nd->n_outputs; k++)
        if (nd->outputs[k] >= 0 && nd->outputs[k] < g->n_values) produced[nd->outputs[k]] = true;
    }
    for (int32_t k = 0; k < g->n_outputs; k++)
      if (g->outputs[k] >= 0 && g->outputs[k] < g->n_values) used[g->outputs[k]] = true;
    n = 0;
    for (int32_t v = 0; v < g->n_values; v++)
      n += used[v] && !produced[v] && g->values[v].data && !(g->values[v].flags & KILN_VALUE_GRAPH_INPUT);
  }
  free(used);
  free(produced);
  return n;
}

/* Append to the one-line summary, never overflowing. */
static void say(char *buf, size_t cap, const char *fmt, ...) KILN_PRINTF(3, 4);
static void say(char *buf, size_t cap, const char *fmt, ...) {
  size_t used = strlen(buf);
  if (used + 1 >= cap) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + used, cap - used, fmt, ap);
  va_end(ap);
}

int kiln_cmd_surgeon(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return KILN_EXIT_USAGE;
  }
  const char *sub = argv[1];
  if (!strcmp(sub, "-h") || !strcmp(sub, "--help") || !strcmp(sub, "help")) {
    usage(stdout);
    return KILN_EXIT_OK;
  }
  bool sanitize = !strcmp(sub, "sanitize"), batch_cmd = !strcmp(sub, "batch");
  if (!sanitize && !batch_cmd) {
    fprintf(stderr, "kiln surgeon: unknown subcommand '%s' (expected sanitize or batch)\n", sub);
    usage(stderr);
    return KILN_EXIT_USAGE;
  }

  const char *in = NULL, *out = NULL, *batch_arg = NULL;
  bool fold = false, cleanup = false, toposort = false;
  int64_t ir_version = 0, batch = -1;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    /* "--flag value" and "--flag=value" are both accepted for flags that take a value. */
    const char *val = NULL, *eq = strchr(a, '=');
    char flag[64];
    if (a[0] == '-' && a[1] == '-' && eq) {
      size_t n = (size_t)(eq - a);
      if (n >= sizeof flag) n = sizeof flag - 1;
      memcpy(flag, a, n);
      flag[n] = 0;
      val = eq + 1;
    } else {
      snprintf(flag, sizeof flag, "%s", a);
    }
    bool takes_value = !strcmp(flag, "-o") || !strcmp(flag, "--output") || !strcmp(flag, "--ir-version") ||
                       (batch_cmd && !strcmp(flag, "--batch"));
    if (takes_value && !val) {
      if (i + 1 >= argc) {
        fprintf(stderr, "kiln surgeon %s: %s needs a value\n", sub, flag);
        return KILN_EXIT_USAGE;
      }
      val = argv[++i];
    } else if (!takes_value && val) {
      fprintf(stderr, "kiln surgeon %s: %s takes no value\n", sub, flag);
      return KILN_EXIT_USAGE;
    }
    if (!strcmp(flag, "-h") || !strcmp(flag, "--help")) {
      usage(stdout);
      return KILN_EXIT_OK;
    } else if (!strcmp(flag, "-o") || !strcmp(flag, "--output")) {
      if (out) {
        fprintf(stderr, "kiln surgeon %s: -o given twice\n", sub);
        return KILN_EXIT_USAGE;
      }
      out = val;
    } else if (!strcmp(flag, "--ir-version")) {
      if (!parse_int(val, MIN_IR_VERSION, MAX_IR_VERSION, &ir_version)) {
        fprintf(stderr, "kiln surgeon %s: --ir-version '%s' is not an integer from %d to %d\n", sub, val,
                MIN_IR_VERSION, MAX_IR_VERSION);
        return KILN_EXIT_USAGE;
      }
    } else if (batch_cmd && !strcmp(flag, "--batch")) {
      batch_arg = val;
      if (!strcmp(val, "dynamic")) batch = 0;
      else if (!parse_int(val, 1, MAX_BATCH, &batch)) {
        fprintf(stderr, "kiln surgeon batch: --batch '%s' is not 'dynamic' or an integer from 1 to %d\n", val,
                MAX_BATCH);
        return KILN_EXIT_USAGE;
      }
    } else if (sanitize && !strcmp(flag, "--fold-constants")) {
      fold = true;
    } else if (sanitize && !strcmp(flag, "--cleanup")) {
      cleanup = true;
    } else if (sanitize && !strcmp(flag, "--toposort")) {
      toposort = true;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "kiln surgeon %s: unknown flag '%s' (see kiln surgeon --help)\n", sub, a);
      return KILN_EXIT_USAGE;
    } else if (!in) {
      in = a;
    } else {
      fprintf(stderr, "kiln surgeon %s: more than one input model ('%s' and '%s')\n", sub, in, a);
      return KILN_EXIT_USAGE;
    }
  }
  if (!in) {
    fprintf(stderr, "kiln surgeon %s: no input model given\n", sub);
    return KILN_EXIT_USAGE;
  }
  if (!out || !out[0]) {
    fprintf(stderr, "kiln surgeon %s: no output path given (-o OUT.onnx)\n", sub);
    return KILN_EXIT_USAGE;
  }
  if (batch_cmd && !batch_arg) {
    fprintf(stderr, "kiln surgeon batch: --batch N|dynamic is required\n");
    return KILN_EXIT_USAGE;
  }

  kiln_graph *g = NULL;
  kiln_status st = kiln_onnx_load(in, NULL, &g);
  if (st) return fail(st, "cannot load the model", KILN_EXIT_BAD_INPUT);

  int32_t nodes_before = live_nodes(g);
  char summary[512] = "";
  if (sanitize) {
    if (!fold && !cleanup && !toposort) fold = toposort = true; /* polygraphy's sanitize --fold-constants */
    if (fold) {
      /* Folding exposes no-ops and dead nodes, and removing them can expose more folding: iterate to a
       * fixed point (bounded: each round removes at least one node). */
      int folded = 0, noops = 0, dead = 0;
      for (int round = 0; round < 64 && !st; round++) {
        int f = 0, n = 0, d = 0;
        st = kiln_pass_fold_constants(g, &f);
        if (!st) st = kiln_pass_eliminate_noops(g, &n);
        if (!st) st = kiln_pass_cleanup(g, &d);
        folded += f, noops += n, dead += d;
        if (!f && !n && !d) break;
      }
      say(summary, sizeof summary, "; folded %d, no-ops removed %d, dead removed %d", folded, noops, dead);
    }
    if (!st && cleanup && !fold) {
      int dead = 0;
      st = kiln_pass_cleanup(g, &dead);
      say(summary, sizeof summary, "; dead removed %d", dead);
    }
    if (!st && toposort) {
      st = kiln_pass_toposort(g);
      say(summary, sizeof summary, "; sorted");
    }
  } else {
    st = kiln_pass_rebatch(g, batch);
    say(summary, sizeof summary, "; batch %s", batch ? batch_arg : "dynamic");
  }
  if (st) {
    int code = exit_code_for(st);
    kiln_graph_destroy(g);
    return fail(st, sanitize ? "sanitize failed" : "rebatch failed", code);
  }

  /* IR < 4 requires every initializer to be listed as a graph input too, which makes them overridable
   * and stops runtimes from folding them; so unless asked, write at least IR 4. */
  if (ir_version) g->ir_version = ir_version;
  else if (g->ir_version > 0 && g->ir_version < 4) g->ir_version = 4;
  else if (g->ir_version <= 0 && g->opset <= 8) g->ir_version = 4; /* export would pick 3 for old opsets */

  int32_t nodes_after = live_nodes(g), inits = count_initializers(g);
  st = kiln_onnx_save(g, out);
  if (st) {
    int code = kiln_status_get_code(st) == KILN_ERR_UNSUPPORTED ? KILN_EXIT_BAD_INPUT : KILN_EXIT_FAILURE;
    kiln_graph_destroy(g);
    return fail(st, "cannot write the model", code);
  }
  printf("kiln surgeon %s: %s -> %s: %d -> %d nodes, %d initializers%s; IR %" PRId64 ", opset %" PRId64 "\n", sub,
         in, out, nodes_before, nodes_after, inits, summary, g->ir_version, g->opset);
  kiln_graph_destroy(g);
  return KILN_EXIT_OK;
}
