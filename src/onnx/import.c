/*
 * ONNX import: ModelProto (protobuf-c) -> kiln graph.
 *
 * Order of work: initializers and graph inputs become values; every node output becomes a value (so
 * nodes may appear in any order in the file); then node inputs are resolved by name, attributes are
 * converted, each node is parsed by its op family, the graph is sorted topologically (a cycle is an
 * error) and shapes are inferred. Anything malformed gets an error naming the tensor or node.
 */
#include "onnx/onnx.h"

#include "core/dtype.h"
#include "core/file.h"
#include "passes/passes.h"

#include "onnx.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODEL_BYTES ((size_t)2 << 30) /* protobuf's own limit */
#define MAX_SPARSE_DENSE_ELEMENTS (INT64_C(1) << 28) /* 1 GiB of float32: far beyond any real sparse weight */

typedef struct import_ctx {
  kiln_graph *g;
  const char *model_dir; /* NULL: external data refused */
  /* An unsupported type on a graph input no node reads: reported only if nothing better (a refused op,
   * which names the op) comes up first. */
  kiln_status deferred;
} import_ctx;

/* ---- tensors ---------------------------------------------------------------------------------------- */
static kiln_status tensor_shape(const Onnx__TensorProto *t, const char *what, kiln_shape *shape) {
  if (t->n_dims > KILN_MAX_RANK)
    return kiln_error(KILN_ERR_UNSUPPORTED, "%s '%s' has rank %zu (kiln supports up to %d)", what,
                      t->name ? t->name : "", t->n_dims, KILN_MAX_RANK);
  kiln_shape_init(shape, (int32_t)t->n_dims, NULL);
  int64_t numel = 1;
  for (size_t i = 0; i < t->n_dims; i++) {
    if (t->dims[i] < 0 || t->dims[i] > KILN_MAX_ELEMENTS)
      return kiln_error(KILN_ERR_PARSE, "%s '%s' has an invalid dim %" PRId64, what, t->name ? t->name : "",
                        t->dims[i]);
    shape->dims[i] = t->dims[i];
    if (t->dims[i] && numel > KILN_MAX_ELEMENTS / t->dims[i])
      return kiln_error(KILN_ERR_PARSE, "%s '%s' has an absurd size (more than 2^40 elements)", what,
                        t->name ? t->name : "");
    numel *= t->dims[i];
  }
  return NULL;
}

/* Reject paths that could leave the model's folder: absolute, "..", or a symlink pointing out. */
static kiln_status external_path(const import_ctx *c, const char *tname, const char *location, char **out) {
  if (!c->model_dir)
    return kiln_error(KILN_ERR_UNSUPPORTED, "tensor '%s' uses external data, but the model has no folder", tname);
  if (!location || !location[0]) return kiln_error(KILN_ERR_PARSE, "tensor '%s': external data without a location", tname);
  if (location[0] == '/' || strstr(location, ".."))
    return kiln_error(KILN_ERR_PARSE, "tensor '%s': external data path '%s' leaves the model folder", tname, location);
  size_t n = strlen(c->model_dir) + strlen(location) + 2;
  char *path = malloc(n);
  KILN_CHECK_ALLOC(path);
  snprintf(path, n, "%s/%s", c->model_dir, location);
  char dir_real[PATH_MAX], file_real[PATH_MAX];
  if (!realpath(c->model_dir, dir_real) || !realpath(path, file_real)) {
    kiln_status st = kiln_error(KILN_ERR_IO, "tensor '%s': cannot open external data '%s': %s", tname, path, strerror(errno));
    free(path);
    return st;
  }
  size_t dl = strlen(dir_real);
  if (strncmp(file_real, dir_real, dl) != 0 || (file_real[dl] != '/' && dir_real[dl - 1] != '/')) {
    kiln_status st = kiln_error(KILN_ERR_PARSE, "tensor '%s': external data '%s' resolves outside the model folder",
                                tname, location);
    free(path);
    return st;
  }
  *out = path;
  return NULL;
}

/* Allocates *dst only after the file is known to hold nbytes: a tiny file must not make us allocate
 * what its header claims. */
