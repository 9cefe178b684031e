#include "ir/graph.h"

#include "core/dtype.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_str(const char *s) {
  if (!s) s = "";
  size_t n = strlen(s);
  char *d = malloc(n + 1);
  if (d) memcpy(d, s, n + 1);
  return d;
}

/* ---- name index ------------------------------------------------------------------------------------ */
static uint32_t hash_str(const char *s) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
  return h;
}

static kiln_status index_rebuild(kiln_graph *g, uint32_t cap) {
  int32_t *idx = malloc(sizeof(int32_t) * cap);
  KILN_CHECK_ALLOC(idx);
  for (uint32_t i = 0; i < cap; i++) idx[i] = -1;
  for (int32_t v = 0; v < g->n_values; v++) {
    uint32_t h = hash_str(g->values[v].name) & (cap - 1);
    while (idx[h] >= 0) h = (h + 1) & (cap - 1);
    idx[h] = v;
  }
  free(g->index);
  g->index = idx;
  g->index_cap = cap;
  return NULL;
}

static kiln_status index_insert(kiln_graph *g, int32_t v) {
  if ((uint32_t)(g->n_values + 1) * 2 > g->index_cap) {
    uint32_t cap = g->index_cap ? g->index_cap : 64;
    while ((uint32_t)(g->n_values + 1) * 2 > cap) cap *= 2;
    return index_rebuild(g, cap); /* includes v, which is already counted in n_values */
  }
  uint32_t h = hash_str(g->values[v].name) & (g->index_cap - 1);
  while (g->index[h] >= 0) h = (h + 1) & (g->index_cap - 1);
  g->index[h] = v;
  return NULL;
}

int32_t kiln_graph_find_value(const kiln_graph *g, const char *name) {
  if (!name || !g->index_cap) return -1;
  uint32_t h = hash_str(name) & (g->index_cap - 1);
  while (g->index[h] >= 0) {
    if (strcmp(g->values[g->index[h]].name, name) == 0) return g->index[h];
    h = (h + 1) & (g->index_cap - 1);
  }
  return -1;
}

/* ---- graph ----------------------------------------------------------------------------------------- */
kiln_status kiln_graph_create(kiln_graph **out) {
  *out = NULL;
  kiln_graph *g = calloc(1, sizeof *g);
  KILN_CHECK_ALLOC(g);
  g->opset = 17;
  g->ir_version = 8;
  *out = g;
  return NULL;
}

void kiln_attr_free(kiln_attr *a) {
  if (!a) return;
  free(a->name);
  free(a->s);
  free(a->ints);
  free(a->floats);
  if (a->strings)
    for (size_t i = 0; i < a->count; i++) free(a->strings[i]);
  free(a->strings);
  if (a->tensors) {
    size_t n = a->type == KILN_ATTR_TENSOR ? 1 : a->count;
    for (size_t i = 0; i < n; i++) free(a->tensors[i].data);
  }
  free(a->tensors);
  memset(a, 0, sizeof *a);
}

static void node_free(kiln_node *n) {
  free(n->name);
  free(n->op_type);
  free(n->domain);
  free(n->inputs);
  free(n->outputs);
  for (int32_t i = 0; i < n->n_attrs; i++) kiln_attr_free(&n->attrs[i]);
  free(n->attrs);
  if (n->params) (n->free_params ? n->free_params : free)(n->params);
  memset(n, 0, sizeof *n);
}

void kiln_graph_destroy(kiln_graph *g) {
  if (!g) return;
  for (int32_t i = 0; i < g->n_values; i++) {
    free(g->values[i].name);
    free(g->values[i].data);
  }
  free(g->values);
  for (int32_t i = 0; i < g->n_nodes; i++) node_free(&g->nodes[i]);
  free(g->nodes);
  free(g->inputs);
  free(g->outputs);
  for (int32_t i = 0; i < g->n_symbols; i++) free(g->symbols[i]);
  free(g->symbols);
  for (int32_t i = 0; i < g->n_opsets; i++) free(g->opsets[i].domain);
  free(g->opsets);
  free(g->name);
  free(g->producer_name);
  free(g->producer_version);
  free(g->domain);
  free(g->doc);
  free(g->index);
  free(g);
}

