/*
 * ONNX export: kiln graph -> ModelProto (protobuf-c) -> file.
 *
 * The protobuf structures are built around the graph's own memory: names, attribute arrays and constant
 * buffers are pointed at, not copied (packing only reads them), so exporting a model with hundreds of MB
 * of weights costs one extra buffer (the packed file), not two. Everything the exporter does allocate
 * goes into a small arena that is freed in one place, whatever path the export takes.
 *
 * What goes where:
 *   inputs       the real graph inputs (g->inputs); in IR < 4 also every initializer (the IR 3 rule)
 *   initializers every constant value that a live node reads or that is a graph output, unless a live
 *                node produces it (shape inference puts data on e.g. Shape outputs; writing those as
 *                initializers too would define the name twice)
 *   value_info   node outputs with a known dtype that are not graph outputs
 *   nodes        live nodes, in topological order (stable: the graph's order where that is valid)
 */
#include "onnx/onnx.h"

#include "core/dtype.h"
#include "core/file.h"

#include "onnx.pb-c.h"

#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* protobuf messages (and so ONNX files without external data) are limited to 2 GiB. */
#define MAX_PROTO_BYTES ((size_t)INT32_MAX)

/* ---- arena: every allocation of one export, freed together -------------------------------------- */
typedef struct arena {
  void **ptrs;
  size_t n, cap;
} arena;

static void *arena_calloc(arena *a, size_t count, size_t size) {
  if (size && count > SIZE_MAX / size) return NULL;
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 256;
    void **p = realloc(a->ptrs, cap * sizeof *p);
    if (!p) return NULL;
    a->ptrs = p;
    a->cap = cap;
  }
  void *m = calloc(count ? count : 1, size ? size : 1);
  if (m) a->ptrs[a->n++] = m;
  return m;
}

static void arena_free(arena *a) {
  for (size_t i = 0; i < a->n; i++) free(a->ptrs[i]);
  free(a->ptrs);
}

typedef struct export_ctx {
  const kiln_graph *g;
  arena mem;
  size_t tensor_bytes; /* running total of tensor payloads, to refuse > 2 GiB before packing */
} export_ctx;

#define NEW(c, T) ((T *)arena_calloc(&(c)->mem, 1, sizeof(T)))
#define NEW_ARRAY(c, T, n) ((T *)arena_calloc(&(c)->mem, (n), sizeof(T)))

static const char *str_or_empty(const char *s) { return s ? s : ""; }

/* ---- tensors and types ----------------------------------------------------------------------------- */
static kiln_status too_large(export_ctx *c, size_t add, const char *what, const char *name) {
  if (add > MAX_PROTO_BYTES || c->tensor_bytes > MAX_PROTO_BYTES - add)
    return kiln_error(KILN_ERR_UNSUPPORTED,
                      "the model is larger than 2 GB (reached at %s '%s'); ONNX files without external data are "
                      "limited to 2 GB, and kiln does not write external data",
                      what, name);
  c->tensor_bytes += add;
  return NULL;
}

