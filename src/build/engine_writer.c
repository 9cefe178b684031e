#include "build/engine_writer.h"

#include "core/hash.h"

#include <stdlib.h>
#include <string.h>

typedef struct buf {
  uint8_t *p;
  size_t n, cap;
} buf;

struct kiln_engine_writer {
  buf strings, params, weights, indices;
  kiln_tensor_rec *tensors;
  int32_t n_tensors, cap_tensors;
  kiln_layer_rec *layers;
  int32_t n_layers, cap_layers;
  kiln_binding_rec *bindings;
  int32_t n_bindings;
  int oom;
};

static size_t align_to(size_t n, size_t a) { return (n + a - 1) / a * a; }

static int buf_reserve(buf *b, size_t n) {
  if (b->n + n <= b->cap) return 1;
  size_t c = b->cap ? b->cap : 4096;
  while (c < b->n + n) c *= 2;
  uint8_t *q = realloc(b->p, c);
  if (!q) return 0;
  b->p = q;
  b->cap = c;
  return 1;
}

static int buf_put(buf *b, const void *d, size_t n) {
  if (!buf_reserve(b, n)) return 0;
  if (n) {
    if (d) memcpy(b->p + b->n, d, n);
    else memset(b->p + b->n, 0, n);
  }
  b->n += n;
  return 1;
}

static int buf_align(buf *b, size_t a) { return buf_put(b, NULL, align_to(b->n, a) - b->n); }

kiln_status kiln_ew_create(kiln_engine_writer **out) {
  *out = calloc(1, sizeof **out);
  KILN_CHECK_ALLOC(*out);
  if (!buf_put(&(*out)->strings, "", 1)) return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory"); /* offset 0 = "" */
  return NULL;
}

void kiln_ew_destroy(kiln_engine_writer *w) {
  if (!w) return;
  free(w->strings.p);
  free(w->params.p);
  free(w->weights.p);
  free(w->indices.p);
  free(w->tensors);
  free(w->layers);
  free(w->bindings);
  free(w);
}

uint32_t kiln_ew_string(kiln_engine_writer *w, const char *s) {
  if (!s || !s[0]) return 0;
  size_t off = w->strings.n;
  if (!buf_put(&w->strings, s, strlen(s) + 1)) w->oom = 1;
  return (uint32_t)off;
}

kiln_status kiln_ew_add_tensor(kiln_engine_writer *w, const char *name, uint32_t dtype, uint32_t rank,
                               const int64_t *dims, uint32_t storage, int32_t alias_of, uint64_t view_offset,
                               int32_t *out_id) {
  if (rank > 8) return kiln_error(KILN_ERR_UNSUPPORTED, "tensor '%s' has rank %u", name, rank);
  if (w->n_tensors == w->cap_tensors) {
    int32_t c = w->cap_tensors ? w->cap_tensors * 2 : 256;
    kiln_tensor_rec *t = realloc(w->tensors, sizeof *t * (size_t)c);
    KILN_CHECK_ALLOC(t);
    w->tensors = t;
    w->cap_tensors = c;
  }
  kiln_tensor_rec *t = &w->tensors[w->n_tensors];
  memset(t, 0, sizeof *t);
  t->name = kiln_ew_string(w, name);
  t->dtype = dtype;
  t->rank = rank;
  uint64_t numel = 1;
  for (uint32_t i = 0; i < rank; i++) {
    t->dims[i] = dims[i];
    numel *= (uint64_t)dims[i];
  }
  static const uint8_t sizes[17] = {0, 4, 1, 1, 2, 2, 4, 8, 0, 1, 2, 8, 4, 8, 0, 0, 2};
  t->nbytes = numel * (dtype < 17 ? sizes[dtype] : 0);
  t->storage = storage;
  t->slot = -1;
  t->alias_of = alias_of;
  t->offset = storage == KILN_STORAGE_VIEW ? view_offset : 0;
  *out_id = w->n_tensors++;
  return NULL;
}

kiln_status kiln_ew_set_layout(kiln_engine_writer *w, int32_t id, uint32_t layout, int64_t pixel_stride) {
  if (id < 0 || id >= w->n_tensors) return kiln_error(KILN_ERR_INTERNAL, "no tensor %d", id);
  kiln_tensor_rec *t = &w->tensors[id];
  if (layout == KILN_LAYOUT_LINEAR) {
    t->layout = layout;
    t->pixel_stride = 0;
    return NULL;
  }
  if (layout != KILN_LAYOUT_NHWC || t->rank != 4 || (pixel_stride && pixel_stride < t->dims[1]))
    return kiln_error(KILN_ERR_INTERNAL, "tensor %d: bad layout %u (rank %u, pixel stride %lld)", id, layout, t->rank,
                      (long long)pixel_stride);
  t->layout = layout;
  t->pixel_stride = pixel_stride ? pixel_stride : t->dims[1];
  return NULL;
}