void kiln_network_destroy(kiln_network *net) { kiln_graph_destroy(net); }

static kiln_status grow(void **arr, int32_t *cap, int32_t need, size_t elem) {
  if (need <= *cap) return NULL;
  if (need > INT32_MAX / 2) return kiln_error(KILN_ERR_OUT_OF_MEMORY, "graph too large");
  int32_t c = *cap ? *cap : 16;
  while (c < need) c *= 2;
  void *p = realloc(*arr, (size_t)c * elem);
  KILN_CHECK_ALLOC(p);
  memset((char *)p + (size_t)*cap * elem, 0, (size_t)(c - *cap) * elem);
  *arr = p;
  *cap = c;
  return NULL;
}

kiln_status kiln_graph_add_value(kiln_graph *g, const char *name, int32_t *out_id) {
  if (!name || !name[0]) return kiln_graph_add_fresh_value(g, "v", out_id);
  if (kiln_graph_find_value(g, name) >= 0)
    return kiln_error(KILN_ERR_PARSE, "tensor name '%s' is defined twice", name);
  KILN_TRY(grow((void **)&g->values, &g->cap_values, g->n_values + 1, sizeof(kiln_value)));
  kiln_value *v = &g->values[g->n_values];
  memset(v, 0, sizeof *v);
  v->name = dup_str(name);
  KILN_CHECK_ALLOC(v->name);
  v->producer = -1;
  kiln_shape_unknown(&v->shape);
  g->n_values++;
  kiln_status st = index_insert(g, g->n_values - 1);
  if (st) {
    g->n_values--;
    free(v->name);
    return st;
  }
  if (out_id) *out_id = g->n_values - 1;
  return NULL;
}

kiln_status kiln_graph_add_fresh_value(kiln_graph *g, const char *hint, int32_t *out_id) {
  char name[256];
  do {
    snprintf(name, sizeof name, "%.200s_kiln%d", hint && hint[0] ? hint : "v", g->unique_counter++);
  } while (kiln_graph_find_value(g, name) >= 0);
  return kiln_graph_add_value(g, name, out_id);
}

kiln_status kiln_graph_rename_value(kiln_graph *g, int32_t id, const char *name) {
  if (kiln_graph_find_value(g, name) >= 0)
    return kiln_error(KILN_ERR_INVALID_ARGUMENT, "tensor name '%s' already exists", name);
  char *d = dup_str(name);
  KILN_CHECK_ALLOC(d);
  free(g->values[id].name);
  g->values[id].name = d;
  return index_rebuild(g, g->index_cap ? g->index_cap : 64);
}

kiln_status kiln_graph_add_symbol(kiln_graph *g, const char *name, int32_t *out_id) {
  for (int32_t i = 0; i < g->n_symbols; i++)
    if (strcmp(g->symbols[i], name) == 0) {
      *out_id = i;
      return NULL;
    }
  char **s = realloc(g->symbols, sizeof(char *) * (size_t)(g->n_symbols + 1));
  KILN_CHECK_ALLOC(s);
  g->symbols = s;
  s[g->n_symbols] = dup_str(name);
  KILN_CHECK_ALLOC(s[g->n_symbols]);
  *out_id = g->n_symbols++;
  return NULL;
}

static kiln_status check_constant_shape(const kiln_shape *shape, kiln_dtype dt, size_t *nbytes) {
  if (!kiln_dtype_is_valid(dt)) return kiln_error(KILN_ERR_UNSUPPORTED, "constant of dtype %s", kiln_dtype_name(dt));
  if (!kiln_shape_is_static(shape)) return kiln_error(KILN_ERR_SHAPE, "constant with a non-static shape");
  int64_t n = kiln_shape_numel(shape);
  if (n < 0 || n > KILN_MAX_ELEMENTS) return kiln_error(KILN_ERR_SHAPE, "constant with too many elements");
  *nbytes = (size_t)n * kiln_dtype_size(dt);
  return NULL;
}