/* A dense TensorProto whose raw_data points at `data` (little-endian, which kiln's buffers already are). */
static kiln_status make_tensor(export_ctx *c, const char *name, kiln_dtype dt, int32_t rank, const int64_t *dims,
                               const void *data, size_t nbytes, const char *what, Onnx__TensorProto **out) {
  const char *nm = str_or_empty(name);
  if (!kiln_dtype_is_valid((int)dt))
    return kiln_error(KILN_ERR_UNSUPPORTED, "%s '%s' has dtype %d, which cannot be written", what, nm, (int)dt);
  if (rank < 0 || rank > KILN_MAX_RANK)
    return kiln_error(KILN_ERR_INTERNAL, "%s '%s' has no valid shape (rank %d)", what, nm, (int)rank);
  int64_t numel = 1;
  for (int32_t i = 0; i < rank; i++) {
    if (dims[i] < 0) return kiln_error(KILN_ERR_INTERNAL, "%s '%s' has a dynamic dim but holds data", what, nm);
    if (dims[i] && numel > KILN_MAX_ELEMENTS / dims[i])
      return kiln_error(KILN_ERR_INTERNAL, "%s '%s' has an absurd size", what, nm);
    numel *= dims[i];
  }
  /* Never write a tensor whose payload disagrees with its shape: readers would refuse the file. */
  if ((size_t)numel * kiln_dtype_size(dt) != nbytes || (nbytes && !data))
    return kiln_error(KILN_ERR_INTERNAL, "%s '%s' holds %zu bytes but its shape needs %zu", what, nm, nbytes,
                      (size_t)numel * kiln_dtype_size(dt));
  KILN_TRY(too_large(c, nbytes, what, nm));
  Onnx__TensorProto *t = NEW(c, Onnx__TensorProto);
  int64_t *d = NEW_ARRAY(c, int64_t, (size_t)(rank ? rank : 1));
  KILN_CHECK_ALLOC(t && d);
  onnx__tensor_proto__init(t);
  if (rank) memcpy(d, dims, sizeof(int64_t) * (size_t)rank);
  t->n_dims = (size_t)rank;
  t->dims = d;
  t->has_data_type = 1;
  t->data_type = (int32_t)dt;
  t->name = name && name[0] ? (char *)name : NULL;
  t->has_raw_data = 1;
  t->raw_data.len = nbytes;
  t->raw_data.data = (uint8_t *)data;
  *out = t;
  return NULL;
}

static kiln_status make_type(export_ctx *c, kiln_dtype dt, const kiln_shape *s, Onnx__TypeProto **out) {
  Onnx__TypeProto *tp = NEW(c, Onnx__TypeProto);
  Onnx__TypeProto__Tensor *tt = NEW(c, Onnx__TypeProto__Tensor);
  KILN_CHECK_ALLOC(tp && tt);
  onnx__type_proto__init(tp);
  onnx__type_proto__tensor__init(tt);
  tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  tp->tensor_type = tt;
  if (dt != KILN_DTYPE_UNDEFINED) {
    tt->has_elem_type = 1;
    tt->elem_type = (int32_t)dt;
  }
  if (s->rank < 0) { /* unknown rank: ONNX says so by leaving the shape out */
    *out = tp;
    return NULL;
  }
  if (s->rank > KILN_MAX_RANK) return kiln_error(KILN_ERR_INTERNAL, "shape of rank %d", (int)s->rank);
  Onnx__TensorShapeProto *sp = NEW(c, Onnx__TensorShapeProto);
  Onnx__TensorShapeProto__Dimension **dims = NEW_ARRAY(c, Onnx__TensorShapeProto__Dimension *, (size_t)s->rank);
  KILN_CHECK_ALLOC(sp && dims);
  onnx__tensor_shape_proto__init(sp);
  for (int32_t i = 0; i < s->rank; i++) {
    Onnx__TensorShapeProto__Dimension *d = NEW(c, Onnx__TensorShapeProto__Dimension);
    KILN_CHECK_ALLOC(d);
    onnx__tensor_shape_proto__dimension__init(d);
    if (s->dims[i] >= 0) {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
      d->dim_value = s->dims[i];
    } else if (s->sym[i] >= 0 && s->sym[i] < c->g->n_symbols && c->g->symbols[s->sym[i]]) {
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
      d->dim_param = c->g->symbols[s->sym[i]];
    } /* else: an anonymous unknown dim is a Dimension with neither field */
    dims[i] = d;
  }
  sp->n_dim = (size_t)s->rank;
  sp->dim = dims;
  tt->shape = sp;
  *out = tp;
  return NULL;
}

static kiln_status make_value_info(export_ctx *c, const kiln_value *v, Onnx__ValueInfoProto **out) {
  Onnx__ValueInfoProto *vi = NEW(c, Onnx__ValueInfoProto);
  KILN_CHECK_ALLOC(vi);
  onnx__value_info_proto__init(vi);
  vi->name = v->name;
  KILN_TRY(make_type(c, v->dtype, &v->shape, &vi->type));
  *out = vi;
  return NULL;
}

