/*
 * `kiln conformance DIR`: the ONNX backend node tests through the whole engine path.
 *
 * `kiln nodetest` checks import, shape inference and the reference kernels by folding; this checks what
 * users run: for every test, the model gets the test inputs' (static) shapes, kiln_build optimizes and
 * serializes an engine, kiln_engine_load_memory loads it, a context binds test_data_set_0's inputs and
 * fresh output buffers, enqueue runs it, and each output is compared with the expected one (per-dtype
 * tolerance, shared with nodetest). Unsupported ops/attributes/dtypes are SKIPs with the reason.
 *
 * Each test runs in a forked child so a crash or a hang in one kernel is a FAIL for that test (with the
 * signal) instead of the end of the run.
 *
 * `--device cuda` builds GPU engines (`--fp16`: fp16 precision, compared with rtol/atol 1e-2) and runs them
 * on device buffers: inputs copied in, enqueue on the legacy default stream, outputs copied back. CUDA is
 * never initialized in the parent (a CUDA context does not survive fork): one child first reads the
 * GPU's compute capability, and every build targets it (`--cuda-arch`), so a test whose build is refused
 * costs no CUDA start-up; only tests that run create a context (~0.1-0.3 s each). `--no-fork` runs
 * everything in one process (one context; a crash ends the run). `--build-only` stops after kiln_build
 * (PASS = the engine was built), which with `--cuda-arch` shows what lowers to the GPU on a machine
 * without one.
 */
#include "commands.h"
#include "tool_util.h"

#include "backend/cuda/cuda_device.h"
#include "core/dtype.h"
#include "onnx/nodetest_data.h"
#include "onnx/onnx.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CMD "conformance"
#define TEST_TIMEOUT_S 120

typedef enum { CF_PASS = 0, CF_FAIL = 1, CF_SKIP = 2 } cf_result;
static const char *const cf_names[] = {"PASS", "FAIL", "SKIP"};

typedef struct cf_opts {
  int verbose, threads;
  const char *filter, *expected, *write_expected;
  int cuda, fp16, no_fork, build_only, cuda_arch;
} cf_opts;

static cf_result from_status(kiln_status st, const char *stage, char *why, size_t wl) {
  snprintf(why, wl, "%s: %s", stage, kiln_status_message(st));
  return kiln_status_get_code(st) == KILN_ERR_UNSUPPORTED ? CF_SKIP : CF_FAIL;
}

/* ONNX's generator stores bfloat16 test tensors as uint16 (same bits). */
static int dtype_compatible(kiln_dtype model, kiln_dtype data) {
  return model == data || (model == KILN_DTYPE_BFLOAT16 && data == KILN_DTYPE_UINT16);
}

/* Which inputs become constants (initializers) before building. Engines need static shapes, and many
 * node tests feed shape-defining tensors (Reshape's shape, Slice's starts, Resize's scales, TopK's k) as
 * graph inputs, where a real model has initializers. When a build fails only for want of static shapes,
 * the test is retried with those inputs folded in: first integer inputs, then also small float ones. */
enum { FOLD_NONE = 0, FOLD_INT = 1, FOLD_SMALL = 2 };

static int fold_input(int level, const kiln_tensor *t) {
  if (level == FOLD_NONE) return 0;
  if (t->dtype == KILN_DTYPE_INT64 || t->dtype == KILN_DTYPE_INT32) return 1;
  int64_t n = 1;
  for (int k = 0; k < t->rank; k++) n *= t->dims[k];
  return level >= FOLD_SMALL && n <= 16;
}

/* fp16 engines: float outputs within rtol/atol 1e-2 (dtype and shape exact). */
static int loose_match(const kiln_value *v, const kiln_tensor *want) {
  if (!kiln_dtype_is_float(v->dtype) || v->dtype != want->dtype || v->shape.rank != want->rank) return 0;
  for (int k = 0; k < want->rank; k++)
    if (v->shape.dims[k] != want->dims[k]) return 0;
  int64_t n = kiln_tensor_numel(want);
  for (int64_t i = 0; i < n; i++) {
    double a = kiln_dtype_load_f64(v->dtype, v->data, i), b = kiln_dtype_load_f64(want->dtype, want->data, i);
    if (isnan(a) || isnan(b) ? !(isnan(a) && isnan(b)) : isinf(a) || isinf(b) ? a != b : fabs(a - b) > 1e-2 + 1e-2 * fabs(b))
      return 0;
  }
  return 1;
}

