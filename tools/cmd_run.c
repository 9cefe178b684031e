/* `kiln run ENGINE|MODEL.onnx --input NAME=FILE.bin ... --output-dir DIR [--threads N]`
 * Inputs and outputs are raw little-endian tensors; each output goes to DIR/<name>.bin. */
#include "commands.h"
#include "engine_source.h"
#include "tool_util.h"

#include "core/file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f) {
  fprintf(f, "usage: kiln run ENGINE|MODEL.onnx --input NAME=FILE.bin [...] --output-dir DIR [--threads N]\n");
}

static void safe_name(const char *in, char *out, size_t n) {
  size_t i = 0;
  for (; in[i] && i + 1 < n; i++) {
    char c = in[i];
    out[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ? c : '_';
  }
  out[i] = 0;
}

int kiln_cmd_run(int argc, char **argv) {
  const char *model = NULL, *outdir = NULL, *inputs[64];
  int n_inputs = 0, threads = 0;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    } else if (kiln_flag_value(argc, argv, &i, "--input", &v) || kiln_flag_value(argc, argv, &i, "-i", &v)) {
      if (!v || !strchr(v, '=') || n_inputs == 64) return kiln_usage_error("run", "--input needs NAME=FILE.bin");
      inputs[n_inputs++] = v;
    } else if (kiln_flag_value(argc, argv, &i, "--output-dir", &v) || kiln_flag_value(argc, argv, &i, "-o", &v)) {
      if (!v) return kiln_usage_error("run", "--output-dir needs a folder");
      outdir = v;
    } else if (kiln_flag_value(argc, argv, &i, "--threads", &v)) {
      if (!v || kiln_parse_int(v, 1, 1024, &threads)) return kiln_usage_error("run", "--threads must be 1..1024");
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "kiln run: unknown flag '%s'\n", argv[i]);
      usage(stderr);
      return KILN_EXIT_USAGE;
    } else if (model) {
      return kiln_usage_error("run", "more than one engine or model given");
    } else model = argv[i];
  }
  if (!model || !outdir) {
    usage(stderr);
    return KILN_EXIT_USAGE;
  }
  struct stat sb;
  if (stat(outdir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    fprintf(stderr, "kiln run: output folder '%s' does not exist\n", outdir);
    return KILN_EXIT_USAGE;
  }
  kiln_build_config cfg;
  kiln_build_config_init(&cfg);
  cfg.threads = threads;
  kiln_engine *e = NULL;
  kiln_context *c = NULL;
  kiln_status st = kiln_engine_open_any(model, &cfg, NULL, &e, NULL);
  kiln_context_options copt = {threads};
  if (!st) st = kiln_context_create(e, &copt, &c);
  int nb = e ? kiln_engine_num_bindings(e) : 0;
  void **bufs = calloc((size_t)nb + 1, sizeof(void *));
  for (int k = 0; !st && k < n_inputs; k++) {
    char name[512];
    const char *eq = strchr(inputs[k], '=');
    snprintf(name, sizeof name, "%.*s", (int)(eq - inputs[k]), inputs[k]);
    int b = kiln_engine_find_binding(e, name);
    kiln_binding_info info;
    if (b < 0 || (kiln_engine_binding(e, b, &info), !info.is_input)) {
      st = kiln_error(KILN_ERR_INVALID_ARGUMENT, "the engine has no input named '%s'", name);
      break;
    }
    size_t len;
    free(bufs[b]);
    bufs[b] = NULL;
    st = kiln_file_read(eq + 1, (size_t)1 << 34, &bufs[b], &len);
    if (!st && len != info.nbytes)
      st = kiln_error(KILN_ERR_INVALID_ARGUMENT, "input '%s': '%s' has %zu bytes, the engine needs %zu", name, eq + 1, len,
                      info.nbytes);
    if (!st) st = kiln_context_bind(c, name, bufs[b], len);
  }
  for (int b = 0; !st && b < nb; b++) {
    kiln_binding_info info;
    kiln_engine_binding(e, b, &info);
    if (info.is_input) {
      if (!bufs[b]) st = kiln_error(KILN_ERR_INVALID_ARGUMENT, "input '%s' was not given (--input %s=FILE.bin)", info.name, info.name);
      continue;
    }
    bufs[b] = malloc(info.nbytes ? info.nbytes : 1);
    if (!bufs[b]) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
    else st = kiln_context_bind(c, info.name, bufs[b], info.nbytes);
  }
  double t0 = kiln_now_ms();
  if (!st) st = kiln_context_enqueue(c, NULL);
  double ms = kiln_now_ms() - t0;
  for (int b = 0; !st && b < nb; b++) {
    kiln_binding_info info;
    kiln_engine_binding(e, b, &info);
    if (info.is_input) continue;
    char fname[512], path[4096];
    safe_name(info.name, fname, sizeof fname);
    snprintf(path, sizeof path, "%s/%s.bin", outdir, fname);
    st = kiln_file_write_atomic(path, bufs[b], info.nbytes);
    if (st) break;
    printf("output %s %s ", info.name, kiln_dtype_name(info.dtype));
    for (int d = 0; d < info.rank; d++) printf("%s%lld", d ? "x" : "", (long long)info.dims[d]);
    printf(" %s\n", path);
  }
  if (!st) printf("run: %.2f ms\n", ms);
  for (int b = 0; b < nb; b++) free(bufs[b]);
  free(bufs);
  kiln_context_destroy(c);
  kiln_engine_destroy(e);
  return st ? kiln_report("run", st) : 0;
}
