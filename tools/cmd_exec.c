/*
 * `kiln exec`: trtexec-compatible benchmarking of an engine (or a model built on the fly), on the CPU or
 * on an NVIDIA GPU.
 *
 *   kiln exec --onnx=yolov8n.onnx [--saveEngine=y.engine] [--batch=N | --shapes=images:Nx3x640x640]
 *             [--device=cpu|cuda] [--gpu=N] [--fp16 | --int8]          |   --loadEngine=y.engine
 *             [--iterations=N] [--warmUp=MS] [--duration=S] [--avgRuns=N] [--percentile=P[,P..]]
 *             [--loadInputs=name:file.bin[,...]] [--dumpOutput] [--exportOutput=F.json]
 *             [--exportTimes=F.json] [--exportProfile=F.json] [--dumpProfile] [--separateProfileRun]
 *             [--useCudaGraph] [--noDataTransfers] [--useSpinWait] [--streams=N] [--threads=N] [--verbose]
 *             [--timingCacheFile=F] [--noTacticTiming]
 *
 * Flags mean what they mean to trtexec so scripts carry over: warm up for --warmUp ms, then time at
 * least --iterations runs and at least --duration seconds. The summary lines have trtexec's names.
 *
 * CPU engines: an enqueue runs the whole network synchronously, so enqueue = compute = latency and
 * H2D/D2H are 0; the GPU-only switches are accepted and do nothing.
 * CUDA engines: every stream (--streams) has its own context, cudaStream_t, device buffers and pinned
 * host buffers. An iteration on a stream is: event, H2D copies of the inputs, event, kiln_context_enqueue,
 * event, D2H copies of the outputs, event (no copies with --noDataTransfers). A stream waits only for its
 * own previous iteration, so with N streams up to N iterations are in flight. Latency = first to last
 * event; GPU compute = the two events around the enqueue; enqueue time = host time of the enqueue call.
 *
 * Everything the timed loop touches (buffers, events, records, per-layer rows) is allocated before it starts.
 */
#include "commands.h"
#include "engine_source.h"
#include "exec_report.h"
#include "tool_util.h"

#include "core/dtype.h"
#include "core/file.h"
#include "ir/graph.h"

#ifdef KILN_HAVE_CUDA
#include "backend/cuda/cuda_check.h"
#include <cuda_runtime.h>
#endif

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define CMD "exec"
#define MAX_SHAPES 16
#define MAX_STREAMS 64

/* One --shapes entry: name:NxCxHxW. */
typedef struct shape_spec {
  char name[256];
  int rank;
  int64_t dims[KILN_MAX_RANK];
} shape_spec;

typedef struct exec_opts {
  const char *onnx, *load_engine, *save_engine, *load_inputs, *export_output, *export_times, *export_profile;
  const char *timing_cache; /* --timingCacheFile */
  int no_tactic_timing;
  int iterations, warmup_ms, avg_runs, threads, verbose, dump_output, dump_profile, separate_profile;
  double duration_s;
  int64_t batch;
  kiln_precision precision;
  double percentiles[KILN_EXEC_MAX_PERCENTILES];
  int n_percentiles;
  /* GPU */
  kiln_device_kind device; /* --device: where to build (--onnx); CUDA engines run on the GPU regardless */
  int device_given, gpu, gpu_given, streams, use_cuda_graph, no_transfers, spin_wait;
  shape_spec shapes[MAX_SHAPES];
  int n_shapes;
} exec_opts;

static void usage(FILE *f) {
  fprintf(f,
          "usage: kiln exec (--onnx=MODEL.onnx | --loadEngine=FILE) [options]\n"
          "  --onnx=FILE            build an engine from this model first\n"
          "  --saveEngine=FILE      also write the built engine here\n"
          "  --loadEngine=FILE      run this engine file (CPU or CUDA, as it was built)\n"
          "  --batch=N              re-batch the model to N when building\n"
          "  --shapes=name:NxCxHxW[,name2:...]   input shapes: with --onnx, N sets the build batch; with\n"
          "                         --loadEngine they must equal the engine's bindings\n"
          "  --device=cpu|cuda      build for this device (default cpu; a CUDA engine always runs on the GPU)\n"
          "  --gpu=N                CUDA device index (default 0; trtexec's --device=N)\n"
          "  --fp16, --int8         build precision (where the target supports it)\n"
          "  --timingCacheFile=FILE with --onnx on a GPU: read conv tactic timings from FILE (if it exists) and\n"
          "                         add new ones to it, so the next build does not time those layers again\n"
          "  --noTacticTiming       with --onnx on a GPU: keep the heuristic's conv kernels (no timing)\n"
          "  --iterations=N         run at least N timed iterations (default 10; all streams together)\n"
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
          "  --verbose              more output\n"
          "  GPU only (accepted with no effect on CPU engines):\n"
          "  --useCudaGraph         capture the enqueue into a CUDA graph and replay it\n"
          "  --noDataTransfers      no H2D/D2H copies in the timed loop (GPU compute only)\n"
          "  --useSpinWait          wait for an iteration by spinning on cudaEventQuery (not blocking sync)\n"
          "  --streams=N            N contexts on N CUDA streams running concurrently (default 1)\n");
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

/* --shapes=name:NxCxHxW[,name2:...]. Tensor names may contain ':' ("input:0"), dims never do, so the
 * name ends at the last ':'. Returns 0 on success. */
static int parse_shapes(const char *s, exec_opts *o) {
  o->n_shapes = 0;
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", s) >= (int)sizeof buf) return 1;
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (o->n_shapes == MAX_SHAPES) return 1;
    shape_spec *sp = &o->shapes[o->n_shapes++];
    char *colon = strrchr(tok, ':');
    if (!colon || colon == tok || !colon[1] || (size_t)(colon - tok) >= sizeof sp->name) return 1;
    memcpy(sp->name, tok, (size_t)(colon - tok));
    sp->name[colon - tok] = 0;
    sp->rank = 0;
    for (const char *d = colon + 1;;) {
      char *end;
      errno = 0;
      long long v = strtoll(d, &end, 10);
      if (errno || end == d || v < 1 || v > INT32_MAX || sp->rank == KILN_MAX_RANK || (*d < '0' || *d > '9'))
        return 1;
      sp->dims[sp->rank++] = v;
      if (!*end) break;
      if (*end != 'x' && *end != 'X') return 1;
      d = end + 1;
    }
  }
  if (o->n_shapes == 0) return 1;
  /* one batch for the whole run: every input's leading dim must agree */
  for (int k = 1; k < o->n_shapes; k++)
    if (o->shapes[k].dims[0] != o->shapes[0].dims[0]) return 1;
  return 0;
}