kiln_status kiln_value_take_constant(kiln_graph *g, int32_t id, kiln_dtype dt, const kiln_shape *shape, void *data) {
  size_t nbytes = 0;
  kiln_status st = check_constant_shape(shape, dt, &nbytes);
  if (st) {
    free(data);
    return st;
  }
  if (!data) { /* zero-element constants still get a (1-byte) buffer so "is constant" holds */
    data = malloc(1);
    KILN_CHECK_ALLOC(data);
  }
  kiln_value *v = &g->values[id];
  free(v->data);
  v->data = data;
  v->nbytes = nbytes;
  v->dtype = dt;
  v->shape = *shape;
  return NULL;
}

kiln_status kiln_value_set_constant(kiln_graph *g, int32_t id, kiln_dtype dt, const kiln_shape *shape,
                                    const void *data) {
  size_t nbytes = 0;
  KILN_TRY(check_constant_shape(shape, dt, &nbytes));
  void *copy = malloc(nbytes ? nbytes : 1);
  KILN_CHECK_ALLOC(copy);
  if (nbytes) memcpy(copy, data, nbytes);
  return kiln_value_take_constant(g, id, dt, shape, copy);
}

kiln_status kiln_graph_add_node(kiln_graph *g, const char *name, const char *domain, const char *op_type,
                                const int32_t *inputs, int32_t n_inputs, const int32_t *outputs,
                                int32_t n_outputs, int32_t *out_id) {
  KILN_TRY(grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(kiln_node)));
  kiln_node *n = &g->nodes[g->n_nodes];
  memset(n, 0, sizeof *n);
  char fresh[64];
  if (!name || !name[0]) {
    snprintf(fresh, sizeof fresh, "%.40s_kiln%d", op_type ? op_type : "node", g->unique_counter++);
    name = fresh;
  }
  n->name = dup_str(name);
  n->op_type = dup_str(op_type);
  n->domain = dup_str(domain);
  n->inputs = malloc(sizeof(int32_t) * (size_t)(n_inputs ? n_inputs : 1));
  n->outputs = malloc(sizeof(int32_t) * (size_t)(n_outputs ? n_outputs : 1));
  if (!n->name || !n->op_type || !n->domain || !n->inputs || !n->outputs) {
    node_free(n);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory adding node");
  }
  if (n_inputs) memcpy(n->inputs, inputs, sizeof(int32_t) * (size_t)n_inputs);
  if (n_outputs) memcpy(n->outputs, outputs, sizeof(int32_t) * (size_t)n_outputs);
  n->n_inputs = n_inputs;
  n->n_outputs = n_outputs;
  n->op = kiln_op_lookup(domain, op_type);
  int32_t id = g->n_nodes++;
  for (int32_t i = 0; i < n_outputs; i++)
    if (outputs[i] >= 0) g->values[outputs[i]].producer = id;
  if (out_id) *out_id = id;
  return NULL;
}

void kiln_graph_update_producers(kiln_graph *g) {
  for (int32_t v = 0; v < g->n_values; v++) g->values[v].producer = -1;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    if (g->nodes[i].dead) continue;
    for (int32_t o = 0; o < g->nodes[i].n_outputs; o++)
      if (g->nodes[i].outputs[o] >= 0) g->values[g->nodes[i].outputs[o]].producer = i;
  }
}

int32_t kiln_graph_count_uses(const kiln_graph *g, int32_t id) {
  int32_t uses = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    if (g->nodes[i].dead) continue;
    for (int32_t k = 0; k < g->nodes[i].n_inputs; k++) uses += g->nodes[i].inputs[k] == id;
  }
  for (int32_t k = 0; k < g->n_outputs; k++) uses += g->outputs[k] == id;
  return uses;
}