static kiln_status read_external(const import_ctx *c, const Onnx__TensorProto *t, size_t nbytes, void **dst) {
  const char *name = t->name ? t->name : "";
  const char *location = NULL;
  int64_t offset = 0, length = -1;
  for (size_t i = 0; i < t->n_external_data; i++) {
    const Onnx__StringStringEntryProto *e = t->external_data[i];
    if (!e->key || !e->value) continue;
    char *end;
    if (!strcmp(e->key, "location")) location = e->value;
    else if (!strcmp(e->key, "offset") || !strcmp(e->key, "length")) {
      errno = 0;
      long long v = strtoll(e->value, &end, 10);
      if (errno || *end || v < 0)
        return kiln_error(KILN_ERR_PARSE, "tensor '%s': bad external data %s '%s'", name, e->key, e->value);
      if (!strcmp(e->key, "offset")) offset = v;
      else length = v;
    }
  }
  if (length >= 0 && (size_t)length != nbytes)
    return kiln_error(KILN_ERR_PARSE, "tensor '%s': external data length %" PRId64 " but the shape needs %zu bytes",
                      name, length, nbytes);
  char *path;
  KILN_TRY(external_path(c, name, location, &path));
  FILE *f = fopen(path, "rb");
  kiln_status st = NULL;
  if (!f) st = kiln_error(KILN_ERR_IO, "tensor '%s': cannot open external data '%s'", name, path);
  else {
    if (fseeko(f, 0, SEEK_END) != 0 || ftello(f) < offset + (off_t)nbytes)
      st = kiln_error(KILN_ERR_PARSE, "tensor '%s': external file '%s' is too short for offset %" PRId64 " + %zu bytes",
                      name, path, offset, nbytes);
    else if (!(*dst = malloc(nbytes ? nbytes : 1)))
      st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory for %zu bytes", name, nbytes);
    else if (fseeko(f, offset, SEEK_SET) != 0 || fread(*dst, 1, nbytes, f) != nbytes)
      st = kiln_error(KILN_ERR_IO, "tensor '%s': cannot read external data '%s'", name, path);
    fclose(f);
  }
  free(path);
  return st;
}

/* Decode a TensorProto into dtype + shape + malloc'd dense data. */
static kiln_status decode_tensor(const import_ctx *c, const Onnx__TensorProto *t, const char *what, kiln_tensor *out) {
  const char *name = t->name ? t->name : "";
  memset(out, 0, sizeof *out);
  if (t->segment) return kiln_error(KILN_ERR_UNSUPPORTED, "%s '%s' is segmented", what, name);
  int dt = t->data_type;
  if (dt == KILN_DTYPE_STRING)
    return kiln_error(KILN_ERR_UNSUPPORTED, "%s '%s' has dtype string, which kiln does not support", what, name);
  if (!kiln_dtype_is_valid(dt))
    return kiln_error(dt == 0 ? KILN_ERR_PARSE : KILN_ERR_UNSUPPORTED, "%s '%s' has %s dtype %d", what, name,
                      dt == 0 ? "no" : "unsupported", dt);
  kiln_shape shape;
  KILN_TRY(tensor_shape(t, what, &shape));
  int64_t numel = kiln_shape_numel(&shape);
  size_t esize = kiln_dtype_size((kiln_dtype)dt), nbytes = (size_t)numel * esize;
  void *data = NULL;
  kiln_status st = NULL;
  size_t have = 0;
  const char *field = NULL;
  /* The shape alone may claim up to 2^40 elements: check that the data is really there *before*
   * allocating, so a few bytes of file cannot make us allocate terabytes (fuzzing found this). */
  if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
    st = read_external(c, t, nbytes, &data);
    have = (size_t)numel;
  } else if (t->has_raw_data) {
    if (t->raw_data.len != nbytes)
      st = kiln_error(KILN_ERR_PARSE, "%s '%s': raw_data has %zu bytes but the shape needs %zu", what, name,
                      t->raw_data.len, nbytes);
    else if (!(data = malloc(nbytes ? nbytes : 1)))
      st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
    else if (nbytes) memcpy(data, t->raw_data.data, nbytes); /* ONNX raw data is little-endian, as are we */
    have = (size_t)numel;
  } else {
    size_t count = dt == KILN_DTYPE_FLOAT32 ? t->n_float_data : dt == KILN_DTYPE_FLOAT64 ? t->n_double_data
                 : dt == KILN_DTYPE_INT64 ? t->n_int64_data
                 : (dt == KILN_DTYPE_UINT32 || dt == KILN_DTYPE_UINT64) ? t->n_uint64_data : t->n_int32_data;
    data = count == (size_t)numel ? malloc(nbytes ? nbytes : 1) : NULL;
    if (count == (size_t)numel) KILN_CHECK_ALLOC(data);
    switch (dt) { /* "&& nbytes": an empty field's pointer is NULL, which memcpy must not get (UBSan) */
    case KILN_DTYPE_FLOAT32:
      field = "float_data", have = t->n_float_data;
      if (have == (size_t)numel && nbytes) memcpy(data, t->float_data, nbytes);
      break;
    case KILN_DTYPE_FLOAT64:
      field = "double_data", have = t->n_double_data;
      if (have == (size_t)numel && nbytes) memcpy(data, t->double_data, nbytes);
      break;
    case KILN_DTYPE_INT64:
      field = "int64_data", have = t->n_int64_data;
      if (have == (size_t)numel && nbytes) memcpy(data, t->int64_data, nbytes);
      break;
    case KILN_DTYPE_UINT32: case KILN_DTYPE_UINT64:
      field = "uint64_data", have = t->n_uint64_data;
      if (have == (size_t)numel)
        for (int64_t i = 0; i < numel; i++) kiln_dtype_store_i64((kiln_dtype)dt, data, i, (int64_t)t->uint64_data[i]);
      break;
    default: /* int32, int16, int8, uint16, uint8, bool, float16 and bfloat16 (as bit patterns) */
      field = "int32_data", have = t->n_int32_data;
      if (have == (size_t)numel)
        for (int64_t i = 0; i < numel; i++) {
          if (esize == 2) ((uint16_t *)data)[i] = (uint16_t)t->int32_data[i];
          else kiln_dtype_store_i64((kiln_dtype)dt, data, i, t->int32_data[i]);
        }
      break;
    }
    if (have != (size_t)numel)
      st = kiln_error(KILN_ERR_PARSE, "%s '%s': %s has %zu values but the shape needs %" PRId64, what, name,
                      field, have, numel);
  }
  if (st) {
    free(data);
    return st;
  }
  out->dtype = (kiln_dtype)dt;
  out->rank = shape.rank;
  memcpy(out->dims, shape.dims, sizeof out->dims);
  out->data = data;
  return NULL;
}