kiln_status kiln_ew_set_row_stride(kiln_engine_writer *w, int32_t id, int64_t row_stride) {
  if (id < 0 || id >= w->n_tensors) return kiln_error(KILN_ERR_INTERNAL, "no tensor %d", id);
  kiln_tensor_rec *t = &w->tensors[id];
  int64_t len = kiln_tensor_row_len(t);
  if (t->layout != KILN_LAYOUT_LINEAR || t->storage != KILN_STORAGE_VIEW || t->rank < 2 || row_stride < len)
    return kiln_error(KILN_ERR_INTERNAL, "tensor %d: bad row stride %lld (rank %u, rows of %lld)", id, (long long)row_stride,
                      t->rank, (long long)len);
  t->pixel_stride = row_stride == len ? 0 : row_stride; /* dense rows: the plain LINEAR record */
  return NULL;
}

kiln_status kiln_ew_add_blob(kiln_engine_writer *w, const void *data, size_t size, uint64_t *out_offset) {
  if (!buf_align(&w->weights, KILN_ENGINE_ALIGN)) return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  *out_offset = w->weights.n;
  if (!buf_put(&w->weights, data, size)) return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  return NULL;
}

kiln_status kiln_ew_add_weight(kiln_engine_writer *w, const char *name, uint32_t dtype, uint32_t rank,
                               const int64_t *dims, const void *data, int32_t *out_id) {
  KILN_TRY(kiln_ew_add_tensor(w, name, dtype, rank, dims, KILN_STORAGE_WEIGHT, -1, 0, out_id));
  kiln_tensor_rec *t = &w->tensors[*out_id];
  uint64_t off;
  KILN_TRY(kiln_ew_add_blob(w, data, t->nbytes, &off));
  t->offset = off;
  return NULL;
}

kiln_status kiln_ew_add_binding(kiln_engine_writer *w, int32_t id, int is_input) {
  kiln_binding_rec *b = realloc(w->bindings, sizeof *b * (size_t)(w->n_bindings + 1));
  KILN_CHECK_ALLOC(b);
  w->bindings = b;
  b[w->n_bindings] = (kiln_binding_rec){(uint32_t)id, (uint32_t)is_input};
  w->tensors[id].storage = KILN_STORAGE_IO;
  w->tensors[id].slot = w->n_bindings++;
  w->tensors[id].offset = 0;
  return NULL;
}

kiln_status kiln_ew_add_layer(kiln_engine_writer *w, const char *name, const char *kernel, const char *op,
                              const int32_t *inputs, uint32_t n_inputs, const int32_t *outputs, uint32_t n_outputs,
                              const void *params, size_t params_size, uint64_t workspace, uint64_t macs) {
  if (w->n_layers == w->cap_layers) {
    int32_t c = w->cap_layers ? w->cap_layers * 2 : 256;
    kiln_layer_rec *l = realloc(w->layers, sizeof *l * (size_t)c);
    KILN_CHECK_ALLOC(l);
    w->layers = l;
    w->cap_layers = c;
  }
  kiln_layer_rec *l = &w->layers[w->n_layers];
  memset(l, 0, sizeof *l);
  l->name = kiln_ew_string(w, name);
  l->kernel = kiln_ew_string(w, kernel);
  l->op = kiln_ew_string(w, op);
  l->n_inputs = n_inputs;
  l->n_outputs = n_outputs;
  l->io_index = (uint32_t)(w->indices.n / sizeof(int32_t));
  if (!buf_put(&w->indices, inputs, sizeof(int32_t) * n_inputs) ||
      !buf_put(&w->indices, outputs, sizeof(int32_t) * n_outputs) || !buf_align(&w->params, 8))
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  l->params_offset = w->params.n;
  l->params_size = params_size;
  if (!buf_put(&w->params, params, params_size)) return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  l->workspace = workspace;
  l->macs = macs;
  w->n_layers++;
  return NULL;
}

int32_t kiln_ew_num_layers(const kiln_engine_writer *w) { return w->n_layers; }

