/*
 * kiln — an inference compiler and runtime for ONNX models (CPU and NVIDIA GPU).
 *
 * Public C API. Every fallible call returns a kiln_status: NULL means success; anything else is an
 * error object whose code and message the caller reads and then frees with kiln_status_destroy().
 *
 * The flow, as in TensorRT: parse -> build (serialized engine) -> load -> contexts -> bind -> enqueue.
 *
 *   kiln_network *net;  kiln_status st;
 *   if ((st = kiln_network_load_onnx("yolov8n.onnx", &net))) goto fail;      // import + shape inference
 *   kiln_build_config cfg;  kiln_build_config_init(&cfg);                      // fp32, CPU, all cores
 *   if ((st = kiln_build_to_file(net, &cfg, "yolov8n.engine"))) goto fail;   // optimize, plan, serialize
 *   kiln_engine *eng;  kiln_context *ctx;
 *   if ((st = kiln_engine_load_file("yolov8n.engine", &eng))) goto fail;      // mmap + validate
 *   if ((st = kiln_context_create(eng, NULL, &ctx))) goto fail;              // own arena + threads
 *   kiln_context_bind(ctx, "images", input, 1*3*640*640*sizeof(float));      // by tensor name
 *   kiln_context_bind(ctx, "output0", output, 1*84*8400*sizeof(float));
 *   if ((st = kiln_context_enqueue(ctx, NULL))) goto fail;                   // CPU: runs now; CUDA: async on stream
 *   kiln_context_destroy(ctx); kiln_engine_destroy(eng); kiln_network_destroy(net);
 * fail: fprintf(stderr, "%s\n", kiln_status_message(st)); kiln_status_destroy(st);
 */
#ifndef KILN_KILN_H
#define KILN_KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status -------------------------------------------------------------------------------------- */
typedef enum kiln_status_code {
  KILN_OK = 0,
  KILN_ERR_INVALID_ARGUMENT, /* a caller passed something unusable (bad flag, NULL, bad batch) */
  KILN_ERR_PARSE,            /* a file is malformed (bad protobuf, truncated data, bad engine) */
  KILN_ERR_UNSUPPORTED,      /* valid input that kiln does not handle (op, attribute, dtype) */
  KILN_ERR_SHAPE,            /* shapes or types that do not fit together */
  KILN_ERR_IO,               /* reading or writing a file failed */
  KILN_ERR_OUT_OF_MEMORY,
  KILN_ERR_DEVICE,           /* the target device is missing or does not match */
  KILN_ERR_INTERNAL          /* a bug in kiln */
} kiln_status_code;

typedef struct kiln_error *kiln_status; /* NULL == success */

kiln_status_code kiln_status_get_code(kiln_status st);
const char *kiln_status_message(kiln_status st); /* "" for success; valid until destroyed */
const char *kiln_status_code_name(kiln_status_code code);
void kiln_status_destroy(kiln_status st);

const char *kiln_version(void);

/* ---- dtypes (numbering follows ONNX TensorProto.DataType so files and tools agree) ---------------- */
typedef enum kiln_dtype {
  KILN_DTYPE_UNDEFINED = 0,
  KILN_DTYPE_FLOAT32 = 1,
  KILN_DTYPE_UINT8 = 2,
  KILN_DTYPE_INT8 = 3,
  KILN_DTYPE_UINT16 = 4,
  KILN_DTYPE_INT16 = 5,
  KILN_DTYPE_INT32 = 6,
  KILN_DTYPE_INT64 = 7,
  KILN_DTYPE_STRING = 8,
  KILN_DTYPE_BOOL = 9,
  KILN_DTYPE_FLOAT16 = 10,
  KILN_DTYPE_FLOAT64 = 11,
  KILN_DTYPE_UINT32 = 12,
  KILN_DTYPE_UINT64 = 13,
  KILN_DTYPE_BFLOAT16 = 16
} kiln_dtype;

const char *kiln_dtype_name(kiln_dtype dt); /* "float32", "int64", ... ("?" if unknown) */
size_t kiln_dtype_size(kiln_dtype dt);      /* bytes per element; 0 for undefined/string */

/* ---- network: an ONNX model imported into kiln's graph IR --------------------------------------- */
typedef struct kiln_network kiln_network;

kiln_status kiln_network_load_onnx(const char *path, kiln_network **out);
void kiln_network_destroy(kiln_network *net);

/* ---- builder ------------------------------------------------------------------------------------ */
typedef enum kiln_device_kind { KILN_DEVICE_CPU = 0, KILN_DEVICE_CUDA = 1 } kiln_device_kind;
typedef enum kiln_precision {
  KILN_PRECISION_FP32 = 0,
  KILN_PRECISION_FP16 = 1, /* CUDA backend */
  KILN_PRECISION_INT8 = 2, /* calibrated or Q/DQ */
} kiln_precision;