void kiln_graph_replace_uses(kiln_graph *g, int32_t from, int32_t to) {
  for (int32_t i = 0; i < g->n_nodes; i++) {
    if (g->nodes[i].dead) continue;
    for (int32_t k = 0; k < g->nodes[i].n_inputs; k++)
      if (g->nodes[i].inputs[k] == from) g->nodes[i].inputs[k] = to;
  }
  for (int32_t k = 0; k < g->n_outputs; k++)
    if (g->outputs[k] == from) g->outputs[k] = to;
}

kiln_status kiln_graph_compact(kiln_graph *g) {
  /* 1. drop dead nodes */
  int32_t w = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    if (g->nodes[i].dead) {
      node_free(&g->nodes[i]);
      continue;
    }
    if (w != i) g->nodes[w] = g->nodes[i];
    w++;
  }
  g->n_nodes = w;
  /* 2. drop values nothing refers to (graph inputs/outputs are kept) */
  uint8_t *used = calloc((size_t)g->n_values + 1, 1);
  int32_t *remap = malloc(sizeof(int32_t) * ((size_t)g->n_values + 1));
  if (!used || !remap) {
    free(used);
    free(remap);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory compacting graph");
  }
  for (int32_t i = 0; i < g->n_nodes; i++) {
    for (int32_t k = 0; k < g->nodes[i].n_inputs; k++)
      if (g->nodes[i].inputs[k] >= 0) used[g->nodes[i].inputs[k]] = 1;
    for (int32_t k = 0; k < g->nodes[i].n_outputs; k++)
      if (g->nodes[i].outputs[k] >= 0) used[g->nodes[i].outputs[k]] = 1;
  }
  for (int32_t k = 0; k < g->n_inputs; k++) used[g->inputs[k]] = 1;
  for (int32_t k = 0; k < g->n_outputs; k++) used[g->outputs[k]] = 1;
  w = 0;
  for (int32_t v = 0; v < g->n_values; v++) {
    if (!used[v]) {
      free(g->values[v].name);
      free(g->values[v].data);
      remap[v] = -1;
      continue;
    }
    if (w != v) g->values[w] = g->values[v];
    remap[v] = w++;
  }
  g->n_values = w;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    for (int32_t k = 0; k < g->nodes[i].n_inputs; k++)
      if (g->nodes[i].inputs[k] >= 0) g->nodes[i].inputs[k] = remap[g->nodes[i].inputs[k]];
    for (int32_t k = 0; k < g->nodes[i].n_outputs; k++)
      if (g->nodes[i].outputs[k] >= 0) g->nodes[i].outputs[k] = remap[g->nodes[i].outputs[k]];
  }
  for (int32_t k = 0; k < g->n_inputs; k++) g->inputs[k] = remap[g->inputs[k]];
  for (int32_t k = 0; k < g->n_outputs; k++) g->outputs[k] = remap[g->outputs[k]];
  free(used);
  free(remap);
  kiln_graph_update_producers(g);
  return index_rebuild(g, g->index_cap ? g->index_cap : 64);
}

/* ---- shapes ---------------------------------------------------------------------------------------- */
void kiln_shape_init(kiln_shape *s, int32_t rank, const int64_t *dims) {
  memset(s, 0, sizeof *s);
  s->rank = rank;
  for (int32_t i = 0; i < KILN_MAX_RANK; i++) s->sym[i] = -1;
  for (int32_t i = 0; i < rank && i < KILN_MAX_RANK; i++) s->dims[i] = dims ? dims[i] : 0;
}

void kiln_shape_unknown(kiln_shape *s) { kiln_shape_init(s, -1, NULL); }

void kiln_shape_dynamic(kiln_shape *s, int32_t rank) {
  kiln_shape_init(s, rank, NULL);
  for (int32_t i = 0; i < rank && i < KILN_MAX_RANK; i++) s->dims[i] = KILN_DIM_DYNAMIC;
}

bool kiln_shape_is_static(const kiln_shape *s) {
  if (s->rank < 0 || s->rank > KILN_MAX_RANK) return false;
  for (int32_t i = 0; i < s->rank; i++)
    if (s->dims[i] < 0) return false;
  return true;
}

