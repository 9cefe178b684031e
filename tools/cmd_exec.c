/*
 * `kiln exec`: trtexec-compatible benchmarking of an engine (or a model built on the fly).
 *
 *   kiln exec --onnx=yolov8n.onnx [--saveEngine=y.engine] [--batch=N]   |   --loadEngine=y.engine
 *             [--iterations=N] [--warmUp=MS] [--duration=S] [--avgRuns=N] [--percentile=P[,P..]]
 *             [--loadInputs=name:file.bin[,...]] [--dumpOutput] [--exportOutput=F.json]
 *             [--exportTimes=F.json] [--exportProfile=F.json] [--dumpProfile] [--separateProfileRun]
 *             [--threads=N] [--verbose]
 *
 * Flags mean what they mean to trtexec so scripts carry over: warm up for --warmUp ms, then time at
 * least --iterations runs and at least --duration seconds. The summary lines have trtexec's names; on
 * the CPU an enqueue runs the whole network, so enqueue = compute = latency and H2D/D2H are 0.
 * Everything the timed loop touches (records, per-layer rows) is allocated before it starts.
 */
#include "commands.h"
#include "engine_source.h"
#include "exec_report.h"
#include "tool_util.h"

#include "core/dtype.h"
#include "core/file.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define CMD "exec"

typedef struct exec_opts {
  const char *onnx, *load_engine, *save_engine, *load_inputs, *export_output, *export_times, *export_profile;
  int iterations, warmup_ms, avg_runs, threads, verbose, dump_output, dump_profile, separate_profile;
  double duration_s;
  int64_t batch;
  kiln_precision precision;
  double percentiles[KILN_EXEC_MAX_PERCENTILES];
  int n_percentiles;
} exec_opts;

static void usage(FILE *f) {
  fprintf(f,
          "usage: kiln exec (--onnx=MODEL.onnx | --loadEngine=FILE) [options]\n"
          "  --onnx=FILE            build an engine from this model first\n"
          "  --saveEngine=FILE      also write the built engine here\n"
          "  --loadEngine=FILE      run this engine file\n"
          "  --batch=N              re-batch the model to N when building\n"
          "  --iterations=N         run at least N timed iterations (default 10)\n"
          "  --warmUp=MS            warm up for MS milliseconds first (default 200)\n"
          "  --duration=S           run the timed loop for at least S seconds (default 3)\n"
          "  --avgRuns=N            with --verbose, print averages over N consecutive runs (default 10)\n"
          "  --percentile=P[,P..]   percentiles to report (default 90,95,99)\n"
          "  --loadInputs=name:file.bin[,name2:file2.bin]   raw inputs (default: random, fixed seed)\n"
          "  --dumpOutput           print the outputs of the last run\n"
          "  --exportOutput=FILE    write the outputs as JSON\n"
          "  --exportTimes=FILE     write per-iteration timing records as JSON\n"
          "  --exportProfile=FILE   write the per-layer profile as JSON\n"
          "  --dumpProfile          print the per-layer profile and a per-op-type summary\n"
          "  --separateProfileRun   profile in a separate run so the timed runs are not perturbed\n"
          "  --threads=N            CPU threads (default: KILN_THREADS or physical cores)\n"
          "  --fp16, --int8         build precision (where the target supports it)\n"
          "  --verbose              more output\n"
          "  accepted for trtexec compatibility, no effect on the CPU: --noDataTransfers --useSpinWait --useCudaGraph\n");
}

static int parse_double(const char *s, double lo, double hi, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= lo && v <= hi)) return 1;
  *out = v;
  return 0;
}

static int parse_percentiles(const char *s, exec_opts *o) {
  o->n_percentiles = 0;
  char buf[512];
  if (snprintf(buf, sizeof buf, "%s", s) >= (int)sizeof buf) return 1;
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (o->n_percentiles == KILN_EXEC_MAX_PERCENTILES) return 1;
    size_t l = strlen(tok);
    if (l && tok[l - 1] == '%') tok[l - 1] = 0; /* "99%" as well as "99" */
    if (parse_double(tok, 0, 100, &o->percentiles[o->n_percentiles++])) return 1;
  }
  return o->n_percentiles == 0;
}