/* Sparse -> dense: indices are [NNZ] (linear) or [NNZ, rank]. */
static kiln_status decode_sparse(const import_ctx *c, const Onnx__SparseTensorProto *sp, kiln_tensor *out) {
  memset(out, 0, sizeof *out);
  if (!sp->values) return kiln_error(KILN_ERR_PARSE, "sparse tensor without values");
  const char *name = sp->values->name ? sp->values->name : "";
  if (sp->n_dims > KILN_MAX_RANK) return kiln_error(KILN_ERR_UNSUPPORTED, "sparse tensor '%s' rank too large", name);
  kiln_shape shape;
  kiln_shape_init(&shape, (int32_t)sp->n_dims, sp->dims);
  int64_t numel = kiln_shape_numel(&shape);
  for (size_t i = 0; i < sp->n_dims; i++)
    if (sp->dims[i] < 0) numel = -1;
  if (numel < 0) return kiln_error(KILN_ERR_PARSE, "sparse tensor '%s' has invalid dims", name);
  /* Unlike a dense tensor, the dense size is not backed by bytes in the file: cap it, so a few bytes
   * cannot make us allocate terabytes (fuzzing found this; under ASan it aborts). */
  if (numel > MAX_SPARSE_DENSE_ELEMENTS)
    return kiln_error(KILN_ERR_UNSUPPORTED, "sparse tensor '%s' has %" PRId64 " elements when densified (kiln allows %" PRId64 ")",
                      name, numel, (int64_t)MAX_SPARSE_DENSE_ELEMENTS);
  kiln_tensor vals = {0}, idx = {0};
  KILN_TRY(decode_tensor(c, sp->values, "sparse values", &vals));
  kiln_status st = NULL;
  int64_t nnz = kiln_tensor_numel(&vals);
  if (sp->indices) st = decode_tensor(c, sp->indices, "sparse indices", &idx);
  else if (nnz) st = kiln_error(KILN_ERR_PARSE, "sparse tensor '%s' has values but no indices", name);
  size_t esize = kiln_dtype_size(vals.dtype);
  char *dense = st ? NULL : calloc((size_t)(numel ? numel : 1), esize);
  if (!st && !dense) st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
  if (!st && nnz) {
    bool linear = idx.rank == 1;
    if (idx.dtype != KILN_DTYPE_INT64 || (linear ? idx.dims[0] != nnz : (idx.rank != 2 || idx.dims[0] != nnz ||
                                                                         idx.dims[1] != (int64_t)sp->n_dims)))
      st = kiln_error(KILN_ERR_PARSE, "sparse tensor '%s' has malformed indices", name);
    for (int64_t k = 0; !st && k < nnz; k++) {
      int64_t off = 0;
      if (linear) off = ((int64_t *)idx.data)[k];
      else
        for (size_t d = 0; d < sp->n_dims; d++) {
          int64_t ix = ((int64_t *)idx.data)[k * (int64_t)sp->n_dims + (int64_t)d];
          if (ix < 0 || ix >= sp->dims[d]) off = -1;
          if (off >= 0) off = off * sp->dims[d] + ix;
        }
      if (off < 0 || off >= numel) st = kiln_error(KILN_ERR_PARSE, "sparse tensor '%s' has an index out of range", name);
      else memcpy(dense + (size_t)off * esize, (char *)vals.data + (size_t)k * esize, esize);
    }
  }
  free(vals.data);
  free(idx.data);
  if (st) {
    free(dense);
    return st;
  }
  out->dtype = vals.dtype;
  out->rank = shape.rank;
  memcpy(out->dims, shape.dims, sizeof out->dims);
  out->data = dense;
  return NULL;
}