kiln_status kiln_ew_layer_params(kiln_engine_writer *w, int32_t layer, void **params, size_t *size) {
  if (layer < 0 || layer >= w->n_layers) return kiln_error(KILN_ERR_INTERNAL, "no layer %d", layer);
  *params = w->params.p + w->layers[layer].params_offset;
  *size = (size_t)w->layers[layer].params_size;
  return NULL;
}

kiln_status kiln_ew_set_layer_workspace(kiln_engine_writer *w, int32_t layer, uint64_t workspace) {
  if (layer < 0 || layer >= w->n_layers) return kiln_error(KILN_ERR_INTERNAL, "no layer %d", layer);
  w->layers[layer].workspace = workspace;
  return NULL;
}

int32_t kiln_ew_num_tensors(const kiln_engine_writer *w) { return w->n_tensors; }
const kiln_tensor_rec *kiln_ew_tensor(const kiln_engine_writer *w, int32_t id) { return &w->tensors[id]; }

kiln_status kiln_ew_finish(kiln_engine_writer *w, const kiln_target_rec *target, const kiln_options_rec *options,
                           void **out, size_t *out_size) {
  *out = NULL;
  *out_size = 0;
  if (w->oom) return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory building the engine");
  kiln_plan_rec plan = {0};
  KILN_TRY(kiln_memory_plan(w->tensors, w->n_tensors, w->layers, w->n_layers, (const int32_t *)w->indices.p,
                            &plan.arena_size, &plan.naive_size));
  for (int32_t i = 0; i < w->n_layers; i++)
    if (w->layers[i].workspace > plan.workspace_size) plan.workspace_size = w->layers[i].workspace;
  plan.weights_size = w->weights.n;
  struct {
    uint32_t kind;
    const void *data;
    size_t size, align;
  } secs[] = {
      {KILN_SECTION_TARGET, target, sizeof *target, 8},
      {KILN_SECTION_OPTIONS, options, sizeof *options, 8},
      {KILN_SECTION_PLAN, &plan, sizeof plan, 8},
      {KILN_SECTION_BINDINGS, w->bindings, sizeof(kiln_binding_rec) * (size_t)w->n_bindings, 8},
      {KILN_SECTION_TENSORS, w->tensors, sizeof(kiln_tensor_rec) * (size_t)w->n_tensors, 8},
      {KILN_SECTION_LAYERS, w->layers, sizeof(kiln_layer_rec) * (size_t)w->n_layers, 8},
      {KILN_SECTION_INDICES, w->indices.p, w->indices.n, 8},
      {KILN_SECTION_PARAMS, w->params.p, w->params.n, 8},
      {KILN_SECTION_STRINGS, w->strings.p, w->strings.n, 8},
      {KILN_SECTION_WEIGHTS, w->weights.p, w->weights.n, KILN_ENGINE_ALIGN},
  };
  enum { N = sizeof secs / sizeof secs[0] };
  buf f = {0};
  kiln_engine_header h;
  memset(&h, 0, sizeof h);
  kiln_section_rec table[N];
  memset(table, 0, sizeof table);
  int ok = buf_put(&f, NULL, sizeof h) && buf_align(&f, 8);
  size_t table_off = f.n;
  ok = ok && buf_put(&f, NULL, sizeof table);
  for (int i = 0; ok && i < N; i++) {
    ok = buf_align(&f, secs[i].align);
    table[i].kind = secs[i].kind;
    table[i].offset = f.n;
    table[i].size = secs[i].size;
    ok = ok && buf_put(&f, secs[i].data, secs[i].size);
  }
  if (!ok) {
    free(f.p);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory serializing the engine");
  }
  memcpy(f.p + table_off, table, sizeof table);
  memcpy(h.magic, KILN_ENGINE_MAGIC, 8);
  h.format_version = KILN_ENGINE_FORMAT_VERSION;
  h.endian_tag = KILN_ENGINE_ENDIAN_TAG;
  strncpy(h.kiln_version, KILN_VERSION_STRING, sizeof h.kiln_version - 1);
  h.file_size = f.n;
  h.section_table_offset = table_off;
  h.n_sections = N;
  h.header_size = sizeof h;
  h.checksum = 0;
  memcpy(f.p, &h, sizeof h);
  uint64_t sum = kiln_hash64(f.p, sizeof h, 0);
  h.checksum = kiln_hash64(f.p + sizeof h, f.n - sizeof h, sum);
  memcpy(f.p, &h, sizeof h);
  *out = f.p;
  *out_size = f.n;
  return NULL;
}