static void format_shape(const int64_t *dims, int rank, char *buf, size_t len) {
  size_t off = 0;
  buf[0] = 0;
  for (int d = 0; d < rank && off < len; d++)
    off += (size_t)snprintf(buf + off, len - off, "%s%lld", d ? "x" : "", (long long)dims[d]);
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
  o->streams = 1;
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
    STR_FLAG("--timingCacheFile", timing_cache)
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
    } else if (kiln_flag_value(argc, argv, &i, "--shapes", &v)) {
      if (!v || parse_shapes(v, o))
        return kiln_usage_error(CMD, "--shapes must be name:NxCxHxW[,name2:NxCxHxW...] with dims >= 1 (at most 8) and "
                                     "one batch N for all inputs");
    } else if (kiln_flag_value(argc, argv, &i, "--device", &v)) {
      if (!v || kiln_parse_device(v, &o->device)) {
        if (v && *v >= '0' && *v <= '9')
          return kiln_usage_error(CMD, "--device takes cpu or cuda; the GPU index (trtexec's --device=N) is --gpu=N");
        return kiln_usage_error(CMD, "--device must be cpu or cuda");
      }
      o->device_given = 1;
    } else if (kiln_flag_value(argc, argv, &i, "--gpu", &v)) {
      if (!v || kiln_parse_int(v, 0, 1023, &o->gpu)) return kiln_usage_error(CMD, "--gpu must be a CUDA device index >= 0");
      o->gpu_given = 1;
    } else if (kiln_flag_value(argc, argv, &i, "--streams", &v)) {
      if (!v || kiln_parse_int(v, 1, MAX_STREAMS, &o->streams)) return kiln_usage_error(CMD, "--streams must be 1..64");
    } else if (!strcmp(a, "--dumpOutput")) o->dump_output = 1;
    else if (!strcmp(a, "--dumpProfile")) o->dump_profile = 1;
    else if (!strcmp(a, "--separateProfileRun")) o->separate_profile = 1;
    else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) o->verbose = 1;
    else if (!strcmp(a, "--fp16")) o->precision = KILN_PRECISION_FP16;
    else if (!strcmp(a, "--int8")) o->precision = KILN_PRECISION_INT8;
    else if (!strcmp(a, "--useCudaGraph")) o->use_cuda_graph = 1;
    else if (!strcmp(a, "--noDataTransfers")) o->no_transfers = 1;
    else if (!strcmp(a, "--useSpinWait")) o->spin_wait = 1;
    else if (!strcmp(a, "--noTacticTiming")) o->no_tactic_timing = 1;
    else {
      fprintf(stderr, "kiln exec: unknown flag or argument '%s'\n", a);
      usage(stderr);
      return KILN_EXIT_USAGE;
    }
  }
  if (!!o->onnx + !!o->load_engine != 1) return kiln_usage_error(CMD, "give exactly one of --onnx=MODEL.onnx and --loadEngine=FILE");
  if (o->load_engine && (o->save_engine || o->batch || o->timing_cache || o->no_tactic_timing))
    return kiln_usage_error(CMD, "--saveEngine, --batch, --timingCacheFile and --noTacticTiming need --onnx (an engine is "
                                 "already built)");
  if (o->batch && o->n_shapes && o->shapes[0].dims[0] != o->batch)
    return kiln_usage_error(CMD, "--batch and the batch N of --shapes disagree");
  return -1;
}

/* --shapes against the model's inputs, before anything is built: the names must be inputs, the rank and
 * every non-batch dim must match. Sets *batch to N when it differs from the model's. Returns -1 or the
 * exit status (a usage error naming the input). */
static int check_shapes_model(const exec_opts *o, const kiln_network *net, int64_t *batch) {
  for (int k = 0; k < o->n_shapes; k++) {
    const shape_spec *sp = &o->shapes[k];
    const kiln_value *in = NULL;
    char names[512] = "";
    size_t off = 0;
    for (int32_t i = 0; i < net->n_inputs; i++) {
      const kiln_value *v = &net->values[net->inputs[i]];
      if (v->flags & KILN_VALUE_INITIALIZER) continue;
      if (!strcmp(v->name, sp->name)) in = v;
      if (off < sizeof names) off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", off ? ", " : "", v->name);
    }
    char msg[1024], want[128], have[128];
    format_shape(sp->dims, sp->rank, want, sizeof want);
    if (!in) {
      snprintf(msg, sizeof msg, "--shapes: the model has no input '%s' (inputs: %s)", sp->name, names);
      return kiln_usage_error(CMD, msg);
    }
    int bad = in->shape.rank >= 0 && in->shape.rank != sp->rank;
    for (int d = 1; !bad && d < sp->rank && d < in->shape.rank; d++)
      bad = in->shape.dims[d] >= 0 && in->shape.dims[d] != sp->dims[d];
    if (bad) {
      int64_t dims[KILN_MAX_RANK];
      for (int d = 0; d < in->shape.rank && d < KILN_MAX_RANK; d++) dims[d] = in->shape.dims[d];
      format_shape(dims, in->shape.rank, have, sizeof have);
      snprintf(msg, sizeof msg,
               "--shapes: input '%s' is %s in the model (-1 = dynamic); %s differs in rank or in a non-batch dim "
               "(only the batch N can change)", sp->name, have, want);
      return kiln_usage_error(CMD, msg);
    }
    if (in->shape.rank >= 1 && in->shape.dims[0] != sp->dims[0]) *batch = sp->dims[0];
  }
  return -1;
}