/* ---- value types ----------------------------------------------------------------------------------- */
static kiln_status apply_type(import_ctx *c, const Onnx__ValueInfoProto *vi, int32_t id, bool required) {
  kiln_value *v = &c->g->values[id];
  const Onnx__TypeProto *tp = vi->type;
  if (!tp) {
    if (required) return kiln_error(KILN_ERR_PARSE, "graph input '%s' has no type", v->name);
    return NULL;
  }
  if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
    if (required || tp->value_case != ONNX__TYPE_PROTO__VALUE__NOT_SET)
      return kiln_error(KILN_ERR_UNSUPPORTED, "'%s' is not a tensor (sequence, map, optional and sparse types are not supported)",
                        v->name);
    return NULL;
  }
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  if (tt->has_elem_type && tt->elem_type != 0) {
    if (!kiln_dtype_is_valid(tt->elem_type))
      return kiln_error(KILN_ERR_UNSUPPORTED, "'%s' has unsupported element type %d%s", v->name, tt->elem_type,
                        tt->elem_type == KILN_DTYPE_STRING ? " (string)" : "");
    v->dtype = (kiln_dtype)tt->elem_type;
  } else if (required) {
    return kiln_error(KILN_ERR_PARSE, "graph input '%s' has no element type", v->name);
  }
  if (!tt->shape) {
    kiln_shape_unknown(&v->shape);
    return NULL;
  }
  if (tt->shape->n_dim > KILN_MAX_RANK)
    return kiln_error(KILN_ERR_UNSUPPORTED, "'%s' has rank %zu (kiln supports up to %d)", v->name, tt->shape->n_dim,
                      KILN_MAX_RANK);
  kiln_shape s;
  kiln_shape_init(&s, (int32_t)tt->shape->n_dim, NULL);
  for (size_t i = 0; i < tt->shape->n_dim; i++) {
    const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
    if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
      if (d->dim_value < 0 || d->dim_value > KILN_MAX_ELEMENTS)
        return kiln_error(KILN_ERR_PARSE, "'%s' has an invalid dim %" PRId64, v->name, d->dim_value);
      s.dims[i] = d->dim_value;
    } else {
      s.dims[i] = KILN_DIM_DYNAMIC;
      if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && d->dim_param && d->dim_param[0])
        KILN_TRY(kiln_graph_add_symbol(c->g, d->dim_param, &s.sym[i]));
    }
  }
  if (kiln_shape_is_static(&s) && kiln_shape_numel(&s) < 0)
    return kiln_error(KILN_ERR_PARSE, "'%s' has an absurd size (more than 2^40 elements)", v->name);
  v->shape = s;
  return NULL;
}

/* ---- attributes ------------------------------------------------------------------------------------ */
static char *dup_bytes(const ProtobufCBinaryData *b) {
  char *s = malloc(b->len + 1);
  if (!s) return NULL;
  if (b->len) memcpy(s, b->data, b->len);
  s[b->len] = 0;
  return s;
}