/* ---- attributes ------------------------------------------------------------------------------------ */
static kiln_status make_attr(export_ctx *c, const kiln_node *n, const kiln_attr *a, Onnx__AttributeProto **out) {
  const char *an = str_or_empty(a->name);
  if (!an[0]) return kiln_error(KILN_ERR_INTERNAL, "an attribute has no name");
  Onnx__AttributeProto *p = NEW(c, Onnx__AttributeProto);
  KILN_CHECK_ALLOC(p);
  onnx__attribute_proto__init(p);
  p->name = a->name;
  p->has_type = 1;
  switch (a->type) {
  case KILN_ATTR_FLOAT:
    p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    p->has_f = 1;
    p->f = a->f;
    break;
  case KILN_ATTR_INT:
    p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    p->has_i = 1;
    p->i = a->i;
    break;
  case KILN_ATTR_STRING:
    p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
    p->has_s = 1;
    p->s.len = a->s ? a->s_len : 0;
    p->s.data = (uint8_t *)a->s;
    break;
  case KILN_ATTR_FLOATS:
    p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
    if (a->count && !a->floats) return kiln_error(KILN_ERR_INTERNAL, "attribute '%s' has no values", an);
    p->n_floats = a->count;
    p->floats = a->floats;
    break;
  case KILN_ATTR_INTS:
    p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    if (a->count && !a->ints) return kiln_error(KILN_ERR_INTERNAL, "attribute '%s' has no values", an);
    p->n_ints = a->count;
    p->ints = a->ints;
    break;
  case KILN_ATTR_STRINGS: {
    p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS;
    if (a->count && !a->strings) return kiln_error(KILN_ERR_INTERNAL, "attribute '%s' has no values", an);
    ProtobufCBinaryData *s = NEW_ARRAY(c, ProtobufCBinaryData, a->count);
    KILN_CHECK_ALLOC(s);
    for (size_t i = 0; i < a->count; i++) {
      /* kiln keeps list strings NUL-terminated without a length, so the length is strlen's. */
      s[i].data = (uint8_t *)a->strings[i];
      s[i].len = a->strings[i] ? strlen(a->strings[i]) : 0;
    }
    p->n_strings = a->count;
    p->strings = s;
    break;
  }
  case KILN_ATTR_TENSOR:
  case KILN_ATTR_SPARSE_TENSOR: { /* sparse was densified at import: written back dense */
    if (!a->tensors || a->count < 1) return kiln_error(KILN_ERR_INTERNAL, "attribute '%s' has no tensor", an);
    const kiln_tensor *t = &a->tensors[0];
    p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    /* Constant's sparse_value becomes a dense `value`; a dense tensor under the name sparse_value would
     * not match the schema. */
    if ((a->was_sparse || a->type == KILN_ATTR_SPARSE_TENSOR) && !strcmp(an, "sparse_value") && n->op_type &&
        !strcmp(n->op_type, "Constant"))
      p->name = "value";
    KILN_TRY(make_tensor(c, NULL, t->dtype, t->rank, t->dims, t->data, kiln_tensor_nbytes(t), "attribute tensor", &p->t));
    break;
  }
  case KILN_ATTR_TENSORS: {
    p->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS;
    if (a->count && !a->tensors) return kiln_error(KILN_ERR_INTERNAL, "attribute '%s' has no tensors", an);
    Onnx__TensorProto **ts = NEW_ARRAY(c, Onnx__TensorProto *, a->count);
    KILN_CHECK_ALLOC(ts);
    for (size_t i = 0; i < a->count; i++) {
      const kiln_tensor *t = &a->tensors[i];
      KILN_TRY(make_tensor(c, NULL, t->dtype, t->rank, t->dims, t->data, kiln_tensor_nbytes(t), "attribute tensor", &ts[i]));
    }
    p->n_tensors = a->count;
    p->tensors = ts;
    break;
  }
  case KILN_ATTR_GRAPH:
  case KILN_ATTR_GRAPHS:
  case KILN_ATTR_SPARSE_TENSORS:
  case KILN_ATTR_TYPE_PROTO:
  case KILN_ATTR_TYPE_PROTOS:
    /* Import records only the kind of these (graph.h): writing them would silently drop their contents. */
    return kiln_error(KILN_ERR_UNSUPPORTED,
                      "attribute '%s' is a %s, whose contents kiln does not keep; the model cannot be written back",
                      an,
                      a->type == KILN_ATTR_GRAPH || a->type == KILN_ATTR_GRAPHS ? "subgraph"
                      : a->type == KILN_ATTR_SPARSE_TENSORS                   ? "sparse tensor list"
                                                                              : "type proto");
  default: return kiln_error(KILN_ERR_INTERNAL, "attribute '%s' has unknown kind %d", an, (int)a->type);
  }
  *out = p;
  return NULL;
}