static int is_static_shape_failure(const char *why) { return strstr(why, "engines need static shapes") != NULL; }

static cf_result run_one(const char *dir, const cf_opts *o, int level, int *n_folded, char *why, size_t wl) {
  char model[4096];
  snprintf(model, sizeof model, "%s/model.onnx", dir);
  kiln_nodetest_data d;
  kiln_graph *g = NULL;
  kiln_engine *e = NULL;
  kiln_context *ctx = NULL;
  void *img = NULL, *outs[KILN_NODETEST_MAX_TENSORS] = {0};
  void *dev[2 * KILN_NODETEST_MAX_TENSORS] = {0}; /* CUDA: device buffers of the inputs, then the outputs */
  char *out_names[KILN_NODETEST_MAX_TENSORS] = {0}, *in_names[KILN_NODETEST_MAX_TENSORS] = {0};
  size_t img_size = 0;
  cf_result r = CF_PASS;
  kiln_status st = kiln_nodetest_data_load(dir, 0, &d);
  if (st) {
    snprintf(why, wl, "cannot decode the test data (string or unsupported dtype): %s", kiln_status_message(st));
    kiln_status_destroy(st);
    return CF_SKIP;
  }
  /* Import without inference: the declared input shapes may be symbolic; the test's tensors fix them. */
  kiln_onnx_import_options io = {.skip_infer = true};
  st = kiln_onnx_load(model, &io, &g);
  if (st) {
    r = from_status(st, "import", why, wl);
    goto done;
  }
  if (g->n_inputs != d.n_inputs || g->n_outputs != d.n_outputs) {
    snprintf(why, wl, "model has %d inputs / %d outputs, test data %d / %d", g->n_inputs, g->n_outputs, d.n_inputs,
             d.n_outputs);
    r = CF_FAIL;
    goto done;
  }
  for (int i = 0; i < d.n_inputs; i++) {
    kiln_value *v = &g->values[g->inputs[i]];
    if (v->dtype != KILN_DTYPE_UNDEFINED && !dtype_compatible(v->dtype, d.inputs[i].dtype)) {
      snprintf(why, wl, "input '%s' is %s in the model, %s in the test data", v->name, kiln_dtype_name(v->dtype),
               kiln_dtype_name(d.inputs[i].dtype));
      r = CF_FAIL;
      goto done;
    }
    if (v->dtype == KILN_DTYPE_UNDEFINED) v->dtype = d.inputs[i].dtype;
    kiln_shape_init(&v->shape, d.inputs[i].rank, d.inputs[i].dims);
    if (fold_input(level, &d.inputs[i])) {
      kiln_shape s = v->shape;
      st = kiln_value_set_constant(g, g->inputs[i], v->dtype, &s, d.inputs[i].data);
      if (st) {
        r = from_status(st, "constant input", why, wl);
        goto done;
      }
      g->values[g->inputs[i]].flags = (g->values[g->inputs[i]].flags & ~KILN_VALUE_GRAPH_INPUT) | KILN_VALUE_INITIALIZER;
      (*n_folded)++;
    } else in_names[i] = strdup(v->name);
  }
  /* folded inputs are initializers now: drop them from the graph's inputs (no binding) */
  int32_t kept = 0;
  for (int i = 0; i < g->n_inputs; i++)
    if (in_names[i]) g->inputs[kept++] = g->inputs[i];
  g->n_inputs = kept;
  /* kiln_build rewrites the graph; keep the output names to find their bindings afterwards */
  for (int i = 0; i < d.n_outputs; i++) out_names[i] = strdup(g->values[g->outputs[i]].name);
  st = kiln_graph_infer_shapes(g);
  if (st) {
    r = from_status(st, "shape inference", why, wl);
    goto done;
  }
  kiln_build_config cfg;
  kiln_build_config_init(&cfg);
  cfg.threads = o->threads;
  if (o->cuda) {
    cfg.device = KILN_DEVICE_CUDA;
    cfg.cuda_arch = o->cuda_arch;
    if (o->fp16) cfg.precision = KILN_PRECISION_FP16;
  }
  st = kiln_build(g, &cfg, &img, &img_size);
  if (st) {
    r = from_status(st, "build", why, wl);
    goto done;
  }
  if (o->build_only) goto done;
  st = kiln_engine_load_memory(img, img_size, &e);
  if (st) {
    r = from_status(st, "load", why, wl);
    goto done;
  }
  kiln_context_options copt = {o->threads};
  st = kiln_context_create(e, &copt, &ctx);
  if (st) {
    r = from_status(st, "context", why, wl);
    goto done;
  }
  for (int i = 0; i < d.n_inputs; i++) {
    if (!in_names[i]) continue;
    int64_t n = 1;
    for (int k = 0; k < d.inputs[i].rank; k++) n *= d.inputs[i].dims[k];
    size_t nbytes = (size_t)n * kiln_dtype_size(d.inputs[i].dtype);
    void *buf = d.inputs[i].data;
    if (o->cuda) {
      if (!(st = kiln_cuda_malloc(nbytes ? nbytes : 1, &dev[i]))) st = kiln_cuda_copy_to_device(dev[i], buf, nbytes);
      if (st) {
        r = from_status(st, "device input", why, wl);
        goto done;
      }
      buf = dev[i];
    }
    st = kiln_context_bind(ctx, in_names[i], buf, nbytes);
    if (st) {
      r = from_status(st, "bind input", why, wl);
      goto done;
    }
  }
  kiln_binding_info ob[KILN_NODETEST_MAX_TENSORS];
  int nb = kiln_engine_num_bindings(e);
  for (int i = 0; i < d.n_outputs; i++) {
    /* by name among the outputs: an output may share its name with nothing else, but look only there */
    int found = -1;
    for (int b = 0; b < nb && found < 0; b++) {
      kiln_binding_info bi;
      if ((st = kiln_engine_binding(e, b, &bi))) break;
      if (!bi.is_input && !strcmp(bi.name, out_names[i])) found = b, ob[i] = bi;
    }
    if (st) {
      r = from_status(st, "bindings", why, wl);
      goto done;
    }
    if (found < 0) {
      snprintf(why, wl, "the engine has no output binding '%s'", out_names[i]);
      r = CF_FAIL;
      goto done;
    }
    outs[i] = calloc(1, ob[i].nbytes ? ob[i].nbytes : 1);
    if (!outs[i]) {
      snprintf(why, wl, "out of memory");
      r = CF_FAIL;
      goto done;
    }
    void *buf = outs[i];
    if (o->cuda) {
      void **dp = &dev[KILN_NODETEST_MAX_TENSORS + i];
      /* poisoned (NaN bytes) so an output the engine never writes cannot pass by accident */
      if (!(st = kiln_cuda_malloc(ob[i].nbytes ? ob[i].nbytes : 1, dp))) st = kiln_cuda_fill(*dp, 0xff, ob[i].nbytes);
      if (st) {
        r = from_status(st, "device output", why, wl);
        goto done;
      }
      buf = *dp;
    }
    st = kiln_context_bind(ctx, out_names[i], buf, ob[i].nbytes);
    if (st) {
      r = from_status(st, "bind output", why, wl);
      goto done;
    }
  }
  st = kiln_context_enqueue(ctx, NULL);
  if (st) {
    r = from_status(st, "enqueue", why, wl);
    goto done;
  }
  if (o->cuda) {
    if (!(st = kiln_cuda_stream_sync(NULL)))
      for (int i = 0; i < d.n_outputs && !st; i++)
        st = kiln_cuda_copy_to_host(outs[i], dev[KILN_NODETEST_MAX_TENSORS + i], ob[i].nbytes);
    if (st) {
      /* an asynchronous kernel fault is a failure of this test, never a SKIP */
      snprintf(why, wl, "run on the GPU: %s", kiln_status_message(st));
      r = CF_FAIL;
      goto done;
    }
  }
  for (int i = 0; i < d.n_outputs; i++) {
    /* present the binding as a graph value so nodetest's comparison (and its messages) apply unchanged */
    kiln_value v;
    memset(&v, 0, sizeof v);
    v.name = out_names[i];
    v.dtype = ob[i].dtype;
    kiln_shape_init(&v.shape, ob[i].rank, ob[i].dims);
    v.data = outs[i];
    v.nbytes = ob[i].nbytes;
    v.producer = -1;
    if (!kiln_nodetest_values_match(NULL, &v, &d.outputs[i], why, wl) && !(o->fp16 && loose_match(&v, &d.outputs[i]))) {
      r = CF_FAIL;
      goto done;
    }
  }
done:
  kiln_status_destroy(st);
  kiln_context_destroy(ctx);
  kiln_engine_destroy(e);
  kiln_free(img);
  kiln_graph_destroy(g);
  for (int i = 0; i < KILN_NODETEST_MAX_TENSORS; i++) free(outs[i]), free(out_names[i]), free(in_names[i]);
  for (int i = 0; i < 2 * KILN_NODETEST_MAX_TENSORS; i++) kiln_cuda_free(dev[i]);
  kiln_nodetest_data_free(&d);
  return r;
}