static kiln_status convert_attr(import_ctx *c, const Onnx__AttributeProto *ap, kiln_attr *a) {
  memset(a, 0, sizeof *a);
  if (!ap->name || !ap->name[0]) return kiln_error(KILN_ERR_PARSE, "attribute without a name");
  if (ap->ref_attr_name && ap->ref_attr_name[0])
    return kiln_error(KILN_ERR_UNSUPPORTED, "attribute '%s' refers to a function attribute", ap->name);
  a->name = strdup(ap->name);
  KILN_CHECK_ALLOC(a->name);
  int type = ap->has_type ? (int)ap->type : 0;
  if (type == 0) { /* IR < 4 files may omit the type: infer it from which field is set */
    if (ap->has_f) type = KILN_ATTR_FLOAT;
    else if (ap->has_i) type = KILN_ATTR_INT;
    else if (ap->has_s) type = KILN_ATTR_STRING;
    else if (ap->t) type = KILN_ATTR_TENSOR;
    else if (ap->g) type = KILN_ATTR_GRAPH;
    else if (ap->sparse_tensor) type = KILN_ATTR_SPARSE_TENSOR;
    else if (ap->n_floats) type = KILN_ATTR_FLOATS;
    else if (ap->n_ints) type = KILN_ATTR_INTS;
    else if (ap->n_strings) type = KILN_ATTR_STRINGS;
    else if (ap->n_tensors) type = KILN_ATTR_TENSORS;
    else if (ap->n_graphs) type = KILN_ATTR_GRAPHS;
    else return kiln_error(KILN_ERR_PARSE, "attribute '%s' has no type and no value", ap->name);
  }
  a->type = (kiln_attr_type)type;
  switch (type) {
  case KILN_ATTR_FLOAT: a->f = ap->f; return NULL;
  case KILN_ATTR_INT: a->i = ap->i; return NULL;
  case KILN_ATTR_STRING:
    a->s = dup_bytes(&ap->s);
    a->s_len = ap->s.len;
    KILN_CHECK_ALLOC(a->s);
    return NULL;
  case KILN_ATTR_FLOATS:
    a->count = ap->n_floats;
    a->floats = malloc(sizeof(float) * (a->count ? a->count : 1));
    KILN_CHECK_ALLOC(a->floats);
    if (a->count) memcpy(a->floats, ap->floats, sizeof(float) * a->count);
    return NULL;
  case KILN_ATTR_INTS:
    a->count = ap->n_ints;
    a->ints = malloc(sizeof(int64_t) * (a->count ? a->count : 1));
    KILN_CHECK_ALLOC(a->ints);
    if (a->count) memcpy(a->ints, ap->ints, sizeof(int64_t) * a->count);
    return NULL;
  case KILN_ATTR_STRINGS:
    a->strings = calloc(ap->n_strings ? ap->n_strings : 1, sizeof(char *));
    KILN_CHECK_ALLOC(a->strings);
    for (size_t i = 0; i < ap->n_strings; i++) {
      a->strings[i] = dup_bytes(&ap->strings[i]);
      KILN_CHECK_ALLOC(a->strings[i]);
      a->count = i + 1;
    }
    return NULL;
  case KILN_ATTR_TENSOR:
    if (!ap->t) return kiln_error(KILN_ERR_PARSE, "attribute '%s' is a tensor but has none", ap->name);
    a->tensors = calloc(1, sizeof(kiln_tensor));
    KILN_CHECK_ALLOC(a->tensors);
    a->count = 1;
    return kiln_error_prefix(decode_tensor(c, ap->t, "attribute tensor", a->tensors), "attribute '%s': ", ap->name);
  case KILN_ATTR_SPARSE_TENSOR:
    if (!ap->sparse_tensor) return kiln_error(KILN_ERR_PARSE, "attribute '%s' is a sparse tensor but has none", ap->name);
    a->tensors = calloc(1, sizeof(kiln_tensor));
    KILN_CHECK_ALLOC(a->tensors);
    a->type = KILN_ATTR_TENSOR;
    a->was_sparse = true;
    a->count = 1;
    return kiln_error_prefix(decode_sparse(c, ap->sparse_tensor, a->tensors), "attribute '%s': ", ap->name);
  case KILN_ATTR_TENSORS:
    a->tensors = calloc(ap->n_tensors ? ap->n_tensors : 1, sizeof(kiln_tensor));
    KILN_CHECK_ALLOC(a->tensors);
    for (size_t i = 0; i < ap->n_tensors; i++) {
      KILN_TRY(decode_tensor(c, ap->tensors[i], "attribute tensor", &a->tensors[i]));
      a->count = i + 1;
    }
    return NULL;
  case KILN_ATTR_GRAPH: a->count = 1; return NULL;          /* subgraphs are not kept: see graph.h */
  case KILN_ATTR_GRAPHS: a->count = ap->n_graphs; return NULL;
  case KILN_ATTR_SPARSE_TENSORS: a->count = ap->n_sparse_tensors; return NULL;
  case KILN_ATTR_TYPE_PROTO: a->count = 1; return NULL;
  case KILN_ATTR_TYPE_PROTOS: a->count = ap->n_type_protos; return NULL;
  default: return kiln_error(KILN_ERR_PARSE, "attribute '%s' has unknown type %d", ap->name, type);
  }
}

