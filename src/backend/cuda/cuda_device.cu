// The CUDA runtime calls the engine runtime needs (cuda_device.h), each checked with file and line.
extern "C" {
#include "backend/cuda/cuda_device.h"
}
#include "backend/cuda/cuda_check.h"

#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

extern "C" int kiln_cuda_device_count(void) {
  int n = 0;
  // No driver or no GPU (CI, CPU-only machines) is not an error here: it means "no CUDA devices".
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

extern "C" kiln_status kiln_cuda_device_query(int index, kiln_cuda_device_info *out) {
  memset(out, 0, sizeof *out);
  cudaDeviceProp p;
  KILN_CUDA_TRY(cudaGetDeviceProperties(&p, index));
  out->index = index;
  out->cc_major = p.major;
  out->cc_minor = p.minor;
  out->sm_count = p.multiProcessorCount;
  out->total_memory = p.totalGlobalMem;
  cudaDriverGetVersion(&out->driver_version);
  cudaRuntimeGetVersion(&out->runtime_version);
  size_t len = strnlen(p.name, sizeof p.name);
  if (len >= sizeof out->name) len = sizeof out->name - 1;
  memcpy(out->name, p.name, len);
  return NULL;
}

extern "C" kiln_status kiln_cuda_current_device(int *index) {
  *index = 0;
  KILN_CUDA_TRY(cudaGetDevice(index));
  return NULL;
}

extern "C" kiln_status kiln_cuda_set_device(int index) {
  KILN_CUDA_TRY(cudaSetDevice(index));
  return NULL;
}

extern "C" kiln_status kiln_cuda_malloc(size_t nbytes, void **out) {
  *out = NULL;
  KILN_CUDA_TRY(cudaMalloc(out, nbytes ? nbytes : 256));
  return NULL;
}
extern "C" void kiln_cuda_free(void *p) {
  if (p) cudaFree(p);
}
extern "C" kiln_status kiln_cuda_malloc_host(size_t nbytes, void **out) {
  *out = NULL;
  KILN_CUDA_TRY(cudaMallocHost(out, nbytes ? nbytes : 64));
  return NULL;
}
extern "C" void kiln_cuda_free_host(void *p) {
  if (p) cudaFreeHost(p);
}
extern "C" kiln_status kiln_cuda_copy_to_device(void *dst, const void *src, size_t nbytes) {
  if (nbytes) KILN_CUDA_TRY(cudaMemcpy(dst, src, nbytes, cudaMemcpyHostToDevice));
  return NULL;
}
extern "C" kiln_status kiln_cuda_copy_to_host(void *dst, const void *src, size_t nbytes) {
  if (nbytes) KILN_CUDA_TRY(cudaMemcpy(dst, src, nbytes, cudaMemcpyDeviceToHost));
  return NULL;
}
extern "C" kiln_status kiln_cuda_fill(void *dst, int byte, size_t nbytes) {
  if (nbytes) KILN_CUDA_TRY(cudaMemset(dst, byte, nbytes));
  return NULL;
}

extern "C" kiln_status kiln_cuda_stream_create(void **out) {
  *out = NULL;
  cudaStream_t s;
  KILN_CUDA_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  *out = (void *)s;
  return NULL;
}
extern "C" void kiln_cuda_stream_destroy(void *stream) {
  if (stream) cudaStreamDestroy((cudaStream_t)stream);
}
extern "C" kiln_status kiln_cuda_stream_sync(void *stream) {
  KILN_CUDA_TRY(cudaStreamSynchronize((cudaStream_t)stream));
  return NULL;
}

struct kiln_cuda_graph {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
};

extern "C" kiln_status kiln_cuda_capture_begin(void *stream) {
  KILN_CUDA_TRY(cudaStreamBeginCapture((cudaStream_t)stream, cudaStreamCaptureModeThreadLocal));
  return NULL;
}

static kiln_status instantiate(cudaGraph_t graph, kiln_cuda_graph *g) {
  KILN_CUDA_TRY(cudaGraphInstantiate(&g->exec, graph, 0));
  return NULL;
}

extern "C" kiln_status kiln_cuda_capture_end(void *stream, kiln_cuda_graph **out) {
  *out = NULL;
  cudaGraph_t graph = NULL;
  KILN_CUDA_TRY(cudaStreamEndCapture((cudaStream_t)stream, &graph));
  kiln_cuda_graph *g = (kiln_cuda_graph *)calloc(1, sizeof *g);
  if (!g) {
    cudaGraphDestroy(graph);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  }
  g->graph = graph;
  kiln_status st = instantiate(graph, g);
  if (st) {
    kiln_cuda_graph_destroy(g);
    return st;
  }
  *out = g;
  return NULL;
}

extern "C" kiln_status kiln_cuda_graph_launch(kiln_cuda_graph *g, void *stream) {
  KILN_CUDA_TRY(cudaGraphLaunch(g->exec, (cudaStream_t)stream));
  return NULL;
}

extern "C" void kiln_cuda_graph_destroy(kiln_cuda_graph *g) {
  if (!g) return;
  if (g->exec) cudaGraphExecDestroy(g->exec);
  if (g->graph) cudaGraphDestroy(g->graph);
  free(g);
}

extern "C" kiln_status kiln_cuda_event_create(void **out) {
  *out = NULL;
  cudaEvent_t ev;
  KILN_CUDA_TRY(cudaEventCreate(&ev));
  *out = (void *)ev;
  return NULL;
}
extern "C" kiln_status kiln_cuda_event_sync(void *ev) {
  KILN_CUDA_TRY(cudaEventSynchronize((cudaEvent_t)ev));
  return NULL;
}
extern "C" void kiln_cuda_event_destroy(void *ev) {
  if (ev) cudaEventDestroy((cudaEvent_t)ev);
}
extern "C" kiln_status kiln_cuda_event_record(void *ev, void *stream) {
  KILN_CUDA_TRY(cudaEventRecord((cudaEvent_t)ev, (cudaStream_t)stream));
  return NULL;
}
extern "C" kiln_status kiln_cuda_event_elapsed(void *start, void *end, float *ms) {
  *ms = 0;
  KILN_CUDA_TRY(cudaEventSynchronize((cudaEvent_t)end));
  KILN_CUDA_TRY(cudaEventElapsedTime(ms, (cudaEvent_t)start, (cudaEvent_t)end));
  return NULL;
}