/* One test with the retries that fold shape-defining inputs into constants (see fold_input). */
static cf_result run_folding(const char *dir, const cf_opts *o, char *msg, size_t ml) {
  int folded = 0;
  cf_result r = run_one(dir, o, FOLD_NONE, &folded, msg, ml);
  int any_folded = 0;
  /* Fold further while the build wants static shapes, or - once integer inputs were folded - while an
   * op is refused: a GPU kernel may need its small float parameters constant too (Pad's value), as they
   * are in real models. */
  for (int level = FOLD_INT;
       level <= FOLD_SMALL && r == CF_SKIP && (is_static_shape_failure(msg) || (any_folded && !strncmp(msg, "build: ", 7)));
       level++) {
    char msg2[2048] = "";
    folded = 0;
    cf_result r2 = run_one(dir, o, level, &folded, msg2, sizeof msg2);
    if (!folded) continue; /* nothing to fold at this level: keep the first verdict */
    any_folded = 1;
    r = r2;
    snprintf(msg, ml, "%.1900s%s(%d input%s folded as constants)", msg2, msg2[0] ? " " : "", folded, folded == 1 ? "" : "s");
  }
  return r;
}

/* Run one test in a child; its verdict and reason come back through a pipe. */
static cf_result run_isolated(const char *dir, const cf_opts *o, char *why, size_t wl) {
  if (o->no_fork) return run_folding(dir, o, why, wl);
  int fds[2];
  if (pipe(fds) != 0) return run_folding(dir, o, why, wl);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]), close(fds[1]);
    return run_folding(dir, o, why, wl);
  }
  if (pid == 0) {
    close(fds[0]);
    alarm(TEST_TIMEOUT_S); /* a hang becomes SIGALRM, reported below */
    char msg[2048] = "";
    cf_result r = run_folding(dir, o, msg, sizeof msg);
    char buf[2056];
    int len = snprintf(buf, sizeof buf, "%d%s", (int)r, msg);
    if (len > (int)sizeof buf - 1) len = (int)sizeof buf - 1;
    ssize_t w = write(fds[1], buf, (size_t)len);
    (void)w;
    _exit(0);
  }
  close(fds[1]);
  char buf[2056];
  size_t got = 0;
  for (;;) {
    ssize_t k = read(fds[0], buf + got, sizeof buf - 1 - got);
    if (k > 0 && (got += (size_t)k) < sizeof buf - 1) continue;
    if (k < 0 && errno == EINTR) continue;
    break;
  }
  buf[got] = 0;
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    snprintf(why, wl, sig == SIGALRM ? "timed out after %d s" : "crashed (signal %d: %s)",
             sig == SIGALRM ? TEST_TIMEOUT_S : sig, strsignal(sig));
    return CF_FAIL;
  }
  if (got < 1 || buf[0] < '0' || buf[0] > '2') {
    snprintf(why, wl, "the test process exited without a verdict (status %d)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return CF_FAIL;
  }
  snprintf(why, wl, "%.2000s", buf + 1);
  return (cf_result)(buf[0] - '0');
}