/* ---- the model ------------------------------------------------------------------------------------- */
static kiln_status add_index(int32_t **arr, int32_t *n, int32_t v) {
  int32_t *p = realloc(*arr, sizeof(int32_t) * (size_t)(*n + 1));
  KILN_CHECK_ALLOC(p);
  p[(*n)++] = v;
  *arr = p;
  return NULL;
}

static char *dup_or_null(const char *s) { return s && s[0] ? strdup(s) : NULL; }

/* A graph input/output whose type kiln does not support (string, sequence, optional, ...) is refused
 * naming the first node that reads or writes it, so the error says which op needs it. If no node uses
 * it, the error is deferred (c->deferred) so that a refused op is reported instead. */
static kiln_status name_value_user(import_ctx *c, const Onnx__GraphProto *gp, const char *value, kiln_status st) {
  if (!st || kiln_status_get_code(st) != KILN_ERR_UNSUPPORTED || !value) return st;
  for (size_t i = 0; i < gp->n_node; i++) {
    const Onnx__NodeProto *np = gp->node[i];
    bool uses = false;
    for (size_t k = 0; k < np->n_input && !uses; k++) uses = np->input[k] && !strcmp(np->input[k], value);
    for (size_t k = 0; k < np->n_output && !uses; k++) uses = np->output[k] && !strcmp(np->output[k], value);
    if (uses)
      return kiln_error_prefix(st, "node '%s' (%s): ", np->name ? np->name : "", np->op_type ? np->op_type : "?");
  }
  if (c->deferred) return st;
  c->deferred = kiln_error_prefix(st, "unused graph value: ");
  return NULL;
}

