/*
 * Execution contexts: each owns its activation arena, kernel workspace, thread pool and bindings; the
 * engine (weights, prepared layers) is shared. Pointers are resolved when bindings change, so enqueue
 * is a loop over layers with no allocation and no I/O.
 *
 * CUDA engines: the arena and workspace are device memory (cudaMalloc'd once here), the bindings are the
 * caller's device buffers, and enqueue only launches kernels on the caller's stream. With use_cuda_graph
 * the first enqueue after a (re)bind captures the layers into a CUDA graph, later ones replay it with a
 * single launch. Profiling records an event after each layer (and never replays the graph, whose
 * kernels could not be told apart).
 */
#include "runtime/engine.h"

#include "backend/cuda/cuda_device.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kiln_context {
  kiln_engine *e;
  uint8_t *arena, *workspace;
  void **ptrs; /* per tensor */
  void **io;   /* per binding */
  kiln_threadpool *tp;
  int resolved;
  int profiling;
  double *layer_ms; /* per layer, from the last profiled enqueue */
  /* CUDA engines */
  int cuda, use_graph, events_recorded;
  kiln_cuda_graph *graph; /* valid for the current bindings */
  void **events;          /* n_layers + 1, for profiling */
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void kiln_context_set_profiling(kiln_context *c, int enabled) { c->profiling = enabled; }

kiln_status kiln_context_layer_times(const kiln_context *c, double *ms, int n) {
  if (n != c->e->n_layers) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "expected %d layer slots, got %d", c->e->n_layers, n);
  if (c->cuda && c->events_recorded) /* the GPU's own timestamps, once the profiled enqueue has finished */
    for (int i = 0; i < n; i++) {
      float t = 0;
      KILN_TRY(kiln_cuda_event_elapsed(c->events[i], c->events[i + 1], &t));
      c->layer_ms[i] = t;
    }
  for (int i = 0; i < n; i++) ms[i] = c->layer_ms[i];
  return NULL;
}

void kiln_context_destroy(kiln_context *c) {
  if (!c) return;
  if (c->cuda) {
    kiln_cuda_graph_destroy(c->graph);
    for (int32_t i = 0; c->events && i <= c->e->n_layers; i++) kiln_cuda_event_destroy(c->events[i]);
    free(c->events);
    kiln_cuda_free(c->arena);
    kiln_cuda_free(c->workspace);
  } else {
    free(c->arena);
    free(c->workspace);
  }
  free(c->ptrs);
  free(c->io);
  free(c->layer_ms);
  kiln_threadpool_destroy(c->tp);
  free(c);
}

static void *aligned(size_t n) {
  void *p = NULL;
  if (posix_memalign(&p, KILN_ENGINE_ALIGN, n ? n : KILN_ENGINE_ALIGN) != 0) return NULL;
  return p;
}

static kiln_status create_cuda(kiln_context *c, const kiln_context_options *opts) {
  const kiln_engine *e = c->e;
  c->cuda = 1;
  c->use_graph = opts && opts->use_cuda_graph;
  KILN_TRY(kiln_cuda_malloc(e->plan->arena_size, (void **)&c->arena));
  KILN_TRY(kiln_cuda_malloc(e->workspace_size, (void **)&c->workspace));
  c->events = calloc((size_t)e->n_layers + 1, sizeof(void *));
  KILN_CHECK_ALLOC(c->events);
  for (int32_t i = 0; i <= e->n_layers; i++) KILN_TRY(kiln_cuda_event_create(&c->events[i]));
  return NULL;
}

kiln_status kiln_context_create(kiln_engine *e, const kiln_context_options *opts, kiln_context **out) {
  *out = NULL;
  kiln_context *c = calloc(1, sizeof *c);
  KILN_CHECK_ALLOC(c);
  c->e = e;
  c->ptrs = calloc((size_t)e->n_tensors + 1, sizeof(void *));
  c->io = calloc((size_t)e->n_bindings + 1, sizeof(void *));
  c->layer_ms = calloc((size_t)e->n_layers + 1, sizeof(double));
  kiln_status st = NULL;
  if (!c->ptrs || !c->io || !c->layer_ms) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory creating a context");
  if (!st && e->target->device == KILN_TARGET_CUDA) {
    st = create_cuda(c, opts);
  } else if (!st) {
    c->arena = aligned(e->plan->arena_size);
    c->workspace = aligned(e->workspace_size);
    if (!c->arena || !c->workspace)
      st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory creating a context (arena %llu bytes)",
                      (unsigned long long)e->plan->arena_size);
    if (!st) st = kiln_threadpool_create(opts ? opts->threads : 0, &c->tp);
  }
  if (st) {
    kiln_context_destroy(c);
    return st;
  }
  *out = c;
  return NULL;
}