int64_t kiln_shape_numel(const kiln_shape *s) {
  if (!kiln_shape_is_static(s)) return -1;
  int64_t n = 1;
  for (int32_t i = 0; i < s->rank; i++) {
    if (s->dims[i] != 0 && n > KILN_MAX_ELEMENTS / s->dims[i]) return -1;
    n *= s->dims[i];
  }
  return n;
}

bool kiln_shape_equal(const kiln_shape *a, const kiln_shape *b) {
  if (a->rank != b->rank) return false;
  for (int32_t i = 0; i < a->rank; i++) {
    if (a->dims[i] != b->dims[i]) return false;
    if (a->dims[i] < 0 && a->sym[i] != b->sym[i]) return false;
  }
  return true;
}

char *kiln_shape_format(const kiln_graph *g, const kiln_shape *s, char *buf, size_t len) {
  if (!len) return buf;
  buf[0] = 0;
  if (s->rank < 0) {
    snprintf(buf, len, "?");
    return buf;
  }
  if (s->rank == 0) {
    snprintf(buf, len, "scalar");
    return buf;
  }
  size_t used = 0;
  for (int32_t i = 0; i < s->rank && used < len; i++) {
    const char *sep = i ? "x" : "";
    int w;
    if (s->dims[i] >= 0) w = snprintf(buf + used, len - used, "%s%" PRId64, sep, s->dims[i]);
    else if (g && s->sym[i] >= 0 && s->sym[i] < g->n_symbols)
      w = snprintf(buf + used, len - used, "%s%s", sep, g->symbols[s->sym[i]]);
    else w = snprintf(buf + used, len - used, "%s?", sep);
    if (w < 0) break;
    used += (size_t)w;
  }
  return buf;
}

int64_t kiln_tensor_numel(const kiln_tensor *t) {
  int64_t n = 1;
  for (int32_t i = 0; i < t->rank; i++) n *= t->dims[i];
  return n;
}

size_t kiln_tensor_nbytes(const kiln_tensor *t) {
  return (size_t)kiln_tensor_numel(t) * kiln_dtype_size(t->dtype);
}

void kiln_value_as_tensor(const kiln_value *v, kiln_tensor *out) {
  memset(out, 0, sizeof *out);
  out->dtype = v->dtype;
  out->rank = v->shape.rank < 0 ? 0 : v->shape.rank;
  for (int32_t i = 0; i < out->rank; i++) out->dims[i] = v->shape.dims[i];
  out->data = v->data;
}

/* ---- attributes ------------------------------------------------------------------------------------ */
kiln_attr *kiln_node_find_attr(const kiln_node *n, const char *name) {
  for (int32_t i = 0; i < n->n_attrs; i++)
    if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
  return NULL;
}

static const char *attr_type_name(kiln_attr_type t) {
  static const char *names[] = {"undefined", "float",  "int",     "string",        "tensor",
                                "graph",     "floats", "ints",    "strings",       "tensors",
                                "graphs",    "sparse tensor", "sparse tensors", "type proto", "type protos"};
  return (t >= 0 && t <= KILN_ATTR_TYPE_PROTOS) ? names[t] : "?";
}

static kiln_status wrong_kind(const kiln_attr *a, kiln_attr_type want) {
  return kiln_error(KILN_ERR_PARSE, "attribute '%s' is %s, expected %s", a->name, attr_type_name(a->type),
                    attr_type_name(want));
}

kiln_status kiln_node_get_int(const kiln_node *n, const char *name, int64_t def, int64_t *out) {
  const kiln_attr *a = kiln_node_find_attr(n, name);
  *out = def;
  if (!a) return NULL;
  if (a->type != KILN_ATTR_INT) return wrong_kind(a, KILN_ATTR_INT);
  *out = a->i;
  return NULL;
}

kiln_status kiln_node_get_float(const kiln_node *n, const char *name, float def, float *out) {
  const kiln_attr *a = kiln_node_find_attr(n, name);
  *out = def;
  if (!a) return NULL;
  if (a->type == KILN_ATTR_INT) { /* some exporters write integral floats as ints */
    *out = (float)a->i;
    return NULL;
  }
  if (a->type != KILN_ATTR_FLOAT) return wrong_kind(a, KILN_ATTR_FLOAT);
  *out = a->f;
  return NULL;
}