/* The compute capability (major*10+minor) of CUDA device 0, read in a child so that this process never
 * initializes CUDA (the forked tests could not use it then). 0 if there is no usable GPU. */
static int query_cuda_arch(int no_fork) {
  kiln_cuda_device_info info;
  if (no_fork) {
    if (kiln_cuda_device_count() < 1) return 0;
    kiln_status st = kiln_cuda_device_query(0, &info);
    if (st) {
      kiln_status_destroy(st);
      return 0;
    }
    return info.cc_major * 10 + info.cc_minor;
  }
  int fds[2];
  if (pipe(fds) != 0) return 0;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]), close(fds[1]);
    return 0;
  }
  if (pid == 0) {
    close(fds[0]);
    int arch = 0;
    if (kiln_cuda_device_count() >= 1) {
      kiln_status st = kiln_cuda_device_query(0, &info);
      if (!st) arch = info.cc_major * 10 + info.cc_minor;
      kiln_status_destroy(st);
    }
    ssize_t w = write(fds[1], &arch, sizeof arch);
    (void)w;
    _exit(0);
  }
  close(fds[1]);
  int arch = 0;
  ssize_t k;
  while ((k = read(fds[0], &arch, sizeof arch)) < 0 && errno == EINTR) {
  }
  if (k != (ssize_t)sizeof arch) arch = 0;
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return arch;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void usage(FILE *f) {
  fprintf(f, "usage: kiln conformance DIR [--filter SUBSTR] [-v] [--threads N] [--expected FILE] [--write-expected FILE]\n"
             "                        [--device cpu|cuda] [--fp16] [--cuda-arch N] [--build-only] [--no-fork]\n"
             "  DIR: ONNX backend node tests (e.g. /usr/share/libonnx-testdata/data/node)\n"
             "  --device cuda          build GPU engines and run them on device buffers (default: cpu)\n"
             "  --fp16                 with --device cuda: fp16 engines, compared with rtol/atol 1e-2\n"
             "  --cuda-arch N          build for compute capability N (e.g. 90) instead of the GPU's\n"
             "  --build-only           stop after the build (PASS = built); with --cuda-arch needs no GPU\n"
             "  --no-fork              run every test in this process (faster with CUDA; a crash ends the run)\n"
             "  --expected FILE        test names that must pass (exit 1 naming any that did not)\n"
             "  --write-expected FILE  write the names of the passing tests\n");
}

