/*
 * Activation memory planning: every ARENA tensor (views count as uses of their base) lives from the
 * layer that first writes it to the last layer that reads it. Tensors are placed largest first at the
 * lowest 64-byte-aligned offset that does not overlap a placed tensor whose lifetime intersects -
 * the greedy-by-size heuristic TensorRT's and TFLite's planners use. Deterministic: ties break by id.
 */
#include "build/engine_writer.h"

#include <stdlib.h>
#include <string.h>

#define ALIGN_UP(x) (((x) + KILN_ENGINE_ALIGN - 1) / KILN_ENGINE_ALIGN * KILN_ENGINE_ALIGN)

typedef struct span {
  int32_t id;
  int32_t first, last;
  uint64_t size, offset;
} span;


static int by_size_desc(const void *a, const void *b) {
  const span *x = a, *y = b;
  if (x->size != y->size) return x->size < y->size ? 1 : -1;
  return x->id - y->id;
}
static int by_offset(const void *a, const void *b) {
  const span *x = *(const span *const *)a, *y = *(const span *const *)b;
  if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
  return x->id - y->id;
}

static int32_t root_of(const kiln_tensor_rec *t, int32_t id) {
  while (t[id].storage == KILN_STORAGE_VIEW) id = t[id].alias_of;
  return id;
}

kiln_status kiln_memory_plan(kiln_tensor_rec *tensors, int32_t n_tensors, const kiln_layer_rec *layers, int32_t n_layers,
                             const int32_t *indices, uint64_t *arena_size, uint64_t *naive_size) {
  int32_t *first = malloc(sizeof(int32_t) * ((size_t)n_tensors + 1));
  int32_t *last = malloc(sizeof(int32_t) * ((size_t)n_tensors + 1));
  span *spans = malloc(sizeof(span) * ((size_t)n_tensors + 1));
  span **placed = malloc(sizeof(span *) * ((size_t)n_tensors + 1));
  if (!first || !last || !spans || !placed) {
    free(first);
    free(last);
    free(spans);
    free(placed);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory planning memory");
  }
  for (int32_t i = 0; i < n_tensors; i++) first[i] = INT32_MAX, last[i] = -1;
  for (int32_t l = 0; l < n_layers; l++) {
    uint32_t n = layers[l].n_inputs + layers[l].n_outputs;
    for (uint32_t k = 0; k < n; k++) {
      int32_t id = indices[layers[l].io_index + k];
      if (id < 0) continue;
      int32_t r = root_of(tensors, id);
      if (l < first[r]) first[r] = l;
      if (l > last[r]) last[r] = l;
    }
  }
  int32_t n_spans = 0;
  uint64_t naive = 0;
  for (int32_t i = 0; i < n_tensors; i++) {
    if (tensors[i].storage != KILN_STORAGE_ARENA) continue;
    tensors[i].offset = 0;
    if (last[i] < 0) continue; /* never touched */
    spans[n_spans++] = (span){i, first[i], last[i], ALIGN_UP(kiln_tensor_span(&tensors[i])), 0};
    naive += ALIGN_UP(kiln_tensor_span(&tensors[i]));
  }
  qsort(spans, (size_t)n_spans, sizeof(span), by_size_desc);
  uint64_t arena = 0;
  int32_t n_placed = 0;
  for (int32_t s = 0; s < n_spans; s++) {
    span *cur = &spans[s];
    uint64_t offset = 0;
    /* placed is kept sorted by offset: walk it, skipping past every overlapping live span */
    for (int32_t p = 0; p < n_placed; p++) {
      const span *o = placed[p];
      if (o->last < cur->first || o->first > cur->last) continue; /* not alive at the same time */
      if (o->offset >= offset + cur->size) break;                 /* fits in the gap before o */
      if (o->offset + o->size > offset) offset = o->offset + o->size;
    }
    cur->offset = offset;
    tensors[cur->id].offset = offset;
    if (offset + cur->size > arena) arena = offset + cur->size;
    placed[n_placed++] = cur;
    qsort(placed, (size_t)n_placed, sizeof(span *), by_offset);
  }
  free(first);
  free(last);
  free(spans);
  free(placed);
  *arena_size = arena;
  *naive_size = naive;
  return NULL;
}