/* Returns -1 when the arguments are fine, else the exit status. */
static int parse_args(int argc, char **argv, exec_opts *o) {
  memset(o, 0, sizeof *o);
  o->iterations = 10;
  o->warmup_ms = 200;
  o->duration_s = 3;
  o->avg_runs = 10;
  o->percentiles[0] = 90, o->percentiles[1] = 95, o->percentiles[2] = 99;
  o->n_percentiles = 3;
  for (int i = 1; i < argc; i++) {
    const char *v, *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    }
#define STR_FLAG(name, field)                                                                                 \
  if (kiln_flag_value(argc, argv, &i, name, &v)) {                                                            \
    if (!v || !*v) return kiln_usage_error(CMD, name " needs a value");                                       \
    o->field = v;                                                                                             \
    continue;                                                                                                 \
  }
    STR_FLAG("--onnx", onnx)
    STR_FLAG("--loadEngine", load_engine)
    STR_FLAG("--saveEngine", save_engine)
    STR_FLAG("--loadInputs", load_inputs)
    STR_FLAG("--exportOutput", export_output)
    STR_FLAG("--exportTimes", export_times)
    STR_FLAG("--exportProfile", export_profile)
#undef STR_FLAG
    if (kiln_flag_value(argc, argv, &i, "--iterations", &v)) {
      if (!v || kiln_parse_int(v, 1, INT32_MAX / 2, &o->iterations)) return kiln_usage_error(CMD, "--iterations must be an integer >= 1");
    } else if (kiln_flag_value(argc, argv, &i, "--warmUp", &v)) {
      if (!v || kiln_parse_int(v, 0, 3600 * 1000, &o->warmup_ms)) return kiln_usage_error(CMD, "--warmUp must be milliseconds >= 0");
    } else if (kiln_flag_value(argc, argv, &i, "--duration", &v)) {
      if (!v || parse_double(v, 0, 86400, &o->duration_s)) return kiln_usage_error(CMD, "--duration must be seconds >= 0");
    } else if (kiln_flag_value(argc, argv, &i, "--avgRuns", &v)) {
      if (!v || kiln_parse_int(v, 1, 1 << 20, &o->avg_runs)) return kiln_usage_error(CMD, "--avgRuns must be an integer >= 1");
    } else if (kiln_flag_value(argc, argv, &i, "--percentile", &v)) {
      if (!v || parse_percentiles(v, o)) return kiln_usage_error(CMD, "--percentile must be P[,P...] with 0 <= P <= 100");
    } else if (kiln_flag_value(argc, argv, &i, "--threads", &v)) {
      if (!v || kiln_parse_int(v, 1, 1024, &o->threads)) return kiln_usage_error(CMD, "--threads must be 1..1024");
    } else if (kiln_flag_value(argc, argv, &i, "--batch", &v)) {
      int b;
      if (!v || kiln_parse_int(v, 1, 1 << 20, &b)) return kiln_usage_error(CMD, "--batch must be an integer >= 1");
      o->batch = b;
    } else if (!strcmp(a, "--dumpOutput")) o->dump_output = 1;
    else if (!strcmp(a, "--dumpProfile")) o->dump_profile = 1;
    else if (!strcmp(a, "--separateProfileRun")) o->separate_profile = 1;
    else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) o->verbose = 1;
    else if (!strcmp(a, "--fp16")) o->precision = KILN_PRECISION_FP16;
    else if (!strcmp(a, "--int8")) o->precision = KILN_PRECISION_INT8;
    else if (!strcmp(a, "--noDataTransfers") || !strcmp(a, "--useSpinWait") || !strcmp(a, "--useCudaGraph")) {
      /* GPU-only switches: nothing to transfer or capture on the CPU; accepted so trtexec lines work */
    } else {
      fprintf(stderr, "kiln exec: unknown flag or argument '%s'\n", a);
      usage(stderr);
      return KILN_EXIT_USAGE;
    }
  }
  if (!!o->onnx + !!o->load_engine != 1) return kiln_usage_error(CMD, "give exactly one of --onnx=MODEL.onnx and --loadEngine=FILE");
  if (o->load_engine && (o->save_engine || o->batch))
    return kiln_usage_error(CMD, "--saveEngine and --batch need --onnx (an engine is already built)");
  return -1;
}