/* Read a name list (one per line, '#' comments) into a sorted array. */
static int read_names(const char *path, char ***out, int *n) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[1024];
  *out = NULL;
  *n = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (!*s || *s == '#') continue;
    char **grown = realloc(*out, sizeof(char *) * (size_t)(*n + 1));
    if (!grown) break;
    *out = grown;
    (*out)[(*n)++] = strdup(s);
  }
  fclose(f);
  qsort(*out, (size_t)*n, sizeof(char *), name_cmp);
  return 0;
}

int kiln_cmd_conformance(int argc, char **argv) {
  cf_opts o = {0};
  o.threads = 1; /* node tests are tiny: one thread keeps thread-pool start-up out of every test */
  const char *dir = NULL;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) o.verbose = 1;
    else if (kiln_flag_value(argc, argv, &i, "--filter", &v)) {
      if (!v) return kiln_usage_error(CMD, "--filter needs a substring");
      o.filter = v;
    } else if (kiln_flag_value(argc, argv, &i, "--expected", &v)) {
      if (!v) return kiln_usage_error(CMD, "--expected needs a file");
      o.expected = v;
    } else if (kiln_flag_value(argc, argv, &i, "--write-expected", &v)) {
      if (!v) return kiln_usage_error(CMD, "--write-expected needs a file");
      o.write_expected = v;
    } else if (kiln_flag_value(argc, argv, &i, "--device", &v)) {
      if (!v || (strcmp(v, "cpu") && strcmp(v, "cuda"))) return kiln_usage_error(CMD, "--device must be cpu or cuda");
      o.cuda = !strcmp(v, "cuda");
    } else if (!strcmp(argv[i], "--fp16")) o.fp16 = 1;
    else if (!strcmp(argv[i], "--no-fork")) o.no_fork = 1;
    else if (!strcmp(argv[i], "--build-only")) o.build_only = 1;
    else if (kiln_flag_value(argc, argv, &i, "--cuda-arch", &v)) {
      if (!v || kiln_parse_int(v, 50, 200, &o.cuda_arch)) return kiln_usage_error(CMD, "--cuda-arch must be a compute capability like 90");
    } else if (kiln_flag_value(argc, argv, &i, "--threads", &v)) {
      if (!v || kiln_parse_int(v, 1, 1024, &o.threads)) return kiln_usage_error(CMD, "--threads must be 1..1024");
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "kiln conformance: unknown flag '%s'\n", argv[i]);
      usage(stderr);
      return KILN_EXIT_USAGE;
    } else if (dir) return kiln_usage_error(CMD, "more than one test folder given");
    else dir = argv[i];
  }
  if (!dir) {
    usage(stderr);
    return KILN_EXIT_USAGE;
  }
  if (o.fp16 && !o.cuda) return kiln_usage_error(CMD, "--fp16 needs --device cuda");
  if (o.cuda_arch && !o.cuda) return kiln_usage_error(CMD, "--cuda-arch needs --device cuda");
  if (o.cuda && !o.cuda_arch) {
    o.cuda_arch = query_cuda_arch(o.no_fork);
    if (!o.cuda_arch) {
      fprintf(stderr, "kiln conformance: no CUDA device (or kiln was built without CUDA); --cuda-arch N --build-only "
                      "checks the GPU lowering without one\n");
      return KILN_EXIT_FAILURE;
    }
  }
  char **expected = NULL;
  int n_expected = 0;
  if (o.expected && read_names(o.expected, &expected, &n_expected) != 0) {
    fprintf(stderr, "kiln conformance: cannot read '%s'\n", o.expected);
    return KILN_EXIT_USAGE;
  }
  DIR *dd = opendir(dir);
  if (!dd) {
    fprintf(stderr, "kiln conformance: cannot open '%s'\n", dir);
    return KILN_EXIT_USAGE;
  }
  char **names = NULL;
  int n_names = 0;
  struct dirent *ent;
  while ((ent = readdir(dd))) {
    if (strncmp(ent->d_name, "test_", 5) != 0) continue;
    if (o.filter && !strstr(ent->d_name, o.filter)) continue;
    char **grown = realloc(names, sizeof(char *) * (size_t)(n_names + 1));
    if (!grown) break;
    names = grown;
    names[n_names++] = strdup(ent->d_name);
  }
  closedir(dd);
  qsort(names, (size_t)n_names, sizeof(char *), name_cmp);
  if (!n_names) fprintf(stderr, "kiln conformance: no tests in '%s'%s\n", dir, o.filter ? " match the filter" : "");

  unsigned char *res = calloc((size_t)n_names + 1, 1);
  int counts[3] = {0, 0, 0};
  double t0 = kiln_now_ms();
  for (int i = 0; i < n_names; i++) {
    char path[4096], why[2048] = "";
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    cf_result r = run_isolated(path, &o, why, sizeof why);
    res[i] = (unsigned char)r;
    counts[r]++;
    if (r != CF_PASS || o.verbose)
      printf("%s %s%s%s\n", cf_names[r], names[i], why[0] ? ": " : "", why);
  }
  int rc = counts[CF_FAIL] ? KILN_EXIT_FAILURE : 0;
  if (o.write_expected) {
    FILE *f = fopen(o.write_expected, "w");
    if (!f) {
      fprintf(stderr, "kiln conformance: cannot write '%s'\n", o.write_expected);
      rc = KILN_EXIT_FAILURE;
    } else {
      fprintf(f, "# ONNX node tests that must pass through kiln_build + runtime (kiln conformance%s%s --write-expected)\n",
              o.cuda ? " --device cuda" : "", o.fp16 ? " --fp16" : "");
      for (int i = 0; i < n_names; i++)
        if (res[i] == CF_PASS) fprintf(f, "%s\n", names[i]);
      if (fclose(f) != 0) rc = KILN_EXIT_FAILURE;
    }
  }
  int missing = 0;
  for (int k = 0; k < n_expected; k++) {
    if (o.filter && !strstr(expected[k], o.filter)) continue; /* not selected in this run */
    char **hit = bsearch(&expected[k], names, (size_t)n_names, sizeof(char *), name_cmp);
    const char *why = !hit ? "not found" : res[hit - names] == CF_PASS ? NULL : cf_names[res[hit - names]];
    if (!why) continue;
    printf("expected to pass: %s (%s)\n", expected[k], why);
    missing++;
  }
  if (missing) {
    printf("conformance: %d expected test%s did not pass\n", missing, missing == 1 ? "" : "s");
    rc = KILN_EXIT_FAILURE;
  }
  if (o.verbose) printf("conformance: %.1f s\n", (kiln_now_ms() - t0) / 1000.0);
  printf("conformance: %d passed, %d failed, %d skipped\n", counts[CF_PASS], counts[CF_FAIL], counts[CF_SKIP]);
  for (int i = 0; i < n_names; i++) free(names[i]);
  for (int k = 0; k < n_expected; k++) free(expected[k]);
  free(names);
  free(expected);
  free(res);
  return rc;
}