/* --shapes against an engine's bindings: each must name an input binding with exactly these dims. */
static kiln_status check_shapes_engine(const exec_opts *o, const kiln_engine *e) {
  for (int k = 0; k < o->n_shapes; k++) {
    const shape_spec *sp = &o->shapes[k];
    int b = kiln_engine_find_binding(e, sp->name);
    kiln_binding_info bi;
    if (b < 0 || kiln_engine_binding(e, b, &bi) || !bi.is_input)
      return kiln_error(KILN_ERR_INVALID_ARGUMENT, "--shapes: the engine has no input binding '%s'", sp->name);
    int same = bi.rank == sp->rank;
    for (int d = 0; same && d < sp->rank; d++) same = bi.dims[d] == sp->dims[d];
    if (!same) {
      char want[128], have[128];
      format_shape(sp->dims, sp->rank, want, sizeof want);
      format_shape(bi.dims, bi.rank, have, sizeof have);
      return kiln_error(KILN_ERR_INVALID_ARGUMENT,
                        "--shapes: binding '%s' is %s in this engine, not %s (engines have static shapes: rebuild "
                        "with --onnx and --shapes or --batch)", sp->name, have, want);
    }
  }
  return NULL;
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

static void print_rusage(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0) printf("[I] Peak RSS: %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
}

static kiln_status gpu_init(int gpu);

/* Build from --onnx or load --loadEngine. Returns -1 and the engine, or the exit status. Flag errors come
 * first (--shapes is checked against the model before anything else), then the GPU is selected when the
 * build targets it (*gpu_ready), so a missing GPU is reported before a build is tried. */
static int open_engine(const exec_opts *o, kiln_engine **out, int *gpu_ready) {
  *out = NULL;
  *gpu_ready = 0;
  double t0 = kiln_now_ms();
  kiln_status st = NULL;
  if (o->load_engine && o->gpu_given) {
    /* select it before loading, in case loading a CUDA engine puts its weights on the current device; a
     * failure matters only if the engine turns out to be a CUDA engine (then it is reported again) */
    if ((st = gpu_init(o->gpu))) kiln_status_destroy(st);
    else *gpu_ready = 1;
    st = NULL;
  }
  if (o->load_engine) {
    st = kiln_engine_load_file(o->load_engine, out);
    if (st) return kiln_report(CMD, st);
    printf("[I] Engine loaded in %.3f sec.\n", (kiln_now_ms() - t0) / 1000.0);
    return -1;
  }
  /* building reads any path, but an engine file given as --onnx would fail with a confusing parse error */
  if (!kiln_path_is_onnx(o->onnx))
    return kiln_report(CMD, kiln_error(KILN_ERR_INVALID_ARGUMENT, "--onnx '%s' does not end in .onnx", o->onnx));
  kiln_build_config cfg;
  kiln_build_config_init(&cfg);
  cfg.threads = o->threads;
  cfg.batch = o->batch;
  cfg.precision = o->precision;
  cfg.verbose = o->verbose;
  cfg.device = o->device;
  cfg.cuda_device = o->gpu;
  cfg.cuda_arch = 0; /* the GPU's own compute capability */
  cfg.timing_cache_path = o->timing_cache;
  cfg.no_tactic_timing = o->no_tactic_timing;
  kiln_network *net = NULL;
  st = kiln_network_load_onnx(o->onnx, &net);
  if (st) return kiln_report(CMD, st);
  int rc = check_shapes_model(o, net, &cfg.batch);
  if (rc >= 0) {
    kiln_network_destroy(net);
    return rc;
  }
  if (o->device == KILN_DEVICE_CUDA) {
    if ((st = gpu_init(o->gpu))) {
      kiln_network_destroy(net);
      return kiln_report(CMD, st);
    }
    *gpu_ready = 1;
  }
  void *img = NULL;
  size_t size = 0;
  st = kiln_build(net, &cfg, &img, &size);
  kiln_network_destroy(net);
  if (!st) printf("[I] Engine built in %.3f sec.\n", (kiln_now_ms() - t0) / 1000.0);
  if (!st && o->save_engine) {
    st = kiln_file_write_atomic(o->save_engine, img, size);
    if (!st) printf("[I] Engine saved to %s\n", o->save_engine);
  }
  if (!st) st = kiln_engine_load_memory(img, size, out);
  kiln_free(img);
  if (st) {
    kiln_engine_destroy(*out);
    *out = NULL;
    return kiln_report(CMD, st);
  }
  return -1;
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

/* Fill the host input buffers (--loadInputs, else random with a fixed seed) and print the bindings. */
static kiln_status fill_inputs(const exec_opts *o, kiln_engine *e, const kiln_binding_info *bind, int nb, void **host) {
  unsigned char *loaded = calloc((size_t)nb + 1, 1);
  KILN_CHECK_ALLOC(loaded);
  kiln_status st = o->load_inputs ? load_inputs(o->load_inputs, e, host, loaded) : NULL;
  uint64_t seed = 0x6b696c6e2d657865ULL; /* "kiln-exe" */
  for (int b = 0; !st && b < nb; b++) {
    const kiln_binding_info *bi = &bind[b];
    if (bi->is_input && !loaded[b]) {
      fill_random(bi, host[b], &seed);
      if (o->verbose) printf("[V] input '%s': random data (fixed seed)\n", bi->name);
    }
    char dims[256];
    format_shape(bi->dims, bi->rank, dims, sizeof dims);
    printf("[I] %s '%s': %s %s%s\n", bi->is_input ? "Input" : "Output", bi->name, kiln_dtype_name(bi->dtype), dims,
           bi->is_input ? (loaded[b] ? " (loaded)" : " (random)") : "");
  }
  free(loaded);
  return st;
}

/* Timing records and per-layer profile rows, sized from the warm-up before the timed phase starts. */
typedef struct run_state {
  kiln_exec_time *times; /* timed records (cap) */
  int cap;
  /* profile: layer times of the first prof_rows iterations, totals of all */
  int n_layers, prof_rows, prof_cap, prof_count;
  double *prof, *prof_total;
} run_state;

/* warm_ms / warm_n estimates one iteration's (host) time, which sizes the record buffer. */
static kiln_status run_state_alloc(run_state *rs, const exec_opts *o, int n_layers, int warm_n, double warm_ms, int extra) {
  double est = warm_n ? warm_ms / warm_n : 0;
  /* 4x margin: the first warm-up runs are the slowest (cold caches, page faults, graph capture) */
  double want = o->iterations + (est > 0 ? 4.0 * o->duration_s * 1000.0 / est : 0) + 64 + extra;
  /* Without a warm-up there is no estimate: fall back to a generous fixed size (virtual until touched). */
  if (!warm_n) want = o->iterations + (o->duration_s > 0 ? 1 << 20 : 0) + 64 + extra;
  rs->cap = want > INT32_MAX / 2 ? INT32_MAX / 2 : (int)want;
  rs->n_layers = n_layers;
  rs->times = malloc(sizeof(kiln_exec_time) * (size_t)rs->cap);
  /* Per-iteration layer rows for medians: bounded (64 MiB); totals still cover every iteration. */
  int want_prof = o->dump_profile || o->export_profile;
  rs->prof_cap = want_prof && n_layers ? (int)fmin((double)rs->cap, 8.0 * 1048576.0 / n_layers) : 1;
  if (rs->prof_cap < 1) rs->prof_cap = 1;
  rs->prof = calloc((size_t)rs->prof_cap * (size_t)(n_layers ? n_layers : 1), sizeof(double));
  rs->prof_total = calloc((size_t)(n_layers ? n_layers : 1), sizeof(double));
  if (!rs->times || !rs->prof || !rs->prof_total) return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory for timing records");
  return NULL;
}

static void run_state_free(run_state *rs) {
  free(rs->times);
  free(rs->prof);
  free(rs->prof_total);
}

/* Add the layer times of ctx's last profiled enqueue to the profile (kept as a row while rows remain). */
static kiln_status prof_add(run_state *rs, kiln_context *ctx) {
  double *row = rs->prof + (size_t)(rs->prof_rows < rs->prof_cap ? rs->prof_rows : rs->prof_cap - 1) * (size_t)rs->n_layers;
  KILN_TRY(kiln_context_layer_times(ctx, row, rs->n_layers));
  for (int l = 0; l < rs->n_layers; l++) rs->prof_total[l] += row[l];
  if (rs->prof_rows < rs->prof_cap) rs->prof_rows++;
  rs->prof_count++;
  return NULL;
}

/* CPU: run at least min_iters and at least min_ms. record: keep timing records (else only count runs).
 * With profiling, each iteration's layer times are added to the profile. */
static kiln_status cpu_loop(kiln_context *ctx, run_state *rs, int min_iters, double min_ms, int record, int profile,
                            int *n_out, double *wall_ms) {
  int n = 0;
  double t0 = kiln_now_ms(), now = t0;
  *n_out = 0;
  *wall_ms = 0;
  while ((n < min_iters || now - t0 < min_ms) && (!record || n < rs->cap)) {
    double s = kiln_now_ms();
    kiln_status st = kiln_context_enqueue(ctx, NULL);
    now = kiln_now_ms();
    if (st) return st;
    if (record) {
      /* synchronous: the enqueue is the compute; nothing is copied (empty H2D/D2H at its edges) */
      double a = s - t0, b = now - t0;
      rs->times[n] = (kiln_exec_time){a, b, a, a, a, b, b, b};
    }
    n++;
    if (profile) KILN_TRY(prof_add(rs, ctx));
  }
  *n_out = n;
  *wall_ms = now - t0;
  return NULL;
}

/* Result of a timed phase, reported the same way for both devices. */
typedef struct exec_result {
  int n, warm_n;
  double wall_ms, warm_ms;
} exec_result;

static kiln_status run_cpu(const exec_opts *o, kiln_engine *e, const kiln_binding_info *bind, int nb, run_state *rs,
                           exec_result *r, void ***host_out) {
  kiln_context *ctx = NULL;
  kiln_context_options copt = {o->threads, 0};
  void **bufs = calloc((size_t)nb + 1, sizeof(void *));
  *host_out = bufs;
  KILN_CHECK_ALLOC(bufs);
  if (o->streams > 1 || o->use_cuda_graph || o->no_transfers || o->spin_wait)
    printf("[I] CPU engine: --streams/--useCudaGraph/--noDataTransfers/--useSpinWait have no effect\n");
  kiln_status st = kiln_context_create(e, &copt, &ctx);
  for (int b = 0; !st && b < nb; b++) {
    /* 64-byte aligned so SIMD kernels reading bindings directly get aligned rows */
    size_t sz = (bind[b].nbytes + 63) / 64 * 64;
    bufs[b] = aligned_alloc(64, sz ? sz : 64);
    if (!bufs[b]) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory for binding '%s'", bind[b].name);
    else memset(bufs[b], 0, sz ? sz : 64);
  }
  if (!st) st = fill_inputs(o, e, bind, nb, bufs);
  for (int b = 0; !st && b < nb; b++) st = kiln_context_bind(ctx, bind[b].name, bufs[b], bind[b].nbytes);

  /* Warm-up: also estimates an iteration's time so the record buffer can be sized before timing. */
  if (!st) st = cpu_loop(ctx, rs, 0, o->warmup_ms, 0, 0, &r->warm_n, &r->warm_ms);
  if (!st) st = run_state_alloc(rs, o, kiln_engine_num_layers(e), r->warm_n, r->warm_ms, 0);
  int want_prof = o->dump_profile || o->export_profile;
  if (!st) {
    int prof_timed = want_prof && !o->separate_profile;
    if (prof_timed) kiln_context_set_profiling(ctx, 1);
    st = cpu_loop(ctx, rs, o->iterations, o->duration_s * 1000.0, 1, prof_timed, &r->n, &r->wall_ms);
    if (prof_timed) kiln_context_set_profiling(ctx, 0);
    if (!st && r->n == rs->cap && o->verbose) printf("[V] Stopped at %d iterations: the record buffer is full\n", r->n);
  }
  if (!st && want_prof && o->separate_profile) {
    /* Profiling reads the clock per layer; a separate run keeps that cost out of the timed numbers above. */
    int pn;
    double pw;
    kiln_context_set_profiling(ctx, 1);
    st = cpu_loop(ctx, rs, o->iterations, o->duration_s * 1000.0, 0, 1, &pn, &pw);
    kiln_context_set_profiling(ctx, 0);
  }
  kiln_context_destroy(ctx);
  return st;
}

/* ---- GPU ------------------------------------------------------------------------------------------ */

/* Select the GPU and say which it is. Without a GPU (or a CUDA build) this is where a GPU run stops, with
 * a message that names the problem. */
static kiln_status gpu_init(int gpu) {
#ifdef KILN_HAVE_CUDA
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0)
    return kiln_error(KILN_ERR_DEVICE, "no usable CUDA GPU: cudaGetDeviceCount: %s (%s); a CUDA engine or --device=cuda needs an NVIDIA GPU and its driver",
                      err != cudaSuccess ? cudaGetErrorString(err) : "0 devices", err != cudaSuccess ? cudaGetErrorName(err) : "-");
  if (gpu >= count) return kiln_error(KILN_ERR_DEVICE, "--gpu=%d: there are only %d CUDA device(s)", gpu, count);
  KILN_CUDA_TRY(cudaSetDevice(gpu));
  struct cudaDeviceProp p;
  KILN_CUDA_TRY(cudaGetDeviceProperties(&p, gpu));
  printf("[I] GPU %d: %s, compute capability %d.%d, %d SMs, %.0f MiB\n", gpu, p.name, p.major, p.minor,
         p.multiProcessorCount, (double)p.totalGlobalMem / 1048576.0);
  return NULL;
#else
  (void)gpu;
  return kiln_error(KILN_ERR_DEVICE, "this kiln was built without the CUDA backend (no nvcc at configure time): CUDA "
                                     "engines and --device=cuda are not available");
#endif
}

#ifdef KILN_HAVE_CUDA
enum { EV_H2D_START, EV_COMPUTE_START, EV_COMPUTE_END, EV_D2H_END, N_EV };

/* One --streams lane: its own context, stream, buffers and events. */
typedef struct gpu_lane {
  kiln_context *ctx;
  cudaStream_t stream;
  void **dev;  /* device buffer per binding */
  void **host; /* pinned host buffer per binding: inputs are lane 0's (read-only, shared), outputs own */
  cudaEvent_t ev[N_EV];
  int busy;    /* an iteration is in flight */
  double enq_start, enq_end;
} gpu_lane;

typedef struct gpu_bench {
  const exec_opts *o;
  const kiln_binding_info *bind;
  int nb, n_lanes;
  gpu_lane *lanes;
  cudaEvent_t base; /* recorded when a phase starts: time zero of its records */
  double t0;        /* the host clock at that moment */
} gpu_bench;

static kiln_status gpu_setup(gpu_bench *g, kiln_engine *e) {
  const exec_opts *o = g->o;
  kiln_context_options copt = {o->threads, o->use_cuda_graph};
  g->lanes = calloc((size_t)g->n_lanes, sizeof(gpu_lane));
  KILN_CHECK_ALLOC(g->lanes);
  KILN_CUDA_TRY(cudaEventCreate(&g->base));
  for (int s = 0; s < g->n_lanes; s++) {
    gpu_lane *L = &g->lanes[s];
    L->dev = calloc((size_t)g->nb + 1, sizeof(void *));
    L->host = calloc((size_t)g->nb + 1, sizeof(void *));
    if (!L->dev || !L->host) return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
    KILN_TRY(kiln_context_create(e, &copt, &L->ctx));
    KILN_CUDA_TRY(cudaStreamCreateWithFlags(&L->stream, cudaStreamNonBlocking));
    for (int k = 0; k < N_EV; k++) {
      /* the event an iteration is waited on blocks the thread (yields the CPU) unless --useSpinWait */
      unsigned flags = k == EV_D2H_END && !o->spin_wait ? cudaEventBlockingSync : cudaEventDefault;
      KILN_CUDA_TRY(cudaEventCreateWithFlags(&L->ev[k], flags));
    }
    for (int b = 0; b < g->nb; b++) {
      size_t sz = g->bind[b].nbytes ? g->bind[b].nbytes : 1;
      KILN_CUDA_TRY(cudaMalloc(&L->dev[b], sz));
      KILN_CUDA_TRY(cudaMemset(L->dev[b], 0, sz));
      if (s > 0 && g->bind[b].is_input) L->host[b] = g->lanes[0].host[b];
      else {
        KILN_CUDA_TRY(cudaMallocHost(&L->host[b], sz));
        memset(L->host[b], 0, sz);
      }
      KILN_TRY(kiln_context_bind(L->ctx, g->bind[b].name, L->dev[b], g->bind[b].nbytes));
    }
  }
  return NULL;
}

static void gpu_teardown(gpu_bench *g) {
  if (!g->lanes) return;
  cudaDeviceSynchronize(); /* errors here were reported already; teardown goes on regardless */
  for (int s = 0; s < g->n_lanes; s++) {
    gpu_lane *L = &g->lanes[s];
    kiln_context_destroy(L->ctx);
    for (int b = 0; b < g->nb; b++) {
      if (L->dev && L->dev[b]) cudaFree(L->dev[b]);
      if (L->host && L->host[b] && (s == 0 || !g->bind[b].is_input)) cudaFreeHost(L->host[b]);
    }
    for (int k = 0; k < N_EV; k++)
      if (L->ev[k]) cudaEventDestroy(L->ev[k]);
    if (L->stream) cudaStreamDestroy(L->stream);
    free(L->dev);
    free(L->host);
  }
  if (g->base) cudaEventDestroy(g->base);
  free(g->lanes);
  g->lanes = NULL;
}

/* Input data is uploaded to every lane once, before any timing; the timed H2D copies re-send the same. */
static kiln_status gpu_upload_inputs(gpu_bench *g) {
  for (int s = 0; s < g->n_lanes; s++)
    for (int b = 0; b < g->nb; b++)
      if (g->bind[b].is_input && g->bind[b].nbytes)
        KILN_CUDA_TRY(cudaMemcpy(g->lanes[s].dev[b], g->lanes[s].host[b], g->bind[b].nbytes, cudaMemcpyHostToDevice));
  KILN_CUDA_TRY(cudaDeviceSynchronize());
  return NULL;
}

/* Outputs of lane 0 back to its host buffers, once, after the timed loop (--dumpOutput, --exportOutput). */
static kiln_status gpu_download_outputs(gpu_bench *g) {
  KILN_CUDA_TRY(cudaDeviceSynchronize());
  for (int b = 0; b < g->nb; b++)
    if (!g->bind[b].is_input && g->bind[b].nbytes)
      KILN_CUDA_TRY(cudaMemcpy(g->lanes[0].host[b], g->lanes[0].dev[b], g->bind[b].nbytes, cudaMemcpyDeviceToHost));
  return NULL;
}

static kiln_status gpu_launch(gpu_bench *g, gpu_lane *L) {
  int xfer = !g->o->no_transfers;
  KILN_CUDA_TRY(cudaEventRecord(L->ev[EV_H2D_START], L->stream));
  for (int b = 0; xfer && b < g->nb; b++)
    if (g->bind[b].is_input && g->bind[b].nbytes)
      KILN_CUDA_TRY(cudaMemcpyAsync(L->dev[b], L->host[b], g->bind[b].nbytes, cudaMemcpyHostToDevice, L->stream));
  KILN_CUDA_TRY(cudaEventRecord(L->ev[EV_COMPUTE_START], L->stream));
  L->enq_start = kiln_now_ms();
  kiln_status st = kiln_context_enqueue(L->ctx, (void *)L->stream);
  L->enq_end = kiln_now_ms();
  KILN_TRY(st);
  KILN_CUDA_TRY(cudaEventRecord(L->ev[EV_COMPUTE_END], L->stream));
  for (int b = 0; xfer && b < g->nb; b++)
    if (!g->bind[b].is_input && g->bind[b].nbytes)
      KILN_CUDA_TRY(cudaMemcpyAsync(L->host[b], L->dev[b], g->bind[b].nbytes, cudaMemcpyDeviceToHost, L->stream));
  KILN_CUDA_TRY(cudaEventRecord(L->ev[EV_D2H_END], L->stream));
  L->busy = 1;
  return NULL;
}

/* Wait for the lane's iteration: its last event, by blocking sync or (--useSpinWait) by polling. */
static kiln_status gpu_wait(gpu_bench *g, gpu_lane *L) {
  L->busy = 0;
  if (!g->o->spin_wait) {
    KILN_CUDA_TRY(cudaEventSynchronize(L->ev[EV_D2H_END]));
    return NULL;
  }
  cudaError_t err;
  int polled = 0;
  while ((err = cudaEventQuery(L->ev[EV_D2H_END])) == cudaErrorNotReady) polled = 1;
  /* "not ready" is not an error, but the runtime may keep it as the last error; clear it so a later
   * cudaGetLastError (kernel launch checks) does not see it */
  if (polled && err == cudaSuccess) (void)cudaGetLastError();
  KILN_CUDA_TRY(err);
  return NULL;
}

/* The finished iteration's record. Durations come from event pairs (float ms, fine-grained); only the
 * start is measured from the phase's base event, so long runs do not lose the resolution of short spans. */
static kiln_status gpu_record(gpu_bench *g, gpu_lane *L, kiln_exec_time *t) {
  float start, h2d, compute, d2h;
  KILN_CUDA_TRY(cudaEventElapsedTime(&start, g->base, L->ev[EV_H2D_START]));
  KILN_CUDA_TRY(cudaEventElapsedTime(&h2d, L->ev[EV_H2D_START], L->ev[EV_COMPUTE_START]));
  KILN_CUDA_TRY(cudaEventElapsedTime(&compute, L->ev[EV_COMPUTE_START], L->ev[EV_COMPUTE_END]));
  KILN_CUDA_TRY(cudaEventElapsedTime(&d2h, L->ev[EV_COMPUTE_END], L->ev[EV_D2H_END]));
  t->enq_start = L->enq_start - g->t0;
  t->enq_end = L->enq_end - g->t0;
  t->h2d_start = start;
  t->h2d_end = t->compute_start = start + (double)h2d;
  t->compute_end = t->d2h_start = t->compute_start + (double)compute;
  t->d2h_end = t->d2h_start + (double)d2h;
  return NULL;
}

/* Run iterations on the first n_lanes lanes until at least min_iters have been launched and min_ms have
 * passed. Each lane waits only for its own previous iteration, so the lanes overlap on the GPU.
 * record: keep a record per iteration in rs (at most rs->cap); profile: add each iteration's layer times. */
static kiln_status gpu_loop(gpu_bench *g, int n_lanes, run_state *rs, int min_iters, double min_ms, int record,
                            int profile, int *n_out, double *wall_ms) {
  *n_out = 0;
  *wall_ms = 0;
  KILN_CUDA_TRY(cudaDeviceSynchronize());
  KILN_CUDA_TRY(cudaEventRecord(g->base, g->lanes[0].stream));
  KILN_CUDA_TRY(cudaEventSynchronize(g->base));
  g->t0 = kiln_now_ms();
  int n = 0, launched = 0, active = 1;
  kiln_status st = NULL;
  while (active && !st) {
    active = 0;
    for (int s = 0; s < n_lanes && !st; s++) {
      gpu_lane *L = &g->lanes[s];
      if (L->busy) {
        st = gpu_wait(g, L);
        if (!st && record) st = gpu_record(g, L, &rs->times[n]);
        if (!st) n++;
        if (!st && profile) st = prof_add(rs, L->ctx);
        if (st) break;
      }
      double now = kiln_now_ms();
      if ((launched < min_iters || now - g->t0 < min_ms) && (!record || launched < rs->cap)) {
        st = gpu_launch(g, L);
        if (!st) launched++, active = 1;
      }
    }
  }
  *wall_ms = kiln_now_ms() - g->t0;
  *n_out = n;
  if (st) {
    cudaDeviceSynchronize();
    for (int s = 0; s < g->n_lanes; s++) g->lanes[s].busy = 0;
  }
  return st;
}

static kiln_status run_gpu_lanes(gpu_bench *g, kiln_engine *e, run_state *rs, exec_result *r) {
  const exec_opts *o = g->o;
  KILN_TRY(gpu_setup(g, e));
  KILN_TRY(fill_inputs(o, e, g->bind, g->nb, g->lanes[0].host));
  KILN_TRY(gpu_upload_inputs(g));
  printf("[I] GPU run: %d stream(s), CUDA graph %s, data transfers %s, %s wait\n", g->n_lanes,
         o->use_cuda_graph ? "on" : "off", o->no_transfers ? "off" : "on", o->spin_wait ? "spin" : "blocking");

  KILN_TRY(gpu_loop(g, g->n_lanes, rs, 0, o->warmup_ms, 0, 0, &r->warm_n, &r->warm_ms));
  KILN_TRY(run_state_alloc(rs, o, kiln_engine_num_layers(e), r->warm_n, r->warm_ms, g->n_lanes));
  int want_prof = o->dump_profile || o->export_profile, prof_timed = want_prof && !o->separate_profile;
  if (prof_timed && o->use_cuda_graph)
    printf("[I] Profiling in the timed runs: layers are timed one by one, CUDA graphs are not replayed (add "
           "--separateProfileRun to time the graph)\n");
  /* set_profiling only when profiling: a change of the setting re-captures the CUDA graph */
  for (int s = 0; prof_timed && s < g->n_lanes; s++) kiln_context_set_profiling(g->lanes[s].ctx, 1);
  kiln_status st = gpu_loop(g, g->n_lanes, rs, o->iterations, o->duration_s * 1000.0, 1, prof_timed, &r->n, &r->wall_ms);
  for (int s = 0; prof_timed && s < g->n_lanes; s++) kiln_context_set_profiling(g->lanes[s].ctx, 0);
  KILN_TRY(st);
  if (r->n == rs->cap && o->verbose) printf("[V] Stopped at %d iterations: the record buffer is full\n", r->n);
  if (want_prof && o->separate_profile) {
    /* one stream, events after every layer: the timed numbers above stay free of that cost */
    int pn;
    double pw;
    kiln_context_set_profiling(g->lanes[0].ctx, 1);
    st = gpu_loop(g, 1, rs, o->iterations, o->duration_s * 1000.0, 0, 1, &pn, &pw);
    kiln_context_set_profiling(g->lanes[0].ctx, 0);
    KILN_TRY(st);
    printf("[I] Separate profile run: %d iterations in %.3f s\n", pn, pw / 1000.0);
  }
  return gpu_download_outputs(g);
}
#endif

/* GPU run. *host_out: lane 0's host buffers, which hold the outputs afterwards; *cleanup frees them. */
static kiln_status run_gpu(const exec_opts *o, kiln_engine *e, const kiln_binding_info *bind, int nb, run_state *rs,
                           exec_result *r, void ***host_out, void **cleanup) {
  *host_out = NULL;
  *cleanup = NULL;
#ifdef KILN_HAVE_CUDA
  gpu_bench *g = calloc(1, sizeof *g);
  KILN_CHECK_ALLOC(g);
  g->o = o;
  g->bind = bind;
  g->nb = nb;
  g->n_lanes = o->streams;
  *cleanup = g;
  kiln_status st = run_gpu_lanes(g, e, rs, r);
  if (g->lanes) *host_out = g->lanes[0].host;
  return st;
#else
  (void)o, (void)e, (void)bind, (void)nb, (void)rs, (void)r;
  return gpu_init(0);
#endif
}

static void run_gpu_cleanup(void *cleanup) {
#ifdef KILN_HAVE_CUDA
  gpu_bench *g = cleanup;
  if (g) gpu_teardown(g);
  free(g);
#else
  (void)cleanup;
#endif
}

/* The batch for the images/s line: the leading dim of the first input (1 for scalars). */
static int64_t engine_batch(const kiln_binding_info *bind, int nb) {
  for (int b = 0; b < nb; b++)
    if (bind[b].is_input) return bind[b].rank >= 1 && bind[b].dims[0] > 0 ? bind[b].dims[0] : 1;
  return 1;
}

int kiln_cmd_exec(int argc, char **argv) {
  exec_opts o;
  int rc = parse_args(argc, argv, &o);
  if (rc >= 0) return rc;

  printf("&&&& RUNNING kiln exec");
  for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
  printf("\n");
  /* A --loadEngine without --gpu selects the GPU once the engine says it runs there. */
  int gpu_ready = 0;
  kiln_engine *e = NULL;
  rc = open_engine(&o, &e, &gpu_ready);
  if (rc >= 0) {
    printf("&&&& FAILED kiln exec\n");
    return rc;
  }
  kiln_device_kind dev = kiln_engine_device(e);
  kiln_status st = NULL;
  if (o.load_engine && o.device_given && o.device != dev)
    st = kiln_error(KILN_ERR_INVALID_ARGUMENT, "--device=%s, but '%s' is a %s engine", o.device == KILN_DEVICE_CUDA ? "cuda" : "cpu",
                    o.load_engine, dev == KILN_DEVICE_CUDA ? "CUDA" : "CPU");
  if (!st && dev == KILN_DEVICE_CUDA && !gpu_ready) st = gpu_init(o.gpu);
  if (!st) st = check_shapes_engine(&o, e);

  int nb = kiln_engine_num_bindings(e), n_layers = kiln_engine_num_layers(e);
  kiln_binding_info *bind = calloc((size_t)nb + 1, sizeof *bind);
  if (!st && !bind) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  for (int b = 0; !st && b < nb; b++) st = kiln_engine_binding(e, b, &bind[b]);
  if (!st) {
    size_t arena = 0, naive = 0, weights = 0, workspace = 0;
    kiln_engine_memory(e, &arena, &naive, &weights, &workspace);
    printf("[I] Engine: %s, %d layers, weights %.2f MiB, activations %.2f MiB per context (%.2f MiB without reuse)\n",
           dev == KILN_DEVICE_CUDA ? "CUDA" : "CPU", n_layers, weights / 1048576.0, arena / 1048576.0, naive / 1048576.0);
  }

  run_state rs = {0};
  exec_result r = {0};
  void **host = NULL, *gpu_state = NULL;
  if (!st) {
    if (dev == KILN_DEVICE_CUDA) st = run_gpu(&o, e, bind, nb, &rs, &r, &host, &gpu_state);
    else st = run_cpu(&o, e, bind, nb, &rs, &r, &host);
  }
  if (!st) {
    if (o.verbose) printf("[V] Warm-up: %d runs in %.1f ms\n", r.warm_n, r.warm_ms);
    printf("[I] Timing: %d iterations in %.3f s (warm-up %d runs, %.0f ms)\n", r.n, r.wall_ms / 1000.0, r.warm_n,
           r.warm_ms);
    st = kiln_exec_print_summary(stdout, rs.times, r.n, r.wall_ms, engine_batch(bind, nb), o.percentiles,
                                 o.n_percentiles, o.avg_runs, o.verbose);
  }
  if (!st) {
    printf("[I] Explanations of the performance metrics are printed in the verbose logs.\n");
    if (o.verbose && dev == KILN_DEVICE_CUDA)
      printf("[V] Throughput: iterations of all streams per second of host wall time. Latency: H2D start to D2H end "
             "(CUDA events). Enqueue Time: host time of kiln_context_enqueue. GPU Compute Time: the events around "
             "the enqueue. With --noDataTransfers, H2D and D2H are empty.\n");
    else if (o.verbose)
      printf("[V] CPU engine: 'GPU Compute Time' is the time of a (synchronous) enqueue on the CPU; nothing is "
             "copied, so H2D and D2H are 0 and Latency = Enqueue Time = compute.\n");
    print_rusage();
  }
  int want_prof = o.dump_profile || o.export_profile;
  kiln_exec_profile prof = {n_layers, rs.prof_rows, rs.prof_count, rs.prof, rs.prof_total};
  if (!st && want_prof && o.dump_profile) kiln_exec_dump_profile(stdout, e, &prof);
  if (!st && o.export_profile) st = kiln_exec_export_profile(o.export_profile, e, &prof);
  if (!st && o.export_times) st = kiln_exec_export_times(o.export_times, rs.times, r.n);
  if (!st && o.dump_output) kiln_exec_dump_outputs(stdout, e, host);
  if (!st && o.export_output) st = kiln_exec_export_outputs(o.export_output, e, host);

  if (dev == KILN_DEVICE_CUDA) run_gpu_cleanup(gpu_state);
  else {
    for (int b = 0; host && b < nb; b++) free(host[b]);
    free(host);
  }
  free(bind);
  run_state_free(&rs);
  kiln_engine_destroy(e);
  if (st) {
    printf("&&&& FAILED kiln exec\n");
    return kiln_report(CMD, st);
  }
  printf("&&&& PASSED kiln exec\n");
  return 0;
}