kiln_status kiln_node_get_string(const kiln_node *n, const char *name, const char *def, const char **out) {
  const kiln_attr *a = kiln_node_find_attr(n, name);
  *out = def;
  if (!a) return NULL;
  if (a->type != KILN_ATTR_STRING) return wrong_kind(a, KILN_ATTR_STRING);
  *out = a->s ? a->s : "";
  return NULL;
}

kiln_status kiln_node_get_ints(const kiln_node *n, const char *name, const int64_t **out, size_t *count) {
  const kiln_attr *a = kiln_node_find_attr(n, name);
  *out = NULL;
  *count = 0;
  if (!a) return NULL;
  if (a->type != KILN_ATTR_INTS) return wrong_kind(a, KILN_ATTR_INTS);
  *out = a->ints;
  *count = a->count;
  return NULL;
}

kiln_status kiln_node_get_floats(const kiln_node *n, const char *name, const float **out, size_t *count) {
  const kiln_attr *a = kiln_node_find_attr(n, name);
  *out = NULL;
  *count = 0;
  if (!a) return NULL;
  if (a->type != KILN_ATTR_FLOATS) return wrong_kind(a, KILN_ATTR_FLOATS);
  *out = a->floats;
  *count = a->count;
  return NULL;
}

kiln_status kiln_node_get_tensor(const kiln_node *n, const char *name, const kiln_tensor **out) {
  const kiln_attr *a = kiln_node_find_attr(n, name);
  *out = NULL;
  if (!a) return NULL;
  if (a->type != KILN_ATTR_TENSOR) return wrong_kind(a, KILN_ATTR_TENSOR);
  *out = a->tensors;
  return NULL;
}

void kiln_node_set_params(kiln_node *n, void *params, void (*free_fn)(void *)) {
  if (n->params) (n->free_params ? n->free_params : free)(n->params);
  n->params = params;
  n->free_params = free_fn;
}

kiln_status kiln_node_append_attr(kiln_node *n, kiln_attr *a) {
  kiln_node_remove_attr(n, a->name);
  kiln_attr *arr = realloc(n->attrs, sizeof(kiln_attr) * (size_t)(n->n_attrs + 1));
  if (!arr) {
    kiln_attr_free(a);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory adding attribute");
  }
  n->attrs = arr;
  n->attrs[n->n_attrs++] = *a;
  memset(a, 0, sizeof *a);
  return NULL;
}

void kiln_node_remove_attr(kiln_node *n, const char *name) {
  for (int32_t i = 0; i < n->n_attrs; i++) {
    if (strcmp(n->attrs[i].name, name) != 0) continue;
    kiln_attr_free(&n->attrs[i]);
    memmove(&n->attrs[i], &n->attrs[i + 1], sizeof(kiln_attr) * (size_t)(n->n_attrs - i - 1));
    n->n_attrs--;
    return;
  }
}

static kiln_status new_attr(kiln_attr *a, const char *name, kiln_attr_type t) {
  memset(a, 0, sizeof *a);
  a->name = dup_str(name);
  a->type = t;
  KILN_CHECK_ALLOC(a->name);
  return NULL;
}

kiln_status kiln_node_set_int(kiln_node *n, const char *name, int64_t v) {
  kiln_attr a;
  KILN_TRY(new_attr(&a, name, KILN_ATTR_INT));
  a.i = v;
  return kiln_node_append_attr(n, &a);
}

kiln_status kiln_node_set_float(kiln_node *n, const char *name, float v) {
  kiln_attr a;
  KILN_TRY(new_attr(&a, name, KILN_ATTR_FLOAT));
  a.f = v;
  return kiln_node_append_attr(n, &a);
}