kiln_status kiln_context_bind(kiln_context *c, const char *name, void *data, size_t nbytes) {
  int i = kiln_engine_find_binding(c->e, name);
  if (i < 0) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "the engine has no input or output named '%s'", name);
  const kiln_tensor_rec *t = &c->e->tensors[c->e->bindings[i].tensor];
  if (nbytes != t->nbytes)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "binding '%s' needs %llu bytes, got %zu", name,
                      (unsigned long long)t->nbytes, nbytes);
  if (!data && nbytes) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "binding '%s': NULL buffer", name);
  c->io[i] = data;
  c->resolved = 0;
  return NULL;
}

static kiln_status resolve(kiln_context *c) {
  const kiln_engine *e = c->e;
  for (int32_t i = 0; i < e->n_bindings; i++)
    if (!c->io[i] && e->tensors[e->bindings[i].tensor].nbytes)
      return kiln_error(KILN_ERR_INVALID_ARGUMENT, "%s '%s' is not bound", e->bindings[i].is_input ? "input" : "output",
                        kiln_engine_string(e, e->tensors[e->bindings[i].tensor].name));
  for (int32_t i = 0; i < e->n_tensors; i++) {
    const kiln_tensor_rec *t = &e->tensors[i];
    switch (t->storage) {
    case KILN_STORAGE_ARENA: c->ptrs[i] = c->arena + t->offset; break;
    case KILN_STORAGE_WEIGHT: c->ptrs[i] = (void *)((c->cuda ? e->device_weights : e->weights) + t->offset); break;
    case KILN_STORAGE_IO: c->ptrs[i] = c->io[t->slot]; break;
    case KILN_STORAGE_VIEW: c->ptrs[i] = (uint8_t *)c->ptrs[t->alias_of] + t->offset; break; /* alias_of < i */
    }
  }
  kiln_cuda_graph_destroy(c->graph); /* captured with the old pointers */
  c->graph = NULL;
  c->resolved = 1;
  return NULL;
}

static kiln_status run_layers(kiln_context *c, void *stream, int timed) {
  kiln_exec ex = {c->ptrs, c->e->tensors, c->workspace, c->tp, stream};
  for (int32_t i = 0; i < c->e->n_layers; i++) {
    const kiln_layer_rt *L = &c->e->rt[i];
    if (timed) KILN_TRY(kiln_cuda_event_record(c->events[i], stream));
    kiln_status st = L->kernel->run(L, &ex);
    if (st) return kiln_error_prefix(st, "layer '%s' (%s, %s): ", L->name, L->op, L->kernel_name);
  }
  if (timed) KILN_TRY(kiln_cuda_event_record(c->events[c->e->n_layers], stream));
  return NULL;
}

static kiln_status enqueue_cuda(kiln_context *c, void *stream) {
  if (c->profiling) {
    c->events_recorded = 0;
    KILN_TRY(run_layers(c, stream, 1));
    c->events_recorded = 1;
    return NULL;
  }
  if (!c->use_graph) return run_layers(c, stream, 0);
  if (!stream)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "CUDA graphs cannot be captured on the legacy default stream: pass a "
                      "stream made with cudaStreamCreate");
  if (!c->graph) {
    KILN_TRY(kiln_cuda_capture_begin(stream));
    kiln_status st = run_layers(c, stream, 0);
    kiln_status end = kiln_cuda_capture_end(stream, &c->graph); /* always end the capture */
    if (st) {
      kiln_status_destroy(end);
      kiln_cuda_graph_destroy(c->graph);
      c->graph = NULL;
      return st;
    }
    KILN_TRY(kiln_error_prefix(end, "capturing the CUDA graph: "));
  }
  return kiln_cuda_graph_launch(c->graph, stream);
}

kiln_status kiln_context_enqueue(kiln_context *c, void *stream) {
  if (!c->resolved) KILN_TRY(resolve(c));
  if (c->cuda) return enqueue_cuda(c, stream);
  if (stream) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "a CPU engine runs without a stream (pass NULL)");
  kiln_exec ex = {c->ptrs, c->e->tensors, c->workspace, c->tp, NULL};
  for (int32_t i = 0; i < c->e->n_layers; i++) {
    const kiln_layer_rt *L = &c->e->rt[i];
    double t0 = c->profiling ? now_ms() : 0;
    kiln_status st = L->kernel->run(L, &ex);
    if (c->profiling) c->layer_ms[i] = now_ms() - t0;
    if (st) return kiln_error_prefix(st, "layer '%s' (%s, %s): ", L->name, L->op, L->kernel_name);
  }
  return NULL;
}