/* ---- node order ------------------------------------------------------------------------------------ */
/* Min-heap of node indices: Kahn's algorithm popping the smallest ready index keeps the graph's order
 * wherever it is already topological, so a sorted graph is written exactly as it is. */
static void heap_push(int32_t *h, int32_t *n, int32_t v) {
  int32_t i = (*n)++;
  while (i > 0 && h[(i - 1) / 2] > v) {
    h[i] = h[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h[i] = v;
}

static int32_t heap_pop(int32_t *h, int32_t *n) {
  int32_t top = h[0], v = h[--(*n)], i = 0;
  for (;;) {
    int32_t l = 2 * i + 1, m = l;
    if (l >= *n) break;
    if (l + 1 < *n && h[l + 1] < h[l]) m = l + 1;
    if (h[m] >= v) break;
    h[i] = h[m];
    i = m;
  }
  if (*n) h[i] = v;
  return top;
}

/* order[] gets the live nodes topologically; producer[v] = live node writing v, or -1. */
static kiln_status node_order(export_ctx *c, const int32_t *producer, int32_t *order, int32_t *n_order) {
  const kiln_graph *g = c->g;
  int32_t *pending = NEW_ARRAY(c, int32_t, (size_t)g->n_nodes);
  int32_t *heap = NEW_ARRAY(c, int32_t, (size_t)g->n_nodes);
  /* users: CSR list of (consumer node) per value, built from live node inputs */
  int32_t *ustart = NEW_ARRAY(c, int32_t, (size_t)g->n_values + 1);
  KILN_CHECK_ALLOC(pending && heap && ustart);
  size_t n_edges = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const kiln_node *n = &g->nodes[i];
    if (n->dead) continue;
    for (int32_t k = 0; k < n->n_inputs; k++) {
      int32_t v = n->inputs[k];
      if (v >= 0 && producer[v] >= 0) {
        pending[i]++;
        ustart[v + 1]++;
        n_edges++;
      }
    }
  }
  for (int32_t v = 0; v < g->n_values; v++) ustart[v + 1] += ustart[v];
  int32_t *users = NEW_ARRAY(c, int32_t, n_edges);
  int32_t *fill = NEW_ARRAY(c, int32_t, (size_t)g->n_values);
  KILN_CHECK_ALLOC(users && fill);
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const kiln_node *n = &g->nodes[i];
    if (n->dead) continue;
    for (int32_t k = 0; k < n->n_inputs; k++) {
      int32_t v = n->inputs[k];
      if (v >= 0 && producer[v] >= 0) users[ustart[v] + fill[v]++] = i;
    }
  }
  int32_t hn = 0, live = 0;
  for (int32_t i = 0; i < g->n_nodes; i++)
    if (!g->nodes[i].dead) {
      live++;
      if (!pending[i]) heap_push(heap, &hn, i);
    }
  int32_t done = 0;
  while (hn) {
    int32_t i = heap_pop(heap, &hn);
    order[done++] = i;
    const kiln_node *n = &g->nodes[i];
    for (int32_t k = 0; k < n->n_outputs; k++) {
      int32_t v = n->outputs[k];
      if (v < 0) continue;
      for (int32_t u = ustart[v]; u < ustart[v + 1]; u++)
        if (--pending[users[u]] == 0) heap_push(heap, &hn, users[u]);
    }
  }
  if (done != live) {
    for (int32_t i = 0; i < g->n_nodes; i++)
      if (!g->nodes[i].dead && pending[i])
        return kiln_error(KILN_ERR_INTERNAL, "node '%s' (%s) is on a cycle; the graph cannot be written as ONNX",
                          str_or_empty(g->nodes[i].name), str_or_empty(g->nodes[i].op_type));
  }
  *n_order = done;
  return NULL;
}

