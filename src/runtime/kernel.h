/*
 * The kernel interface between engines and backends. An engine layer names its kernel by a stable
 * string ("ref", "cpu.conv", ...) so engine files stay valid across kiln builds that keep that kernel;
 * loading resolves the name through the registry (runtime/kernel_registry.c) and lets the kernel decode
 * its parameter blob once (prepare). Running a layer then touches only prepared state and the context's
 * tensor pointers: no allocation, no I/O.
 */
#ifndef KILN_RUNTIME_KERNEL_H
#define KILN_RUNTIME_KERNEL_H

#include "backend/cpu/threadpool.h"
#include "core/status.h"
#include "runtime/engine_format.h"

#include <stddef.h>
#include <stdint.h>

struct kiln_kernel;

typedef struct kiln_layer_rt {
  const kiln_layer_rec *rec;
  const char *name, *op, *kernel_name;
  int32_t n_in, n_out;
  const int32_t *in, *out; /* tensor ids; -1 = omitted optional */
  const uint8_t *params;
  size_t params_size;
  const struct kiln_kernel *kernel;
  void *state; /* from prepare; shared read-only by all contexts */
  /* Scratch bytes this kiln's kernel needs, set by prepare (starts as the engine's record). The context
   * allocates the largest: an engine written by another kiln build cannot make a kernel overrun it. */
  uint64_t workspace;
} kiln_layer_rt;

/* What a kernel sees of the engine at prepare time. */
typedef struct kiln_engine_view {
  const kiln_tensor_rec *tensors;
  int32_t n_tensors;
  const char *strings;
  uint64_t strings_size;
  const uint8_t *weights; /* base of the weights section */
  uint64_t weights_size;
  int64_t opset;
  const uint8_t *device_weights; /* CUDA engines: the weights section's copy on the GPU (same offsets) */
  int target;                    /* kiln_target_device */
} kiln_engine_view;

/* What a kernel sees of the context at run time. */
typedef struct kiln_exec {
  void *const *ptrs; /* data pointer of every tensor */
  const kiln_tensor_rec *tensors;
  void *workspace; /* at least rec->workspace bytes, 64-byte aligned (device memory for CUDA engines) */
  kiln_threadpool *tp; /* CPU engines */
  void *stream;        /* CUDA engines: the caller's cudaStream_t; kernels only enqueue on it */
} kiln_exec;

typedef struct kiln_kernel {
  const char *name;
  kiln_status (*prepare)(const kiln_engine_view *e, kiln_layer_rt *L);
  void (*release)(void *state);
  kiln_status (*run)(const kiln_layer_rt *L, const kiln_exec *ex);
  /* Optional: the variant prepare chose (tile shape, split-K...), a static string, for profiles. */
  const char *(*variant)(const kiln_layer_rt *L);
  unsigned flags; /* KILN_KERNEL_* */
} kiln_kernel;

/* The kernel steps through row-strided LINEAR tensors (engine_format.h) among its inputs and outputs. The
 * loader refuses an engine that gives such a tensor to a kernel without this flag. */
#define KILN_KERNEL_ROW_STRIDED 1u

const kiln_kernel *kiln_kernel_find(const char *name);

/* Kernels (each in its backend file). */
extern const kiln_kernel kiln_kernel_ref;      /* any op, through the reference kernels */
extern const kiln_kernel kiln_kernel_cpu_conv; /* fused Conv (+bias, activation, residual) */
extern const kiln_kernel kiln_kernel_cpu_pool2d, kiln_kernel_cpu_resize2d, kiln_kernel_cpu_softmax,
    kiln_kernel_cpu_binary, kiln_kernel_cpu_unary, kiln_kernel_cpu_transpose, kiln_kernel_cpu_concat, kiln_kernel_cpu_gemm;

/* CUDA engines (backend/cuda/kernels_cuda.c; only in builds with CUDA). */
extern const kiln_kernel kiln_kernel_cuda_convert, kiln_kernel_cuda_convert_concat, kiln_kernel_cuda_conv, kiln_kernel_cuda_maxpool,
    kiln_kernel_cuda_maxpool_chain, kiln_kernel_cuda_resize_nearest, kiln_kernel_cuda_eltwise, kiln_kernel_cuda_pointwise,
    kiln_kernel_cuda_softmax, kiln_kernel_cuda_transpose,
    kiln_kernel_cuda_concat, kiln_kernel_cuda_split, kiln_kernel_cuda_softmax_dot,
    kiln_kernel_cuda_softmax_dot_nhwc;
/* LINEAR ops of CUDA engines (backend/cuda/kernels_cuda_ops.c). */
extern const kiln_kernel kiln_kernel_cuda_gemm, kiln_kernel_cuda_reduce, kiln_kernel_cuda_strided_copy,
    kiln_kernel_cuda_gather, kiln_kernel_cuda_pad, kiln_kernel_cuda_resize, kiln_kernel_cuda_unary, kiln_kernel_cuda_select;

/* Serialized node attributes for kernels that rebuild a node at load time (ref). */
struct kiln_node;
kiln_status kiln_attrs_serialize(const struct kiln_node *n, uint8_t **out, size_t *size);
kiln_status kiln_attrs_deserialize(const uint8_t *data, size_t size, struct kiln_node *n);

#endif