/* xorshift64*: a fixed seed so two runs (and kiln vs another runtime fed the same file) see the same data. */
static uint64_t rng_next(uint64_t *s) {
  *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1DULL;
}

static void fill_random(const kiln_binding_info *b, void *buf, uint64_t *seed) {
  int64_t n = (int64_t)(b->nbytes / (kiln_dtype_size(b->dtype) ? kiln_dtype_size(b->dtype) : 1));
  for (int64_t i = 0; i < n; i++) {
    uint64_t r = rng_next(seed);
    /* floats uniform in [0, 1) like image tensors; integers 0/1 so index-like inputs stay in range */
    if (kiln_dtype_is_float(b->dtype)) kiln_dtype_store_f64(b->dtype, buf, i, (double)(r >> 11) * 0x1.0p-53);
    else kiln_dtype_store_i64(b->dtype, buf, i, (int64_t)(r >> 63));
  }
}

/* --loadInputs entries are name:file; tensor names may contain ':' ("input:0"), so the split point is the
 * ':' whose prefix names an input binding. */
static kiln_status load_inputs(const char *spec, kiln_engine *e, void **bufs, unsigned char *loaded) {
  char *copy = strdup(spec);
  KILN_CHECK_ALLOC(copy);
  kiln_status st = NULL;
  for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && !st; tok = strtok_r(NULL, ",", &save)) {
    int b = -1;
    char *colon = NULL;
    for (char *c = strchr(tok, ':'); c && b < 0; c = strchr(c + 1, ':')) {
      *c = 0;
      int k = kiln_engine_find_binding(e, tok);
      kiln_binding_info bi;
      if (k >= 0 && !kiln_engine_binding(e, k, &bi) && bi.is_input) b = k, colon = c;
      *c = ':';
    }
    if (b < 0) {
      st = kiln_error(KILN_ERR_INVALID_ARGUMENT, "--loadInputs '%s': not name:file.bin with the name of an engine input", tok);
      break;
    }
    *colon = 0;
    kiln_binding_info bi;
    st = kiln_engine_binding(e, b, &bi);
    void *data = NULL;
    size_t len = 0;
    if (!st) st = kiln_file_read(colon + 1, (size_t)1 << 36, &data, &len);
    if (!st && len != bi.nbytes)
      st = kiln_error(KILN_ERR_INVALID_ARGUMENT, "input '%s': '%s' has %zu bytes, the engine needs %zu", tok, colon + 1, len,
                      bi.nbytes);
    if (!st) memcpy(bufs[b], data, len), loaded[b] = 1;
    free(data);
  }
  free(copy);
  return st;
}

static void print_rusage(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0) printf("[I] Peak RSS: %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
}

typedef struct run_state {
  kiln_context *ctx;
  kiln_exec_time *times; /* timed records (cap) */
  int cap;
  /* profile: layer times of the first prof_rows iterations, totals of all */
  int n_layers, prof_rows, prof_cap, prof_count;
  double *prof, *prof_total;
} run_state;

/* Run the timed phase: at least min_iters and at least min_ms. Returns the number of iterations recorded.
 * With profiling, each iteration's layer times are added to the totals (and kept while rows remain). */