/* ---- opsets and IR version -------------------------------------------------------------------------- */
/* The IR version each opset was released with (onnx/helper.py's VERSION_TABLE): the default when the
 * graph does not say. */
static int64_t ir_for_opset(int64_t opset) {
  if (opset <= 8) return 3;
  if (opset == 9) return 4;
  if (opset == 10) return 5;
  if (opset == 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

static bool is_default_domain(const char *d) { return !d || !d[0] || !strcmp(d, "ai.onnx"); }

static kiln_status add_opset(export_ctx *c, Onnx__OperatorSetIdProto **list, size_t *n, const char *domain,
                             int64_t version) {
  Onnx__OperatorSetIdProto *o = NEW(c, Onnx__OperatorSetIdProto);
  KILN_CHECK_ALLOC(o);
  onnx__operator_set_id_proto__init(o);
  o->domain = (char *)(domain ? domain : "");
  o->has_version = 1;
  o->version = version;
  list[(*n)++] = o;
  return NULL;
}

static kiln_status build_opsets(export_ctx *c, Onnx__ModelProto *m) {
  const kiln_graph *g = c->g;
  /* at most: every declared opset, the default domain, one per node domain */
  size_t cap = (size_t)g->n_opsets + 1 + (size_t)g->n_nodes;
  Onnx__OperatorSetIdProto **list = NEW_ARRAY(c, Onnx__OperatorSetIdProto *, cap);
  KILN_CHECK_ALLOC(list);
  size_t n = 0;
  bool have_default = false;
  for (int32_t i = 0; i < g->n_opsets; i++) {
    const char *d = g->opsets[i].domain;
    int64_t ver = g->opsets[i].version;
    if (is_default_domain(d)) {
      if (have_default) continue; /* a second default-domain entry would make the checker refuse */
      have_default = true;
      if (g->opset > 0) ver = g->opset; /* g->opset is authoritative (a pass may have changed it) */
    }
    KILN_TRY(add_opset(c, list, &n, d, ver));
  }
  if (!have_default && g->opset > 0) KILN_TRY(add_opset(c, list, &n, "", g->opset));
  /* Every node's domain must be imported; plugin nodes added by kiln may use a domain the source model
   * never declared (version 1: custom domains have no history to follow). */
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const kiln_node *nd = &g->nodes[i];
    if (nd->dead || is_default_domain(nd->domain)) continue;
    bool found = false;
    for (size_t k = 0; k < n && !found; k++) found = !strcmp(list[k]->domain, nd->domain);
    if (!found) KILN_TRY(add_opset(c, list, &n, nd->domain, 1));
  }
  m->n_opset_import = n;
  m->opset_import = list;
  return NULL;
}

/* ---- the model ------------------------------------------------------------------------------------- */
static kiln_status build_model(export_ctx *c, Onnx__ModelProto *m, Onnx__GraphProto *gp) {
  const kiln_graph *g = c->g;
  const int32_t nv = g->n_values;
  onnx__model_proto__init(m);
  onnx__graph_proto__init(gp);
  m->graph = gp;

  /* Who defines what, recomputed from live nodes (a pass may have left value->producer stale). */
  int32_t *producer = NEW_ARRAY(c, int32_t, (size_t)nv);
  uint8_t *used = NEW_ARRAY(c, uint8_t, (size_t)nv); /* read by a live node or a graph output */
  uint8_t *is_input = NEW_ARRAY(c, uint8_t, (size_t)nv), *is_output = NEW_ARRAY(c, uint8_t, (size_t)nv);
  KILN_CHECK_ALLOC(producer && used && is_input && is_output);
  for (int32_t v = 0; v < nv; v++) producer[v] = -1;
  for (int32_t i = 0; i < g->n_inputs; i++) {
    int32_t v = g->inputs[i];
    if (v < 0 || v >= nv) return kiln_error(KILN_ERR_INTERNAL, "graph input %d refers to no value", (int)i);
    if (is_input[v]) return kiln_error(KILN_ERR_INTERNAL, "graph input '%s' is listed twice", g->values[v].name);
    is_input[v] = 1;
  }
  for (int32_t i = 0; i < g->n_outputs; i++) {
    int32_t v = g->outputs[i];
    if (v < 0 || v >= nv) return kiln_error(KILN_ERR_INTERNAL, "graph output %d refers to no value", (int)i);
    is_output[v] = 1;
    used[v] = 1;
  }
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const kiln_node *n = &g->nodes[i];
    if (n->dead) continue;
    for (int32_t k = 0; k < n->n_inputs; k++) {
      int32_t v = n->inputs[k];
      if (v >= nv || v < -1) return kiln_error(KILN_ERR_INTERNAL, "node '%s' has a bad input index", str_or_empty(n->name));
      if (v >= 0) used[v] = 1;
    }
    for (int32_t k = 0; k < n->n_outputs; k++) {
      int32_t v = n->outputs[k];
      if (v >= nv || v < -1) return kiln_error(KILN_ERR_INTERNAL, "node '%s' has a bad output index", str_or_empty(n->name));
      if (v < 0) continue;
      if (producer[v] >= 0 || is_input[v])
        return kiln_error(KILN_ERR_INTERNAL, "value '%s' is defined twice (node '%s' and %s)", g->values[v].name,
                          str_or_empty(n->name), is_input[v] ? "a graph input" : "another node");
      producer[v] = i;
    }
  }
  /* initializers: constants nobody computes at run time */
  uint8_t *is_init = NEW_ARRAY(c, uint8_t, (size_t)nv);
  KILN_CHECK_ALLOC(is_init);
  size_t n_init = 0;
  for (int32_t v = 0; v < nv; v++)
    if (used[v] && g->values[v].data && producer[v] < 0 && !is_input[v]) is_init[v] = 1, n_init++;
  /* everything read must be defined somewhere, or the file would be invalid */
  for (int32_t v = 0; v < nv; v++)
    if (used[v] && !is_init[v] && !is_input[v] && producer[v] < 0)
      return kiln_error(KILN_ERR_INTERNAL, "value '%s' is used but nothing defines it (no node, input or constant)",
                        g->values[v].name);

  int64_t ir = g->ir_version > 0 ? g->ir_version : ir_for_opset(g->opset > 0 ? g->opset : 1);
  bool inits_as_inputs = ir < 4; /* IR 3: every initializer must also be a graph input */
  m->has_ir_version = 1;
  m->ir_version = ir;
  m->producer_name = "kiln";
  m->producer_version = KILN_VERSION_STRING;
  m->domain = g->domain;
  m->has_model_version = g->model_version != 0;
  m->model_version = g->model_version;
  m->doc_string = g->doc;
  KILN_TRY(build_opsets(c, m));
  gp->name = g->name && g->name[0] ? g->name : "kiln_graph"; /* the checker requires a non-empty name */

  /* inputs */
  size_t n_in = (size_t)g->n_inputs + (inits_as_inputs ? n_init : 0);
  gp->input = NEW_ARRAY(c, Onnx__ValueInfoProto *, n_in);
  KILN_CHECK_ALLOC(gp->input);
  for (int32_t i = 0; i < g->n_inputs; i++) KILN_TRY(make_value_info(c, &g->values[g->inputs[i]], &gp->input[gp->n_input++]));
  /* initializers (in value order: the model's own order for imported ones) */
  gp->initializer = NEW_ARRAY(c, Onnx__TensorProto *, n_init);
  KILN_CHECK_ALLOC(gp->initializer);
  for (int32_t v = 0; v < nv; v++) {
    if (!is_init[v]) continue;
    const kiln_value *val = &g->values[v];
    KILN_TRY(make_tensor(c, val->name, val->dtype, val->shape.rank, val->shape.dims, val->data, val->nbytes,
                         "initializer", &gp->initializer[gp->n_initializer++]));
    if (inits_as_inputs) KILN_TRY(make_value_info(c, val, &gp->input[gp->n_input++]));
  }
  /* outputs */
  gp->output = NEW_ARRAY(c, Onnx__ValueInfoProto *, (size_t)g->n_outputs);
  KILN_CHECK_ALLOC(gp->output);
  for (int32_t i = 0; i < g->n_outputs; i++) KILN_TRY(make_value_info(c, &g->values[g->outputs[i]], &gp->output[gp->n_output++]));

  /* nodes, in topological order; value_info follows the same order so the file reads top to bottom */
  int32_t *order = NEW_ARRAY(c, int32_t, (size_t)g->n_nodes), n_order = 0;
  KILN_CHECK_ALLOC(order);
  KILN_TRY(node_order(c, producer, order, &n_order));
  gp->node = NEW_ARRAY(c, Onnx__NodeProto *, (size_t)n_order);
  gp->value_info = NEW_ARRAY(c, Onnx__ValueInfoProto *, (size_t)nv);
  KILN_CHECK_ALLOC(gp->node && gp->value_info);
  for (int32_t j = 0; j < n_order; j++) {
    const kiln_node *n = &g->nodes[order[j]];
    Onnx__NodeProto *np = NEW(c, Onnx__NodeProto);
    char **ins = NEW_ARRAY(c, char *, (size_t)n->n_inputs), **outs = NEW_ARRAY(c, char *, (size_t)n->n_outputs);
    Onnx__AttributeProto **attrs = NEW_ARRAY(c, Onnx__AttributeProto *, (size_t)n->n_attrs);
    KILN_CHECK_ALLOC(np && ins && outs && attrs);
    onnx__node_proto__init(np);
    if (!n->op_type || !n->op_type[0])
      return kiln_error(KILN_ERR_INTERNAL, "node '%s' has no op type", str_or_empty(n->name));
    np->name = n->name && n->name[0] ? n->name : NULL;
    np->op_type = n->op_type;
    np->domain = n->domain && n->domain[0] ? n->domain : NULL;
    for (int32_t k = 0; k < n->n_inputs; k++) ins[k] = n->inputs[k] >= 0 ? g->values[n->inputs[k]].name : "";
    for (int32_t k = 0; k < n->n_outputs; k++) {
      int32_t v = n->outputs[k];
      outs[k] = v >= 0 ? g->values[v].name : "";
      if (v >= 0 && !is_output[v] && g->values[v].dtype != KILN_DTYPE_UNDEFINED)
        KILN_TRY(make_value_info(c, &g->values[v], &gp->value_info[gp->n_value_info++]));
    }
    np->n_input = (size_t)n->n_inputs;
    np->input = ins;
    np->n_output = (size_t)n->n_outputs;
    np->output = outs;
    for (int32_t k = 0; k < n->n_attrs; k++) {
      kiln_status st = make_attr(c, n, &n->attrs[k], &attrs[k]);
      if (st) return kiln_error_prefix(st, "node '%s' (%s): ", str_or_empty(n->name), n->op_type);
    }
    np->n_attribute = (size_t)n->n_attrs;
    np->attribute = attrs;
    gp->node[gp->n_node++] = np;
  }
  return NULL;
}