static kiln_status import_model(import_ctx *c, const Onnx__ModelProto *m) {
  kiln_graph *g = c->g;
  const Onnx__GraphProto *gp = m->graph;
  if (!gp) return kiln_error(KILN_ERR_PARSE, "not an ONNX model: no graph (empty or foreign file?)");
  g->ir_version = m->has_ir_version ? m->ir_version : 0;
  if (g->ir_version < 3 && m->n_opset_import == 0)
    return kiln_error(KILN_ERR_PARSE, "not an ONNX model: no ir_version and no opset_import");
  g->model_version = m->model_version;
  g->name = dup_or_null(gp->name);
  g->producer_name = dup_or_null(m->producer_name);
  g->producer_version = dup_or_null(m->producer_version);
  g->domain = dup_or_null(m->domain);
  g->doc = dup_or_null(m->doc_string);

  /* opsets */
  g->opset = 0;
  for (size_t i = 0; i < m->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *o = m->opset_import[i];
    const char *dom = o->domain ? o->domain : "";
    kiln_opset *p = realloc(g->opsets, sizeof(kiln_opset) * (size_t)(g->n_opsets + 1));
    KILN_CHECK_ALLOC(p);
    g->opsets = p;
    p[g->n_opsets].domain = strdup(dom);
    KILN_CHECK_ALLOC(p[g->n_opsets].domain);
    p[g->n_opsets++].version = o->version;
    if (!dom[0] || !strcmp(dom, "ai.onnx")) g->opset = o->version;
  }
  /* No default-domain import is fine when no node uses it (e.g. only ai.onnx.preview.training ops, which
   * are then refused by name); IR 3 without any opset_import means opset 1. */
  if (g->opset == 0 && !m->n_opset_import) g->opset = 1;
  if (g->opset != 0 && (g->opset < 1 || g->opset > 21))
    return kiln_error(KILN_ERR_UNSUPPORTED, "opset %" PRId64 " is outside what kiln supports (7 to 21)", g->opset);

  /* initializers */
  for (size_t i = 0; i < gp->n_initializer; i++) {
    const Onnx__TensorProto *t = gp->initializer[i];
    if (!t->name || !t->name[0]) return kiln_error(KILN_ERR_PARSE, "initializer %zu has no name", i);
    kiln_tensor dt;
    KILN_TRY(decode_tensor(c, t, "initializer", &dt));
    int32_t id;
    kiln_status st = kiln_graph_add_value(g, t->name, &id);
    kiln_shape s;
    kiln_shape_init(&s, dt.rank, dt.dims);
    if (!st) st = kiln_value_take_constant(g, id, dt.dtype, &s, dt.data);
    else free(dt.data);
    if (st) return kiln_error_prefix(st, "initializer: ");
    g->values[id].flags |= KILN_VALUE_INITIALIZER;
  }
  for (size_t i = 0; i < gp->n_sparse_initializer; i++) {
    const Onnx__SparseTensorProto *sp = gp->sparse_initializer[i];
    kiln_tensor dt;
    KILN_TRY(decode_sparse(c, sp, &dt));
    const char *name = sp->values && sp->values->name ? sp->values->name : "";
    int32_t id;
    kiln_status st = kiln_graph_add_value(g, name, &id);
    kiln_shape s;
    kiln_shape_init(&s, dt.rank, dt.dims);
    if (!st) st = kiln_value_take_constant(g, id, dt.dtype, &s, dt.data);
    else free(dt.data);
    KILN_TRY(st);
    g->values[id].flags |= KILN_VALUE_INITIALIZER;
  }

  /* graph inputs; in IR < 4 initializers are listed as inputs too (defaults): they stay constants */
  for (size_t i = 0; i < gp->n_input; i++) {
    const Onnx__ValueInfoProto *vi = gp->input[i];
    if (!vi->name || !vi->name[0]) return kiln_error(KILN_ERR_PARSE, "graph input %zu has no name", i);
    int32_t id = kiln_graph_find_value(g, vi->name);
    if (id >= 0) {
      if (g->values[id].flags & KILN_VALUE_INITIALIZER) continue;
      return kiln_error(KILN_ERR_PARSE, "graph input '%s' is listed twice", vi->name);
    }
    KILN_TRY(kiln_graph_add_value(g, vi->name, &id));
    g->values[id].flags |= KILN_VALUE_GRAPH_INPUT;
    KILN_TRY(add_index(&g->inputs, &g->n_inputs, id));
    KILN_TRY(name_value_user(c, gp, vi->name, apply_type(c, vi, id, true)));
  }

  /* node outputs first, so node order in the file does not matter */
  for (size_t i = 0; i < gp->n_node; i++) {
    const Onnx__NodeProto *np = gp->node[i];
    for (size_t k = 0; k < np->n_output; k++) {
      const char *o = np->output[k];
      if (!o || !o[0]) continue;
      if (kiln_graph_find_value(g, o) >= 0)
        return kiln_error(KILN_ERR_PARSE, "node '%s' (%s): output '%s' is already defined (by a node, input or initializer)",
                          np->name ? np->name : "", np->op_type ? np->op_type : "?", o);
      KILN_TRY(kiln_graph_add_value(g, o, NULL));
    }
  }
  int32_t *ins = NULL, *outs = NULL;
  kiln_status st = NULL;
  for (size_t i = 0; i < gp->n_node && !st; i++) {
    const Onnx__NodeProto *np = gp->node[i];
    const char *nname = np->name ? np->name : "";
    if (!np->op_type || !np->op_type[0]) {
      st = kiln_error(KILN_ERR_PARSE, "node %zu ('%s') has no op_type", i, nname);
      break;
    }
    if (np->n_input > 4096 || np->n_output > 4096) {
      st = kiln_error(KILN_ERR_PARSE, "node '%s' (%s) has too many inputs or outputs", nname, np->op_type);
      break;
    }
    free(ins);
    free(outs);
    ins = malloc(sizeof(int32_t) * (np->n_input + 1));
    outs = malloc(sizeof(int32_t) * (np->n_output + 1));
    if (!ins || !outs) {
      st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory");
      break;
    }
    for (size_t k = 0; k < np->n_input && !st; k++) {
      const char *in = np->input[k];
      ins[k] = (!in || !in[0]) ? -1 : kiln_graph_find_value(g, in);
      if (in && in[0] && ins[k] < 0)
        st = kiln_error(KILN_ERR_PARSE, "node '%s' (%s): input '%s' is not produced by any node, initializer or graph input",
                        nname, np->op_type, in);
    }
    for (size_t k = 0; k < np->n_output; k++)
      outs[k] = (!np->output[k] || !np->output[k][0]) ? -1 : kiln_graph_find_value(g, np->output[k]);
    if (st) break;
    /* ONNX allows unnamed nodes; give them a stable name from their first output for messages. */
    char fallback[300];
    if (!nname[0] && np->n_output && np->output[0] && np->output[0][0]) {
      snprintf(fallback, sizeof fallback, "%s_%.256s", np->op_type, np->output[0]);
      nname = fallback;
    }
    int32_t nid;
    st = kiln_graph_add_node(g, nname, np->domain, np->op_type, ins, (int32_t)np->n_input, outs,
                             (int32_t)np->n_output, &nid);
    for (size_t k = 0; k < np->n_attribute && !st; k++) {
      kiln_attr a;
      st = convert_attr(c, np->attribute[k], &a);
      if (st) {
        kiln_attr_free(&a);
        st = kiln_error_prefix(st, "node '%s' (%s): ", nname, np->op_type);
      } else {
        st = kiln_node_append_attr(&g->nodes[nid], &a);
      }
    }
  }
  free(ins);
  free(outs);
  KILN_TRY(st);

  /* graph outputs */
  for (size_t i = 0; i < gp->n_output; i++) {
    const Onnx__ValueInfoProto *vi = gp->output[i];
    int32_t id = vi->name ? kiln_graph_find_value(g, vi->name) : -1;
    if (id < 0)
      return kiln_error(KILN_ERR_PARSE, "graph output '%s' is not produced by any node, initializer or input",
                        vi->name ? vi->name : "");
    g->values[id].flags |= KILN_VALUE_GRAPH_OUTPUT;
    KILN_TRY(add_index(&g->outputs, &g->n_outputs, id));
    if (!g->values[id].data) KILN_TRY(name_value_user(c, gp, vi->name, apply_type(c, vi, id, false)));
  }
  if (g->n_outputs == 0) return kiln_error(KILN_ERR_PARSE, "the graph has no outputs");
  /* value_info: type hints for intermediates; inference overwrites them */
  for (size_t i = 0; i < gp->n_value_info; i++) {
    const Onnx__ValueInfoProto *vi = gp->value_info[i];
    int32_t id = vi->name ? kiln_graph_find_value(g, vi->name) : -1;
    if (id < 0 || g->values[id].data) continue;
    kiln_status vst = apply_type(c, vi, id, false);
    kiln_status_destroy(vst); /* a bad hint is not worth refusing the model for */
  }

  /* Structure before semantics: a cycle is reported as such even when a node on it has an op kiln
   * does not support, and op families never see a cyclic graph. Sorting needs no parsed params. */
  KILN_TRY(kiln_pass_toposort(g));
  /* parse every node with its op family; the first unsupported op names itself */
  for (int32_t i = 0; i < g->n_nodes; i++) KILN_TRY(kiln_node_parse(g, &g->nodes[i]));
  return NULL;
}

