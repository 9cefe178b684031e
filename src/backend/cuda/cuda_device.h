/*
 * The CUDA runtime as the engine runtime needs it: device discovery, device memory, host<->device copies
 * at load time, CUDA-graph capture and replay, and events for per-layer profiling. Plain C so the
 * runtime (src/runtime) stays free of cuda_runtime.h and of #ifdefs: without CUDA at build time the
 * same functions exist (cuda_stub.c) and report that kiln was built without CUDA.
 * Every call that can fail returns a kiln_status naming the CUDA call, file and line.
 */
#ifndef KILN_BACKEND_CUDA_DEVICE_H
#define KILN_BACKEND_CUDA_DEVICE_H

#include "core/status.h"

#include <stddef.h>

typedef struct kiln_cuda_device_info {
  int index;
  int cc_major, cc_minor;   /* compute capability */
  int sm_count;
  size_t total_memory;
  int driver_version, runtime_version;
  char name[256];
} kiln_cuda_device_info;

/* Number of usable CUDA devices; 0 when kiln was built without CUDA, or no driver/GPU is present. */
int kiln_cuda_device_count(void);
kiln_status kiln_cuda_device_query(int index, kiln_cuda_device_info *out);
/* The calling thread's current device (cudaGetDevice). */
kiln_status kiln_cuda_current_device(int *index);
/* Make `index` the calling thread's current device (cudaSetDevice): the builder times tactics on the
 * device it builds for, then restores the caller's. */
kiln_status kiln_cuda_set_device(int index);

/* Device memory (cudaMalloc: 256-byte aligned). kiln_cuda_free(NULL) is a no-op. */
kiln_status kiln_cuda_malloc(size_t nbytes, void **out);
void kiln_cuda_free(void *p);
/* Page-locked host memory (cudaMallocHost), for staging copies. */
kiln_status kiln_cuda_malloc_host(size_t nbytes, void **out);
void kiln_cuda_free_host(void *p);
/* Synchronous copies and fills, for load time and tests (never on the enqueue path). */
kiln_status kiln_cuda_copy_to_device(void *dst, const void *src, size_t nbytes);
kiln_status kiln_cuda_copy_to_host(void *dst, const void *src, size_t nbytes);
kiln_status kiln_cuda_fill(void *dst, int byte, size_t nbytes);

/* Streams (cudaStreamNonBlocking) and waiting for one. */
kiln_status kiln_cuda_stream_create(void **out);
void kiln_cuda_stream_destroy(void *stream);
kiln_status kiln_cuda_stream_sync(void *stream);

/* CUDA graphs: capture everything enqueued on `stream` between begin and end (thread-local capture
 * mode, so other threads' CUDA calls are unaffected), instantiate it, and replay it with one launch. */
typedef struct kiln_cuda_graph kiln_cuda_graph;
kiln_status kiln_cuda_capture_begin(void *stream);
/* Ends the capture; on failure the capture is still ended and *out is NULL. */
kiln_status kiln_cuda_capture_end(void *stream, kiln_cuda_graph **out);
kiln_status kiln_cuda_graph_launch(kiln_cuda_graph *g, void *stream);
void kiln_cuda_graph_destroy(kiln_cuda_graph *g);

/* Events for timing (default flags: they record timestamps). */
kiln_status kiln_cuda_event_create(void **out);
void kiln_cuda_event_destroy(void *ev);
kiln_status kiln_cuda_event_record(void *ev, void *stream);
/* Wait until the work before the event's last record is done (cudaEventSynchronize). */
kiln_status kiln_cuda_event_sync(void *ev);
/* Milliseconds between two recorded events; waits for `end` to complete. */
kiln_status kiln_cuda_event_elapsed(void *start, void *end, float *ms);

#endif