kiln_status kiln_node_set_string(kiln_node *n, const char *name, const char *s) {
  kiln_attr a;
  KILN_TRY(new_attr(&a, name, KILN_ATTR_STRING));
  a.s = dup_str(s);
  a.s_len = strlen(s);
  if (!a.s) {
    kiln_attr_free(&a);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  }
  return kiln_node_append_attr(n, &a);
}

kiln_status kiln_node_set_ints(kiln_node *n, const char *name, const int64_t *v, size_t count) {
  kiln_attr a;
  KILN_TRY(new_attr(&a, name, KILN_ATTR_INTS));
  a.ints = malloc(sizeof(int64_t) * (count ? count : 1));
  if (!a.ints) {
    kiln_attr_free(&a);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  }
  if (count) memcpy(a.ints, v, sizeof(int64_t) * count);
  a.count = count;
  return kiln_node_append_attr(n, &a);
}

kiln_status kiln_node_set_floats(kiln_node *n, const char *name, const float *v, size_t count) {
  kiln_attr a;
  KILN_TRY(new_attr(&a, name, KILN_ATTR_FLOATS));
  a.floats = malloc(sizeof(float) * (count ? count : 1));
  if (!a.floats) {
    kiln_attr_free(&a);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  }
  if (count) memcpy(a.floats, v, sizeof(float) * count);
  a.count = count;
  return kiln_node_append_attr(n, &a);
}

kiln_status kiln_node_set_tensor(kiln_node *n, const char *name, const kiln_tensor *t) {
  kiln_attr a;
  KILN_TRY(new_attr(&a, name, KILN_ATTR_TENSOR));
  a.tensors = calloc(1, sizeof(kiln_tensor));
  size_t nb = kiln_tensor_nbytes(t);
  void *d = malloc(nb ? nb : 1);
  if (!a.tensors || !d) {
    free(d);
    kiln_attr_free(&a);
    return kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  }
  *a.tensors = *t;
  if (nb) memcpy(d, t->data, nb);
  a.tensors->data = d;
  a.count = 1;
  return kiln_node_append_attr(n, &a);
}

/* ---- helpers for op families ---------------------------------------------------------------------- */
kiln_value *kiln_node_input(const kiln_graph *g, const kiln_node *n, int i) {
  if (i < 0 || i >= n->n_inputs || n->inputs[i] < 0) return NULL;
  return &g->values[n->inputs[i]];
}

kiln_value *kiln_node_output(const kiln_graph *g, const kiln_node *n, int i) {
  if (i < 0 || i >= n->n_outputs || n->outputs[i] < 0) return NULL;
  return &g->values[n->outputs[i]];
}

kiln_status kiln_value_read_ints(const kiln_value *v, int64_t *out, int64_t max, int64_t *count) {
  if (!v->data) return kiln_error(KILN_ERR_UNSUPPORTED, "'%s' must be a constant", v->name);
  if (!kiln_dtype_is_int(v->dtype) && v->dtype != KILN_DTYPE_BOOL)
    return kiln_error(KILN_ERR_SHAPE, "'%s' must be an integer tensor, is %s", v->name, kiln_dtype_name(v->dtype));
  int64_t n = kiln_shape_numel(&v->shape);
  if (n < 0 || n > max) return kiln_error(KILN_ERR_SHAPE, "'%s' has too many elements (%" PRId64 ")", v->name, n);
  for (int64_t i = 0; i < n; i++) out[i] = kiln_dtype_load_i64(v->dtype, v->data, i);
  *count = n;
  return NULL;
}

kiln_status kiln_value_read_floats(const kiln_value *v, double *out, int64_t max, int64_t *count) {
  if (!v->data) return kiln_error(KILN_ERR_UNSUPPORTED, "'%s' must be a constant", v->name);
  int64_t n = kiln_shape_numel(&v->shape);
  if (n < 0 || n > max) return kiln_error(KILN_ERR_SHAPE, "'%s' has too many elements (%" PRId64 ")", v->name, n);
  for (int64_t i = 0; i < n; i++) out[i] = kiln_dtype_load_f64(v->dtype, v->data, i);
  *count = n;
  return NULL;
}