kiln_status kiln_graph_infer_shapes(kiln_graph *g) {
  for (int32_t i = 0; i < g->n_nodes; i++) {
    if (g->nodes[i].dead) continue;
    KILN_TRY(kiln_node_infer(g, &g->nodes[i]));
  }
  return NULL;
}

kiln_status kiln_onnx_load_buffer(const void *data, size_t len, const char *model_dir,
                                  const kiln_onnx_import_options *opts, kiln_graph **out) {
  *out = NULL;
  if (len == 0) return kiln_error(KILN_ERR_PARSE, "not an ONNX model: the file is empty");
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, data);
  if (!m) return kiln_error(KILN_ERR_PARSE, "not an ONNX model: the protobuf is malformed or truncated");
  import_ctx c = {0};
  kiln_status st = kiln_graph_create(&c.g);
  c.model_dir = model_dir;
  if (!st) st = import_model(&c, m);
  if (!st) st = c.deferred;
  else kiln_status_destroy(c.deferred);
  onnx__model_proto__free_unpacked(m, NULL);
  if (!st && !(opts && opts->skip_infer)) st = kiln_graph_infer_shapes(c.g);
  if (st) {
    kiln_graph_destroy(c.g);
    return st;
  }
  *out = c.g;
  return NULL;
}

kiln_status kiln_onnx_load(const char *path, const kiln_onnx_import_options *opts, kiln_graph **out) {
  *out = NULL;
  void *buf;
  size_t len;
  KILN_TRY(kiln_file_read(path, MAX_MODEL_BYTES, &buf, &len));
  char *dir = kiln_path_dirname(path);
  kiln_status st = dir ? kiln_onnx_load_buffer(buf, len, dir, opts, out) : kiln_error(KILN_ERR_OUT_OF_MEMORY, "oom");
  free(dir);
  free(buf);
  return kiln_error_prefix(st, "%s: ", path);
}

kiln_status kiln_network_load_onnx(const char *path, kiln_network **out) { return kiln_onnx_load(path, NULL, out); }

kiln_status kiln_onnx_read_tensor_file(const char *path, kiln_tensor *out, char **name_out) {
  memset(out, 0, sizeof *out);
  if (name_out) *name_out = NULL;
  void *buf;
  size_t len;
  KILN_TRY(kiln_file_read(path, MAX_MODEL_BYTES, &buf, &len));
  Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, buf);
  free(buf);
  if (!t) return kiln_error(KILN_ERR_PARSE, "%s: not a serialized ONNX TensorProto", path);
  import_ctx c = {0};
  kiln_status st = decode_tensor(&c, t, "tensor", out);
  if (!st && name_out && t->name) *name_out = strdup(t->name);
  onnx__tensor_proto__free_unpacked(t, NULL);
  return kiln_error_prefix(st, "%s: ", path);
}