kiln_status kiln_onnx_save(const kiln_graph *g, const char *path) {
  if (!g || !path || !path[0]) return kiln_error(KILN_ERR_INVALID_ARGUMENT, "kiln_onnx_save: no graph or no path");
  export_ctx c = {.g = g};
  Onnx__ModelProto m;
  Onnx__GraphProto gp;
  kiln_status st = build_model(&c, &m, &gp);
  uint8_t *buf = NULL;
  size_t len = 0;
  if (!st) {
    len = onnx__model_proto__get_packed_size(&m);
    if (len > MAX_PROTO_BYTES)
      st = kiln_error(KILN_ERR_UNSUPPORTED,
                      "the model would be %zu bytes; ONNX files without external data are limited to 2 GB, and "
                      "kiln does not write external data",
                      len);
  }
  if (!st) {
    buf = malloc(len ? len : 1);
    if (!buf) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory packing a %zu-byte model", len);
    else if (onnx__model_proto__pack(&m, buf) != len)
      st = kiln_error(KILN_ERR_INTERNAL, "protobuf packing wrote an unexpected size");
  }
  if (!st) st = kiln_file_write_atomic(path, buf, len);
  free(buf);
  arena_free(&c.mem);
  return kiln_error_prefix(st, "%s: ", path);
}