typedef struct kiln_build_config {
  kiln_device_kind device;
  kiln_precision precision;
  int threads;                    /* threads used to time tactics; 0 = physical cores */
  int64_t batch;                  /* 0: keep the model's batch; N > 0: re-batch to N */
  const char *timing_cache_path;  /* CUDA: JSON timing cache (read before, updated after the build); NULL: none */
  size_t workspace_limit;         /* bytes of scratch per context; 0 = unlimited */
  const char *const *plugin_libraries; /* .so files with plugins (plugin work) */
  int n_plugin_libraries;
  int verbose;                    /* print the layers and their kernels while building */
  int cuda_device;                /* CUDA: the device to build for (its compute capability is recorded) */
  int cuda_arch;                  /* CUDA: 0 = the device's compute capability; else major*10+minor (e.g. 90)
                                   * to build without a GPU (engines load only on that capability) */
  int no_tactic_timing;           /* CUDA: 1 = keep the built-in heuristic's conv kernels (no timing, no cache).
                                   * 0 (default): when the build GPU is the target, time each conv layer's
                                   * candidate kernels and keep the fastest (docs/CUDA.md, "Tactic timing") */
} kiln_build_config;

void kiln_build_config_init(kiln_build_config *cfg);
/* Optimize the network (it is modified) and serialize an engine into a malloc'd buffer (kiln_free). */
kiln_status kiln_build(kiln_network *net, const kiln_build_config *cfg, void **engine, size_t *engine_size);
kiln_status kiln_build_to_file(kiln_network *net, const kiln_build_config *cfg, const char *path);
void kiln_free(void *p);

/* ---- engine ------------------------------------------------------------------------------------- */
typedef struct kiln_engine kiln_engine;

typedef struct kiln_binding_info {
  const char *name;
  kiln_dtype dtype;
  int is_input;
  int rank;
  int64_t dims[8];
  size_t nbytes;
} kiln_binding_info;

/* mmap an engine file and validate it (magic, version, checksum, target); errors say which check failed. */
kiln_status kiln_engine_load_file(const char *path, kiln_engine **out);
/* Same from memory (copied). */
kiln_status kiln_engine_load_memory(const void *data, size_t size, kiln_engine **out);
void kiln_engine_destroy(kiln_engine *e);
int kiln_engine_num_bindings(const kiln_engine *e);
kiln_status kiln_engine_binding(const kiln_engine *e, int index, kiln_binding_info *out);
int kiln_engine_find_binding(const kiln_engine *e, const char *name); /* -1 if absent */
/* Where the engine runs: KILN_DEVICE_CPU (bind host buffers) or KILN_DEVICE_CUDA (bind device buffers). */
kiln_device_kind kiln_engine_device(const kiln_engine *e);

/* ---- execution context: one per concurrent run; contexts of an engine share its weights ---------- */
typedef struct kiln_context kiln_context;
typedef struct kiln_context_options {
  int threads;        /* CPU threads for this context; 0 = KILN_THREADS or physical cores */
  int use_cuda_graph; /* CUDA: capture the layers into a CUDA graph at the first enqueue after a bind (or
                       * after profiling changes), then replay it: one launch per enqueue */
} kiln_context_options;

kiln_status kiln_context_create(kiln_engine *e, const kiln_context_options *opts, kiln_context **out);
void kiln_context_destroy(kiln_context *c);
/* Bind a caller-owned buffer to an input or output by name; nbytes must match the binding.
 * CPU engines take host memory; CUDA engines take device memory (cudaMalloc) of the engine's device. */
kiln_status kiln_context_bind(kiln_context *c, const char *name, void *data, size_t nbytes);
/* Run. CPU: executes on the context's thread pool and returns when done (stream must be NULL).
 * CUDA: enqueues on `stream` (a cudaStream_t; NULL = the legacy default stream) and returns at once,
 * without allocating or synchronizing. One enqueue at a time per context (its activations are reused). */
kiln_status kiln_context_enqueue(kiln_context *c, void *stream);

/* ---- layers and profiling ---------------------------------------------------------------------- */
typedef struct kiln_layer_info {
  const char *name;   /* the (first) ONNX node the layer came from */
  const char *op;     /* its op type */
  const char *kernel; /* the kernel that runs it, e.g. "cpu.conv" or "ref" */
  const char *variant; /* the variant that kernel chose at load (e.g. a conv tile shape), or NULL */
  int64_t macs;
  size_t workspace;
} kiln_layer_info;

int kiln_engine_num_layers(const kiln_engine *e);
kiln_status kiln_engine_layer(const kiln_engine *e, int index, kiln_layer_info *out);
/* Engine totals: activation arena bytes per context (after memory reuse; `naive` without reuse) and weights. */
void kiln_engine_memory(const kiln_engine *e, size_t *arena, size_t *naive, size_t *weights, size_t *workspace);
/* Per-layer timing: when on, each enqueue records every layer's time. CPU: a clock read per layer (wall
 * time). CUDA: a CUDA event after each layer (GPU time; no graph replay while profiling). */
void kiln_context_set_profiling(kiln_context *c, int enabled);
/* Milliseconds of each layer in the last profiled enqueue (kiln_engine_num_layers entries). CUDA: waits
 * for that enqueue's events. */
kiln_status kiln_context_layer_times(const kiln_context *c, double *ms, int n);

#ifdef __cplusplus
}
#endif
#endif /* KILN_KILN_H */