static kiln_status timed_loop(run_state *rs, int min_iters, double min_ms, int profile, int *n_out, double *wall_ms) {
  int n = 0;
  double t0 = kiln_now_ms(), now = t0;
  while ((n < min_iters || now - t0 < min_ms) && n < rs->cap) {
    double s = kiln_now_ms();
    kiln_status st = kiln_context_enqueue(rs->ctx, NULL);
    now = kiln_now_ms();
    if (st) return st;
    rs->times[n].start_ms = s - t0;
    rs->times[n].end_ms = now - t0;
    n++;
    if (profile) {
      double *row = rs->prof + (size_t)(rs->prof_rows < rs->prof_cap ? rs->prof_rows : rs->prof_cap - 1) * (size_t)rs->n_layers;
      KILN_TRY(kiln_context_layer_times(rs->ctx, row, rs->n_layers));
      for (int l = 0; l < rs->n_layers; l++) rs->prof_total[l] += row[l];
      if (rs->prof_rows < rs->prof_cap) rs->prof_rows++;
      rs->prof_count++;
    }
  }
  *n_out = n;
  *wall_ms = now - t0;
  return NULL;
}

int kiln_cmd_exec(int argc, char **argv) {
  exec_opts o;
  int rc = parse_args(argc, argv, &o);
  if (rc >= 0) return rc;

  printf("&&&& RUNNING kiln exec");
  for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
  printf("\n");
  kiln_build_config cfg;
  kiln_build_config_init(&cfg);
  cfg.threads = o.threads;
  cfg.batch = o.batch;
  cfg.precision = o.precision;
  cfg.verbose = o.verbose;
  kiln_engine *e = NULL;
  kiln_context *ctx = NULL;
  double build_ms = 0, load_t0 = kiln_now_ms();
  /* engine_open_any builds only from a path ending in .onnx; anything else would be read as an engine */
  kiln_status st = o.onnx && !kiln_path_is_onnx(o.onnx)
                       ? kiln_error(KILN_ERR_INVALID_ARGUMENT, "--onnx '%s' does not end in .onnx", o.onnx)
                       : kiln_engine_open_any(o.onnx ? o.onnx : o.load_engine, &cfg, o.save_engine, &e, &build_ms);
  if (st) {
    kiln_engine_destroy(e);
    return kiln_report(CMD, st);
  }
  if (o.onnx) {
    printf("[I] Engine built in %.3f sec.\n", build_ms / 1000.0);
    if (o.save_engine) printf("[I] Engine saved to %s\n", o.save_engine);
  } else printf("[I] Engine loaded in %.3f sec.\n", (kiln_now_ms() - load_t0) / 1000.0);
  size_t arena = 0, naive = 0, weights = 0, workspace = 0;
  kiln_engine_memory(e, &arena, &naive, &weights, &workspace);
  printf("[I] Engine: %d layers, weights %.2f MiB, activations %.2f MiB per context (%.2f MiB without reuse)\n",
         kiln_engine_num_layers(e), weights / 1048576.0, arena / 1048576.0, naive / 1048576.0);

  kiln_context_options copt = {o.threads};
  st = kiln_context_create(e, &copt, &ctx);
  int nb = kiln_engine_num_bindings(e), n_layers = kiln_engine_num_layers(e);
  void **bufs = calloc((size_t)nb + 1, sizeof(void *));
  unsigned char *loaded = calloc((size_t)nb + 1, 1);
  run_state rs = {0};
  if (!st && (!bufs || !loaded)) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  for (int b = 0; !st && b < nb; b++) {
    kiln_binding_info bi;
    st = kiln_engine_binding(e, b, &bi);
    if (st) break;
    /* 64-byte aligned so SIMD kernels reading bindings directly get aligned rows */
    size_t sz = (bi.nbytes + 63) / 64 * 64;
    bufs[b] = aligned_alloc(64, sz ? sz : 64);
    if (!bufs[b]) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory for binding '%s'", bi.name);
    else memset(bufs[b], 0, sz ? sz : 64);
  }
  if (!st && o.load_inputs) st = load_inputs(o.load_inputs, e, bufs, loaded);
  uint64_t seed = 0x6b696c6e2d657865ULL; /* "kiln-exe" */
  for (int b = 0; !st && b < nb; b++) {
    kiln_binding_info bi;
    kiln_engine_binding(e, b, &bi);
    if (bi.is_input && !loaded[b]) {
      fill_random(&bi, bufs[b], &seed);
      if (o.verbose) printf("[V] input '%s': random data (fixed seed)\n", bi.name);
    }
    st = kiln_context_bind(ctx, bi.name, bufs[b], bi.nbytes);
    char dims[256] = "";
    size_t off = 0;
    for (int d = 0; d < bi.rank && off < sizeof dims; d++)
      off += (size_t)snprintf(dims + off, sizeof dims - off, "%s%lld", d ? "x" : "", (long long)bi.dims[d]);
    printf("[I] %s '%s': %s %s%s\n", bi.is_input ? "Input" : "Output", bi.name, kiln_dtype_name(bi.dtype), dims,
           bi.is_input ? (loaded[b] ? " (loaded)" : " (random)") : "");
  }

  /* Warm-up: also estimates an iteration's time so the record buffer can be sized before timing. */
  double warm_t0 = kiln_now_ms(), warm_ms = 0;
  int warm_n = 0;
  while (!st && kiln_now_ms() - warm_t0 < o.warmup_ms) {
    st = kiln_context_enqueue(ctx, NULL);
    warm_n++;
  }
  warm_ms = kiln_now_ms() - warm_t0;
  if (!st) {
    if (o.verbose) printf("[V] Warm-up: %d runs in %.1f ms\n", warm_n, warm_ms);
    double est = warm_n ? warm_ms / warm_n : 0;
    /* 4x margin: the first warm-up runs are the slowest (cold caches, page faults), so est is high */
    double want = o.iterations + (est > 0 ? 4.0 * o.duration_s * 1000.0 / est : 0) + 64;
    /* Without a warm-up there is no estimate: fall back to a generous fixed size (16 B per record). */
    if (!warm_n) want = o.iterations + (o.duration_s > 0 ? 1 << 20 : 0) + 64;
    rs.cap = want > INT32_MAX / 2 ? INT32_MAX / 2 : (int)want;
    rs.ctx = ctx;
    rs.n_layers = n_layers;
    rs.times = malloc(sizeof(kiln_exec_time) * (size_t)rs.cap);
    /* Per-iteration layer rows for medians: bounded (64 MiB); totals still cover every iteration. */
    int want_prof = o.dump_profile || o.export_profile;
    rs.prof_cap = want_prof && n_layers ? (int)fmin((double)rs.cap, 8.0 * 1048576.0 / n_layers) : 1;
    if (rs.prof_cap < 1) rs.prof_cap = 1;
    rs.prof = calloc((size_t)rs.prof_cap * (size_t)(n_layers ? n_layers : 1), sizeof(double));
    rs.prof_total = calloc((size_t)(n_layers ? n_layers : 1), sizeof(double));
    if (!rs.times || !rs.prof || !rs.prof_total) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory for timing records");
  }
  int want_prof = o.dump_profile || o.export_profile;
  int n = 0;
  double wall_ms = 0;
  if (!st) {
    kiln_context_set_profiling(ctx, want_prof && !o.separate_profile);
    st = timed_loop(&rs, o.iterations, o.duration_s * 1000.0, want_prof && !o.separate_profile, &n, &wall_ms);
    kiln_context_set_profiling(ctx, 0);
    if (!st && n == rs.cap && o.verbose) printf("[V] Stopped at %d iterations: the record buffer is full\n", n);
  }
  if (!st && want_prof && o.separate_profile) {
    /* Profiling reads the clock per layer; a separate run keeps that cost out of the timed numbers above.
     * Its records reuse the timing buffer; the timed records are saved and put back afterwards. */
    kiln_exec_time *keep = malloc(sizeof(kiln_exec_time) * (size_t)(n ? n : 1));
    if (!keep) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
    if (!st) {
      memcpy(keep, rs.times, sizeof(kiln_exec_time) * (size_t)n);
      int pn;
      double pw;
      kiln_context_set_profiling(ctx, 1);
      st = timed_loop(&rs, o.iterations, o.duration_s * 1000.0, 1, &pn, &pw);
      kiln_context_set_profiling(ctx, 0);
      memcpy(rs.times, keep, sizeof(kiln_exec_time) * (size_t)n);
    }
    free(keep);
  }

  if (!st) {
    double *lat = malloc(sizeof(double) * (size_t)(n ? n : 1)), *scratch = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!lat || !scratch) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
    else {
      for (int i = 0; i < n; i++) lat[i] = rs.times[i].end_ms - rs.times[i].start_ms;
      if (o.verbose) {
        for (int i = 0; i < n; i += o.avg_runs) {
          int m = n - i < o.avg_runs ? n - i : o.avg_runs;
          double s = 0;
          for (int k = 0; k < m; k++) s += lat[i + k];
          printf("[V] Average on %d runs - GPU latency: %g ms - Host latency: %g ms (enqueue %g ms)\n", m, s / m, s / m, s / m);
        }
      }
      kiln_exec_stats s, zero;
      kiln_exec_stats_compute(lat, n, o.percentiles, o.n_percentiles, scratch, &s);
      memset(&zero, 0, sizeof zero);
      printf("[I] Timing: %d iterations in %.3f s (warm-up %d runs, %.0f ms)\n", n, wall_ms / 1000.0, warm_n, warm_ms);
      printf("[I] \n[I] === Performance summary ===\n");
      printf("[I] Throughput: %g qps\n", wall_ms > 0 ? n / (wall_ms / 1000.0) : 0.0);
      kiln_exec_print_stats(stdout, "Latency", &s, o.percentiles, o.n_percentiles);
      kiln_exec_print_stats(stdout, "Enqueue Time", &s, o.percentiles, o.n_percentiles);
      kiln_exec_print_stats(stdout, "H2D Latency", &zero, o.percentiles, o.n_percentiles);
      kiln_exec_print_stats(stdout, "GPU Compute Time", &s, o.percentiles, o.n_percentiles);
      kiln_exec_print_stats(stdout, "D2H Latency", &zero, o.percentiles, o.n_percentiles);
      printf("[I] Total Host Walltime: %g s\n", wall_ms / 1000.0);
      printf("[I] Total GPU Compute Time: %g s\n", s.sum / 1000.0);
      printf("[I] Explanations of the performance metrics are printed in the verbose logs.\n");
      if (o.verbose)
        printf("[V] CPU engine: 'GPU Compute Time' is the time of a (synchronous) enqueue on the CPU; nothing is "
               "copied, so H2D and D2H are 0 and Latency = Enqueue Time = compute.\n");
      print_rusage();
    }
    free(lat);
    free(scratch);
  }
  kiln_exec_profile prof = {n_layers, rs.prof_rows, rs.prof_count, rs.prof, rs.prof_total};
  if (!st && want_prof && o.dump_profile) kiln_exec_dump_profile(stdout, e, &prof);
  if (!st && o.export_profile) st = kiln_exec_export_profile(o.export_profile, e, &prof);
  if (!st && o.export_times) st = kiln_exec_export_times(o.export_times, rs.times, n);
  if (!st && o.dump_output) kiln_exec_dump_outputs(stdout, e, bufs);
  if (!st && o.export_output) st = kiln_exec_export_outputs(o.export_output, e, bufs);

  for (int b = 0; bufs && b < nb; b++) free(bufs[b]);
  free(bufs);
  free(loaded);
  free(rs.times);
  free(rs.prof);
  free(rs.prof_total);
  kiln_context_destroy(ctx);
  kiln_engine_destroy(e);
  if (st) {
    printf("&&&& FAILED kiln exec\n");
    return kiln_report(CMD, st);
  }
  printf("&&&& PASSED kiln exec\n");
  return 0;
}
