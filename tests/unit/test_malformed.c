/*
 * Malformed ONNX models: every one must be refused with a clear error (code + a message naming the
 * problem), never a crash. Models are built in code with protobuf-c (so each case is one precise
 * defect in an otherwise valid model) or by mutating bytes. Ends with a deterministic mutation fuzz
 * loop whose only assertion is "no crash" (the sanitizer build catches memory errors).
 *
 * The structural cases use checks that run before op parsing (name resolution, data decoding,
 * topological sort), so they do not depend on which op families are implemented.
 */
#include "testlib.h"

#include "onnx/onnx.h"
#include "passes/passes.h"
#include "onnx.pb-c.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a tiny model builder over fixed storage (protobuf-c structs point into it; nothing to free) ---- */
#define MB_MAX 8
#define MB_MAX_IO 4

typedef struct mb_vi {
  Onnx__ValueInfoProto vi;
  Onnx__TypeProto type;
  Onnx__TypeProto__Tensor tensor;
  Onnx__TensorShapeProto shape;
  Onnx__TensorShapeProto__Dimension dims[10];
  Onnx__TensorShapeProto__Dimension *dim_ptrs[10];
} mb_vi;

typedef struct mb {
  Onnx__ModelProto model;
  Onnx__GraphProto graph;
  Onnx__OperatorSetIdProto opset;
  Onnx__OperatorSetIdProto *opset_ptrs[1];
  Onnx__NodeProto nodes[MB_MAX];
  Onnx__NodeProto *node_ptrs[MB_MAX];
  char *node_in[MB_MAX][MB_MAX_IO], *node_out[MB_MAX][MB_MAX_IO];
  Onnx__AttributeProto attrs[MB_MAX];
  Onnx__AttributeProto *attr_ptrs[MB_MAX];
  int n_attrs;
  Onnx__TensorProto inits[MB_MAX];
  Onnx__TensorProto *init_ptrs[MB_MAX];
  int64_t init_dims[MB_MAX][10];
  Onnx__StringStringEntryProto ext[MB_MAX][3];
  Onnx__StringStringEntryProto *ext_ptrs[MB_MAX][3];
  mb_vi vis[MB_MAX];
  int n_vis;
  Onnx__ValueInfoProto *in_ptrs[MB_MAX], *out_ptrs[MB_MAX];
} mb;

static void mb_init(mb *m) {
  memset(m, 0, sizeof *m);
  m->model = (Onnx__ModelProto)ONNX__MODEL_PROTO__INIT;
  m->graph = (Onnx__GraphProto)ONNX__GRAPH_PROTO__INIT;
  m->opset = (Onnx__OperatorSetIdProto)ONNX__OPERATOR_SET_ID_PROTO__INIT;
  m->opset.has_version = 1;
  m->opset.version = 17;
  m->opset_ptrs[0] = &m->opset;
  m->model.has_ir_version = 1;
  m->model.ir_version = 8;
  m->model.n_opset_import = 1;
  m->model.opset_import = m->opset_ptrs;
  m->model.graph = &m->graph;
  m->graph.name = "g";
  m->graph.node = m->node_ptrs;
  m->graph.initializer = m->init_ptrs;
  m->graph.input = m->in_ptrs;
  m->graph.output = m->out_ptrs;
}

/* A tensor value info; rank < 0 means no shape. dims[i] < -1000 marks a symbolic dim "N". */
static Onnx__ValueInfoProto *mb_vi_make(mb *m, const char *name, int elem_type, int rank, const int64_t *dims) {
  assert_true(m->n_vis < MB_MAX);
  mb_vi *v = &m->vis[m->n_vis++];
  v->vi = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
  v->type = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
  v->tensor = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
  v->shape = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
  v->vi.name = (char *)name;
  v->vi.type = &v->type;
  v->type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  v->type.tensor_type = &v->tensor;
  v->tensor.has_elem_type = 1;
  v->tensor.elem_type = elem_type;
  if (rank >= 0) {
    assert_true(rank <= 10);
    v->tensor.shape = &v->shape;
    v->shape.n_dim = (size_t)rank;
    v->shape.dim = v->dim_ptrs;
    for (int i = 0; i < rank; i++) {
      v->dims[i] = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
      if (dims[i] < -1000) {
        v->dims[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
        v->dims[i].dim_param = "N";
      } else {
        v->dims[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        v->dims[i].dim_value = dims[i];
      }
      v->dim_ptrs[i] = &v->dims[i];
    }
  }
  return &v->vi;
}

static Onnx__ValueInfoProto *mb_input(mb *m, const char *name, int elem_type, int rank, const int64_t *dims) {
  Onnx__ValueInfoProto *vi = mb_vi_make(m, name, elem_type, rank, dims);
  m->in_ptrs[m->graph.n_input++] = vi;
  return vi;
}

static Onnx__ValueInfoProto *mb_output(mb *m, const char *name, int elem_type) {
  Onnx__ValueInfoProto *vi = mb_vi_make(m, name, elem_type, -1, NULL);
  m->out_ptrs[m->graph.n_output++] = vi;
  return vi;
}

/* ins/outs: NULL-terminated name lists. */
static Onnx__NodeProto *mb_node(mb *m, const char *op, const char *name, const char *const *ins,
                                const char *const *outs) {
  size_t k = m->graph.n_node++;
  assert_true(k < MB_MAX);
  Onnx__NodeProto *n = &m->nodes[k];
  *n = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
  n->op_type = (char *)op;
  n->name = (char *)name;
  n->input = m->node_in[k];
  n->output = m->node_out[k];
  for (; ins && ins[n->n_input]; n->n_input++) m->node_in[k][n->n_input] = (char *)ins[n->n_input];
  for (; outs && outs[n->n_output]; n->n_output++) m->node_out[k][n->n_output] = (char *)outs[n->n_output];
  m->node_ptrs[k] = n;
  return n;
}

static Onnx__AttributeProto *mb_attr(mb *m, Onnx__NodeProto *n, const char *name, Onnx__AttributeProto__AttributeType type) {
  assert_true(m->n_attrs < MB_MAX);
  Onnx__AttributeProto *a = &m->attrs[m->n_attrs];
  *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
  a->name = (char *)name;
  a->has_type = 1;
  a->type = type;
  if (!n->attribute) n->attribute = &m->attr_ptrs[m->n_attrs];
  m->attr_ptrs[m->n_attrs++] = a;
  n->n_attribute++; /* a node's attributes must be added consecutively */
  return a;
}

/* A tensor with raw_data (data may be NULL when raw_len is 0). */
static Onnx__TensorProto *mb_tensor_init(Onnx__TensorProto *t, int64_t *dim_store, const char *name, int dtype,
                                         int rank, const int64_t *dims, const void *data, size_t raw_len) {
  *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
  t->name = (char *)name;
  t->has_data_type = 1;
  t->data_type = dtype;
  t->n_dims = (size_t)rank;
  t->dims = dim_store;
  for (int i = 0; i < rank; i++) dim_store[i] = dims[i];
  t->has_raw_data = 1;
  t->raw_data.len = raw_len;
  t->raw_data.data = (uint8_t *)data;
  return t;
}

static Onnx__TensorProto *mb_initializer(mb *m, const char *name, int dtype, int rank, const int64_t *dims,
                                         const void *data, size_t raw_len) {
  size_t k = m->graph.n_initializer++;
  assert_true(k < MB_MAX && rank <= 10);
  m->init_ptrs[k] = &m->inits[k];
  return mb_tensor_init(&m->inits[k], m->init_dims[k], name, dtype, rank, dims, data, raw_len);
}

/* Make initializer t (the k-th) external: location (+ optional length). */
static void mb_external(mb *m, Onnx__TensorProto *t, const char *location, const char *length) {
  size_t k = (size_t)(t - m->inits);
  t->has_raw_data = 0;
  t->has_data_location = 1;
  t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  t->external_data = m->ext_ptrs[k];
  const char *keys[2] = {"location", "length"}, *vals[2] = {location, length};
  for (int i = 0; i < 2 && vals[i]; i++) {
    m->ext[k][i] = (Onnx__StringStringEntryProto)ONNX__STRING_STRING_ENTRY_PROTO__INIT;
    m->ext[k][i].key = (char *)keys[i];
    m->ext[k][i].value = (char *)vals[i];
    m->ext_ptrs[k][i] = &m->ext[k][i];
    t->n_external_data++;
  }
}

static uint8_t *mb_pack(const mb *m, size_t *len) {
  *len = onnx__model_proto__get_packed_size(&m->model);
  uint8_t *buf = malloc(*len ? *len : 1);
  assert_non_null(buf);
  assert_int_equal(onnx__model_proto__pack(&m->model, buf), *len);
  return buf;
}

/* Import the model (no shape inference: these cases are about structure), expect an error. */
static kiln_status mb_load_dir(const mb *m, const char *model_dir) {
  size_t len;
  uint8_t *buf = mb_pack(m, &len);
  kiln_graph *g = (kiln_graph *)0x1; /* must be reset to NULL on error */
  kiln_onnx_import_options o = {.skip_infer = true};
  kiln_status st = kiln_onnx_load_buffer(buf, len, model_dir, &o, &g);
  free(buf);
  if (st) assert_null(g);
  else kiln_graph_destroy(g);
  return st;
}
static kiln_status mb_load(const mb *m) { return mb_load_dir(m, NULL); }

/* The base most cases start from: X[1,4] float --Relu--> Y, plus a 2x2 float initializer W. */
static const float W_DATA[4] = {1, 2, 3, 4};
static const int64_t D22[2] = {2, 2};
static const int64_t D14[2] = {1, 4};
static void mb_base(mb *m) {
  mb_init(m);
  mb_input(m, "X", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, D14);
  mb_initializer(m, "W", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, D22, W_DATA, sizeof W_DATA);
  mb_node(m, "Relu", "relu", (const char *[]){"X", NULL}, (const char *[]){"Y", NULL});
  mb_output(m, "Y", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
}

/* ---- byte-level damage ------------------------------------------------------------------------------- */
static void test_empty_buffer(void **state) {
  kiln_graph *g;
  expect_error(kiln_onnx_load_buffer("", 0, NULL, NULL, &g), KILN_ERR_PARSE, "empty");
  assert_null(g);
}

static void test_empty_file(void **state) {
  char path[] = "/tmp/kiln_malformed_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  kiln_graph *g;
  expect_error(kiln_onnx_load(path, NULL, &g), KILN_ERR_PARSE, "empty");
  assert_null(g);
  unlink(path);
  /* and a file that is not there, and a directory */
  expect_error(kiln_onnx_load(path, NULL, &g), KILN_ERR_IO, "cannot open");
  expect_error(kiln_onnx_load("/tmp", NULL, &g), KILN_ERR_IO, "not a regular file");
}

static void test_truncated_yolo(void **state) {
  const char *path = KILN_SHARED_DIR "/models/yolov8n.onnx";
  size_t len;
  uint8_t *buf = test_read_file(path, &len);
  if (!buf || len < 2000000) {
    free(buf);
    print_message("skipped: %s not found\n", path);
    skip();
  }
  /* Offsets inside fields (never on a field boundary, where a shorter file would still be well formed):
   * the header, the graph's length prefix, deep inside the weights, the opset key, the last metadata. */
  size_t cuts[] = {1, 3, 5, 60, 70, 4096, 1u << 20, len / 2, len - 1000000, 12820421, len - 5, len - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    if (cuts[i] >= len) continue;
    kiln_graph *g;
    kiln_status st = kiln_onnx_load_buffer(buf, cuts[i], KILN_SHARED_DIR "/models", NULL, &g);
    if (!st) {
      kiln_graph_destroy(g);
      print_error("yolov8n.onnx cut at %zu of %zu bytes imported\n", cuts[i], len);
      fail();
    }
    expect_error(st, KILN_ERR_PARSE, "truncated");
  }
  free(buf);
}

static uint64_t rng_next(uint64_t *s) { /* splitmix64: deterministic, seedable */
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void test_random_bytes(void **state) {
  for (uint64_t seed = 1; seed <= 200; seed++) {
    uint64_t s = seed;
    size_t len = 1 + rng_next(&s) % 4096;
    uint8_t *buf = malloc(len);
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)rng_next(&s);
    kiln_graph *g;
    kiln_status st = kiln_onnx_load_buffer(buf, len, NULL, NULL, &g);
    free(buf);
    if (!st) {
      kiln_graph_destroy(g);
      print_error("random bytes (seed %llu) imported\n", (unsigned long long)seed);
      fail();
    }
    /* whatever the decoder made of it, the message says it is not a (valid) model */
    assert_int_equal(kiln_status_get_code(st), KILN_ERR_PARSE);
    assert_true(strlen(kiln_status_message(st)) > 10);
    kiln_status_destroy(st);
  }
}

static void test_wrong_wire_types(void **state) {
  kiln_graph *g;
  /* ir_version = 8, then field 7 (graph, a message) encoded as a varint */
  static const uint8_t graph_varint[] = {0x08, 0x08, 0x38, 0x05};
  expect_error(kiln_onnx_load_buffer(graph_varint, sizeof graph_varint, NULL, NULL, &g), KILN_ERR_PARSE, "malformed");
  /* field 1 (ir_version, a varint) encoded as length-delimited */
  static const uint8_t ir_bytes[] = {0x0a, 0x01, 0x00};
  expect_error(kiln_onnx_load_buffer(ir_bytes, sizeof ir_bytes, NULL, NULL, &g), KILN_ERR_PARSE, "malformed");
  /* field 7 as a fixed32 */
  static const uint8_t graph_fixed32[] = {0x08, 0x08, 0x3d, 1, 2, 3, 4};
  expect_error(kiln_onnx_load_buffer(graph_fixed32, sizeof graph_fixed32, NULL, NULL, &g), KILN_ERR_PARSE, "malformed");
  /* a graph whose length prefix runs past the end of the buffer */
  static const uint8_t graph_long[] = {0x08, 0x08, 0x3a, 0x7f, 0x0a, 0x00};
  expect_error(kiln_onnx_load_buffer(graph_long, sizeof graph_long, NULL, NULL, &g), KILN_ERR_PARSE, "truncated");
  /* a well-formed protobuf that is not a model: only an ir_version */
  static const uint8_t no_graph[] = {0x08, 0x08};
  expect_error(kiln_onnx_load_buffer(no_graph, sizeof no_graph, NULL, NULL, &g), KILN_ERR_PARSE, "no graph");
  /* inside a valid model: the node's op_type (field 4 of NodeProto) replaced by a varint */
  mb m;
  mb_base(&m);
  size_t len;
  uint8_t *buf = mb_pack(&m, &len);
  uint8_t *p = memmem(buf, len, "\x22\x04Relu", 6);
  assert_non_null(p);
  p[0] = 0x20; /* field 4, varint 4; then "Relu" bytes are junk tags */
  expect_error(kiln_onnx_load_buffer(buf, len, NULL, NULL, &g), KILN_ERR_PARSE, "malformed");
  free(buf);
}

/* ---- structure ----------------------------------------------------------------------------------- */
static void test_base_model_imports(void **state) {
  /* sanity: the base is valid apart from whatever the op family says about Relu */
  mb m;
  mb_base(&m);
  kiln_status st = mb_load(&m);
  if (st) expect_error(st, KILN_ERR_UNSUPPORTED, "Relu");
}

static void test_missing_initializer(void **state) {
  mb m;
  mb_base(&m);
  mb_node(&m, "Add", "add", (const char *[]){"Y", "B", NULL}, (const char *[]){"Z", NULL});
  expect_error(mb_load(&m), KILN_ERR_PARSE, "input 'B' is not produced");
}

static void test_cycle(void **state) {
  mb m;
  mb_init(&m);
  mb_input(&m, "X", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, D14);
  mb_node(&m, "Add", "A", (const char *[]){"X", "b", NULL}, (const char *[]){"a", NULL});
  mb_node(&m, "Relu", "B", (const char *[]){"a", NULL}, (const char *[]){"b", NULL});
  mb_output(&m, "b", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
  expect_error(mb_load(&m), KILN_ERR_PARSE, "cycle");
  /* the message names a node on the cycle */
  kiln_status st = mb_load(&m);
  assert_non_null(st);
  const char *msg = kiln_status_message(st);
  assert_true(strstr(msg, "'A'") || strstr(msg, "'B'"));
  kiln_status_destroy(st);
}

static void test_self_loop(void **state) {
  mb m;
  mb_init(&m);
  mb_input(&m, "X", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, D14);
  mb_node(&m, "Add", "loop", (const char *[]){"X", "a", NULL}, (const char *[]){"a", NULL});
  mb_output(&m, "a", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
  expect_error(mb_load(&m), KILN_ERR_PARSE, "cycle through node 'loop'");
}

static void test_dangling_output(void **state) {
  mb m;
  mb_base(&m);
  mb_output(&m, "nowhere", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
  expect_error(mb_load(&m), KILN_ERR_PARSE, "graph output 'nowhere' is not produced");
  mb_init(&m); /* and a graph with no outputs at all */
  mb_input(&m, "X", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, D14);
  expect_error(mb_load(&m), KILN_ERR_PARSE, "no outputs");
}

static void test_duplicate_outputs(void **state) {
  mb m;
  mb_base(&m);
  mb_node(&m, "Relu", "relu2", (const char *[]){"X", NULL}, (const char *[]){"Y", NULL});
  expect_error(mb_load(&m), KILN_ERR_PARSE, "output 'Y' is already defined");
  mb_base(&m); /* a node output that shadows an initializer */
  mb_node(&m, "Relu", "relu2", (const char *[]){"X", NULL}, (const char *[]){"W", NULL});
  expect_error(mb_load(&m), KILN_ERR_PARSE, "output 'W' is already defined");
  mb_base(&m); /* a graph input listed twice */
  mb_input(&m, "X", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, D14);
  expect_error(mb_load(&m), KILN_ERR_PARSE, "'X' is listed twice");
}

static void test_no_op_type(void **state) {
  mb m;
  mb_base(&m);
  m.nodes[0].op_type = NULL;
  expect_error(mb_load(&m), KILN_ERR_PARSE, "has no op_type");
  m.nodes[0].op_type = "";
  expect_error(mb_load(&m), KILN_ERR_PARSE, "has no op_type");
}

static void test_unknown_op(void **state) {
  mb m;
  mb_base(&m);
  m.nodes[0].op_type = "FrobnicateV7";
  expect_error(mb_load(&m), KILN_ERR_UNSUPPORTED, "unsupported op 'FrobnicateV7'");
  m.nodes[0].domain = "com.example"; /* a custom domain is named too */
  m.nodes[0].op_type = "Relu";
  expect_error(mb_load(&m), KILN_ERR_UNSUPPORTED, "com.example");
}

/* ---- tensors --------------------------------------------------------------------------------------- */
static void test_raw_data_mismatch(void **state) {
  mb m;
  mb_base(&m);
  m.inits[0].raw_data.len = 12;
  expect_error(mb_load(&m), KILN_ERR_PARSE, "raw_data has 12 bytes but the shape needs 16");
  /* typed field with the wrong count */
  mb_base(&m);
  static float f3[3] = {1, 2, 3};
  m.inits[0].has_raw_data = 0;
  m.inits[0].n_float_data = 3;
  m.inits[0].float_data = f3;
  expect_error(mb_load(&m), KILN_ERR_PARSE, "float_data has 3 values");
}

static void test_huge_dims_tiny_data(void **state) {
  /* 2^40 elements is within the limit, but 4 bytes of data are not 4 TiB: refuse without allocating
   * (the sanitizer build aborts on an allocation that size) */
  mb m;
  mb_base(&m);
  m.init_dims[0][0] = INT64_C(1) << 20;
  m.init_dims[0][1] = INT64_C(1) << 20;
  m.inits[0].raw_data.len = 4;
  expect_error(mb_load(&m), KILN_ERR_PARSE, "raw_data has 4 bytes");
  m.inits[0].has_raw_data = 0; /* no data at all */
  expect_error(mb_load(&m), KILN_ERR_PARSE, "float_data has 0 values");
}

static void test_sparse_initializer(void **state) {
  /* a sparse initializer whose dense form would be 2^40 floats, from a few bytes of file */
  mb m;
  mb_base(&m);
  Onnx__SparseTensorProto sp = ONNX__SPARSE_TENSOR_PROTO__INIT, *sp_ptrs[1] = {&sp};
  Onnx__TensorProto vals, idx;
  int64_t vdims[1], idims[1], ddims[2] = {INT64_C(1) << 20, INT64_C(1) << 20};
  static const int64_t one_dim[1] = {0}, nnz1[1] = {1};
  mb_tensor_init(&vals, vdims, "S", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, one_dim, NULL, 0);
  sp.values = &vals;
  sp.n_dims = 2;
  sp.dims = ddims;
  m.graph.n_sparse_initializer = 1;
  m.graph.sparse_initializer = sp_ptrs;
  expect_error(mb_load(&m), KILN_ERR_UNSUPPORTED, "sparse tensor 'S' has 1099511627776 elements");
  /* an index out of range */
  ddims[0] = 2, ddims[1] = 2;
  static const float v1 = 1;
  static const int64_t bad_index = 7;
  mb_tensor_init(&vals, vdims, "S", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, nnz1, &v1, sizeof v1);
  mb_tensor_init(&idx, idims, "Si", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, nnz1, &bad_index, sizeof bad_index);
  sp.indices = &idx;
  expect_error(mb_load(&m), KILN_ERR_PARSE, "index out of range");
  /* negative dims */
  ddims[0] = -1;
  expect_error(mb_load(&m), KILN_ERR_PARSE, "invalid dims");
}

static void test_absurd_dims(void **state) {
  mb m;
  mb_base(&m);
  m.init_dims[0][0] = INT64_C(1) << 40;
  m.init_dims[0][1] = INT64_C(1) << 40;
  expect_error(mb_load(&m), KILN_ERR_PARSE, "initializer 'W' has an absurd size");
  mb_base(&m);
  m.init_dims[0][0] = -3;
  expect_error(mb_load(&m), KILN_ERR_PARSE, "invalid dim -3");
  mb_base(&m);
  m.init_dims[0][1] = INT64_MAX;
  expect_error(mb_load(&m), KILN_ERR_PARSE, "invalid dim");
  /* graph inputs */
  mb_base(&m);
  m.vis[0].dims[0].dim_value = INT64_C(1) << 40;
  m.vis[0].dims[1].dim_value = INT64_C(1) << 40;
  expect_error(mb_load(&m), KILN_ERR_PARSE, "'X' has an absurd size");
  mb_base(&m);
  m.vis[0].dims[1].dim_value = -7;
  expect_error(mb_load(&m), KILN_ERR_PARSE, "'X' has an invalid dim -7");
}

static void test_string_initializer(void **state) {
  mb m;
  mb_base(&m);
  static ProtobufCBinaryData strs[2] = {{1, (uint8_t *)"a"}, {1, (uint8_t *)"b"}};
  m.inits[0].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__STRING;
  m.inits[0].has_raw_data = 0;
  m.inits[0].n_dims = 1;
  m.inits[0].dims[0] = 2;
  m.inits[0].n_string_data = 2;
  m.inits[0].string_data = strs;
  expect_error(mb_load(&m), KILN_ERR_UNSUPPORTED, "string");
  mb_base(&m); /* a string graph input */
  m.vis[0].tensor.elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__STRING;
  expect_error(mb_load(&m), KILN_ERR_UNSUPPORTED, "string");
}

static void test_bad_dtype(void **state) {
  mb m;
  mb_base(&m);
  m.inits[0].data_type = 0;
  expect_error(mb_load(&m), KILN_ERR_PARSE, "no dtype");
  m.inits[0].data_type = 1234;
  expect_error(mb_load(&m), KILN_ERR_UNSUPPORTED, "dtype 1234");
}

static void test_rank_9(void **state) {
  static const int64_t ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  static const float one = 1;
  mb m;
  mb_base(&m);
  mb_initializer(&m, "R9", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 9, ones, &one, sizeof one);
  expect_error(mb_load(&m), KILN_ERR_UNSUPPORTED, "rank 9");
  mb_base(&m);
  mb_input(&m, "X9", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 9, ones);
  expect_error(mb_load(&m), KILN_ERR_UNSUPPORTED, "'X9' has rank 9");
}

/* ---- external data ---------------------------------------------------------------------------------- */
static void write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

static void test_external_data(void **state) {
  char dir[] = "/tmp/kiln_ext_XXXXXX", outside[] = "/tmp/kiln_ext_out_XXXXXX";
  assert_non_null(mkdtemp(dir));
  assert_non_null(mkdtemp(outside));
  char path[256], target[256];
  mb m;
  /* without a model folder (buffer import), external data is refused */
  mb_base(&m);
  mb_external(&m, &m.inits[0], "w.bin", NULL);
  expect_error(mb_load(&m), KILN_ERR_UNSUPPORTED, "no folder");
  /* paths that leave the folder */
  const char *bad[] = {"../x.bin", "/etc/passwd", "sub/../../x.bin", "..", ""};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mb_base(&m);
    mb_external(&m, &m.inits[0], bad[i], NULL);
    expect_error(mb_load_dir(&m, dir), KILN_ERR_PARSE, bad[i][0] ? "leaves the model folder" : "without a location");
  }
  /* a symlink in the model folder pointing outside it (to a real file, so only the check stops it) */
  snprintf(target, sizeof target, "%s/secret.bin", outside);
  write_file(target, W_DATA, sizeof W_DATA);
  snprintf(path, sizeof path, "%s/link.bin", dir);
  assert_int_equal(symlink(target, path), 0);
  mb_base(&m);
  mb_external(&m, &m.inits[0], "link.bin", NULL);
  expect_error(mb_load_dir(&m, dir), KILN_ERR_PARSE, "resolves outside the model folder");
  /* a file that does not exist */
  mb_base(&m);
  mb_external(&m, &m.inits[0], "missing.bin", NULL);
  expect_error(mb_load_dir(&m, dir), KILN_ERR_IO, "missing.bin");
  /* too short: 8 bytes for a 16-byte tensor; and a wrong declared length */
  snprintf(path, sizeof path, "%s/short.bin", dir);
  write_file(path, W_DATA, 8);
  mb_base(&m);
  mb_external(&m, &m.inits[0], "short.bin", NULL);
  expect_error(mb_load_dir(&m, dir), KILN_ERR_PARSE, "too short");
  mb_base(&m);
  mb_external(&m, &m.inits[0], "short.bin", "8");
  expect_error(mb_load_dir(&m, dir), KILN_ERR_PARSE, "length 8");
  mb_base(&m);
  mb_external(&m, &m.inits[0], "short.bin", "-1");
  expect_error(mb_load_dir(&m, dir), KILN_ERR_PARSE, "bad external data length");
  /* huge claimed shape with a short file: refused before allocating */
  mb_base(&m);
  m.init_dims[0][0] = INT64_C(1) << 20;
  m.init_dims[0][1] = INT64_C(1) << 20;
  mb_external(&m, &m.inits[0], "short.bin", NULL);
  expect_error(mb_load_dir(&m, dir), KILN_ERR_PARSE, "too short");
  /* and the good case: a full file inside the folder imports (up to the op) */
  snprintf(path, sizeof path, "%s/w.bin", dir);
  write_file(path, W_DATA, sizeof W_DATA);
  mb_base(&m);
  mb_external(&m, &m.inits[0], "w.bin", "16");
  kiln_status st = mb_load_dir(&m, dir);
  if (st) expect_error(st, KILN_ERR_UNSUPPORTED, "Relu");
  /* clean up */
  const char *files[] = {"link.bin", "short.bin", "w.bin"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    unlink(path);
  }
  unlink(target);
  rmdir(dir);
  rmdir(outside);
}

/* ---- mutation fuzz ------------------------------------------------------------------------------------ */
/* A small but varied valid model: graph input with a symbolic dim, Conv with attributes, Constant with a
 * tensor attribute, Add, Reshape with an int64 shape initializer, Softmax. */
static const float CONV_W[2 * 3 * 3 * 3] = {0.5f, -1, 2};
static const float CONV_B[2] = {0.25f, -0.25f};
static const int64_t RESHAPE_TO[2] = {-1, 16};
static const float CONST_V[1] = {3};
static const int64_t KSHAPE[2] = {3, 3}, PADS[4] = {1, 1, 1, 1}, STRIDES[2] = {2, 2};
static Onnx__TensorProto fuzz_attr_tensor;
static int64_t fuzz_attr_tensor_dims[1];

static void fuzz_model(mb *m) {
  mb_init(m);
  static const int64_t xdims[4] = {-2000, 3, 8, 8}, wdims[4] = {2, 3, 3, 3}, bdims[1] = {2}, rdims[1] = {2};
  mb_input(m, "images", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 4, xdims);
  mb_initializer(m, "conv.w", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 4, wdims, CONV_W, sizeof CONV_W);
  mb_initializer(m, "conv.b", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, bdims, CONV_B, sizeof CONV_B);
  mb_initializer(m, "shape", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, rdims, RESHAPE_TO, sizeof RESHAPE_TO);
  Onnx__NodeProto *conv = mb_node(m, "Conv", "conv", (const char *[]){"images", "conv.w", "conv.b", NULL},
                                  (const char *[]){"c", NULL});
  Onnx__AttributeProto *a = mb_attr(m, conv, "kernel_shape", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  a->n_ints = 2, a->ints = (int64_t *)KSHAPE;
  a = mb_attr(m, conv, "pads", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  a->n_ints = 4, a->ints = (int64_t *)PADS;
  a = mb_attr(m, conv, "strides", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
  a->n_ints = 2, a->ints = (int64_t *)STRIDES;
  Onnx__NodeProto *cst = mb_node(m, "Constant", "k", NULL, (const char *[]){"k", NULL});
  a = mb_attr(m, cst, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
  static const int64_t one[1] = {1};
  a->t = mb_tensor_init(&fuzz_attr_tensor, fuzz_attr_tensor_dims, "kv", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, one,
                        CONST_V, sizeof CONST_V);
  mb_node(m, "Add", "add", (const char *[]){"c", "k", NULL}, (const char *[]){"s", NULL});
  mb_node(m, "Reshape", "reshape", (const char *[]){"s", "shape", NULL}, (const char *[]){"r", NULL});
  Onnx__NodeProto *sm = mb_node(m, "Softmax", "softmax", (const char *[]){"r", NULL}, (const char *[]){"y", NULL});
  a = mb_attr(m, sm, "axis", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
  a->i = -1;
  mb_output(m, "y", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
}

/* KILN_FUZZ_SCALE=N multiplies the fuzz loops' iterations, for a longer local campaign (default 1). */
static int fuzz_scale(void) {
  const char *e = getenv("KILN_FUZZ_SCALE");
  int n = e ? atoi(e) : 1;
  return n < 1 ? 1 : n;
}

/* Outcome counts per status code (index 0: imported), printed so one can see how deep a loop reaches. */
static int fuzz_counts[16];

static void fuzz_report(const char *what) {
  print_message("%s: %d imported, %d parse errors, %d unsupported, %d shape errors, %d other\n", what,
                fuzz_counts[0], fuzz_counts[KILN_ERR_PARSE], fuzz_counts[KILN_ERR_UNSUPPORTED],
                fuzz_counts[KILN_ERR_SHAPE], fuzz_counts[KILN_ERR_IO] + fuzz_counts[KILN_ERR_OUT_OF_MEMORY] +
                fuzz_counts[KILN_ERR_INVALID_ARGUMENT] + fuzz_counts[KILN_ERR_INTERNAL]);
  memset(fuzz_counts, 0, sizeof fuzz_counts);
}

static void fuzz_import(const uint8_t *buf, size_t len) {
  kiln_graph *g = NULL;
  kiln_status st = kiln_onnx_load_buffer(buf, len, NULL, NULL, &g);
  fuzz_counts[st ? (int)kiln_status_get_code(st) & 15 : 0]++;
  if (st) {
    assert_null(g);
    assert_true(kiln_status_message(st)[0] != 0); /* an error always says something */
    kiln_status_destroy(st);
  } else {
    kiln_graph_destroy(g);
  }
}

/* Import, then evaluate every node whose inputs are constant (what `surgeon --fold-constants` does). */
static void fuzz_fold(const uint8_t *buf, size_t len) {
  kiln_graph *g = NULL;
  kiln_status st = kiln_onnx_load_buffer(buf, len, NULL, NULL, &g);
  fuzz_counts[st ? (int)kiln_status_get_code(st) & 15 : 0]++;
  if (st) {
    assert_null(g);
    assert_true(kiln_status_message(st)[0] != 0);
    kiln_status_destroy(st);
    return;
  }
  kiln_status_destroy(kiln_pass_fold_constants(g, NULL));
  kiln_graph_destroy(g);
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_mutation_fuzz(void **state) {
  mb m;
  fuzz_model(&m);
  size_t base_len;
  uint8_t *base = mb_pack(&m, &base_len);
  { /* the unmutated model imports once its ops are implemented; say why not, to see how deep we go */
    kiln_graph *g = NULL;
    kiln_status st = kiln_onnx_load_buffer(base, base_len, NULL, NULL, &g);
    if (st) print_message("fuzz base model: %s\n", kiln_status_message(st));
    kiln_status_destroy(st);
    kiln_graph_destroy(g);
  }
  uint64_t s = 0x6b696c6e; /* fixed seed: failures reproduce */
  size_t cap = base_len + 64;
  uint8_t *buf = malloc(cap);
  static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0x08, 0x0a, 0x12, 0x3a, 0x42};
  int iters = 20000 * fuzz_scale();
  for (int it = 0; it < iters; it++) {
    memcpy(buf, base, base_len);
    size_t len = base_len;
    int n_mut = 1 + (int)(rng_next(&s) % 4);
    for (int k = 0; k < n_mut && len > 1; k++) {
      size_t pos = rng_next(&s) % len;
      switch (rng_next(&s) % 6) {
      case 0: buf[pos] ^= (uint8_t)(1u << (rng_next(&s) % 8)); break; /* flip a bit */
      case 1: buf[pos] = (uint8_t)rng_next(&s); break;                /* random byte */
      case 2: buf[pos] = interesting[rng_next(&s) % sizeof interesting]; break;
      case 3: /* insert a byte */
        if (len < cap) {
          memmove(buf + pos + 1, buf + pos, len - pos);
          buf[pos] = (uint8_t)rng_next(&s);
          len++;
        }
        break;
      case 4: /* delete a byte */
        memmove(buf + pos, buf + pos + 1, len - pos - 1);
        len--;
        break;
      default: /* truncate */
        len = pos + 1;
        break;
      }
    }
    fuzz_import(buf, len);
  }
  free(buf);
  free(base);
  fuzz_report("byte mutations");
}

/* Structure-aware fuzz: the model stays well-formed protobuf, but its fields take hostile values
 * (dims, dtypes, data sizes, names, attribute kinds), reaching checks that byte flips rarely do. */
static void test_field_fuzz(void **state) {
  static const int64_t dim_vals[] = {0, 1, 2, 3, -1, -2, INT64_C(1) << 20, INT64_C(1) << 31, INT64_C(1) << 40,
                                     (INT64_C(1) << 40) + 1, INT64_MAX, INT64_MIN};
  static const char *names[] = {"images", "conv.w", "conv.b", "shape", "c", "k", "s", "r", "y", "", "nope"};
  static uint8_t junk[64];
  uint64_t s = 42;
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)rng_next(&s);
  for (int it = 0, iters = 10000 * fuzz_scale(); it < iters; it++) {
    mb m;
    fuzz_model(&m);
    int n_mut = 1 + (int)(rng_next(&s) % 3);
    for (int k = 0; k < n_mut; k++) {
      Onnx__TensorProto *t = m.graph.n_initializer ? &m.inits[rng_next(&s) % m.graph.n_initializer] : NULL;
      Onnx__NodeProto *n = &m.nodes[rng_next(&s) % m.graph.n_node];
      mb_vi *v = &m.vis[rng_next(&s) % (size_t)m.n_vis];
      switch (rng_next(&s) % 12) {
      case 0: if (t && t->n_dims) t->dims[rng_next(&s) % t->n_dims] = dim_vals[rng_next(&s) % 12]; break;
      case 1: if (t) t->data_type = (int32_t)(rng_next(&s) % 26); break;
      case 2: if (t) t->raw_data.len = rng_next(&s) % (t->raw_data.len + 1); break;
      case 3: if (t) t->raw_data.data = junk, t->raw_data.len = rng_next(&s) % sizeof junk; break;
      case 4: if (n->n_input) n->input[rng_next(&s) % n->n_input] = (char *)names[rng_next(&s) % 11]; break;
      case 5: if (n->n_output) n->output[rng_next(&s) % n->n_output] = (char *)names[rng_next(&s) % 11]; break;
      case 6: if (n->n_attribute) n->attribute[rng_next(&s) % n->n_attribute]->type =
                  (Onnx__AttributeProto__AttributeType)(rng_next(&s) % 16); break;
      case 7: if (v->tensor.shape && v->shape.n_dim) {
                Onnx__TensorShapeProto__Dimension *d = &v->dims[rng_next(&s) % v->shape.n_dim];
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = dim_vals[rng_next(&s) % 12];
              } break;
      case 8: v->tensor.elem_type = (int32_t)(rng_next(&s) % 26); break;
      case 9: m.opset.version = (int64_t)(rng_next(&s) % 30) - 2; break;
      case 10: if (n->n_input) n->n_input--; break;                 /* drop an input */
      default: if (n->n_attribute) n->n_attribute--; break;         /* drop an attribute */
      }
    }
    size_t len;
    uint8_t *buf = mb_pack(&m, &len);
    fuzz_import(buf, len);
    free(buf);
  }
  fuzz_report("field mutations");
}

/* Byte mutations of real ONNX node-test models (every op family, real attributes), imported with shape
 * inference and then constant-folded: reaches the op families' parse/infer and reference kernels with
 * hostile attributes and shapes. Every 3rd test directory, 16 mutants each, fixed seed. */
static void test_nodetest_model_fuzz(void **state) {
  const char *root = KILN_TESTDATA_DIR;
  DIR *dh = opendir(root);
  if (!dh) {
    print_message("skipped: %s not found\n", root);
    skip();
  }
  char **names = NULL;
  int n = 0;
  for (struct dirent *e; (e = readdir(dh));) {
    if (strncmp(e->d_name, "test_", 5) != 0) continue;
    names = realloc(names, sizeof(char *) * (size_t)(n + 1));
    names[n++] = strdup(e->d_name);
  }
  closedir(dh);
  qsort(names, (size_t)n, sizeof(char *), name_cmp); /* readdir order varies: sort for reproducibility */
  uint64_t s = 7;
  int every = fuzz_scale() > 1 ? 1 : 3, mutants = 16 * fuzz_scale();
  for (int i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/model.onnx", root, names[i]);
    size_t len;
    uint8_t *base = i % every == 0 ? test_read_file(path, &len) : NULL;
    if (base && len > 0 && len < (1u << 20)) {
      uint8_t *buf = malloc(len);
      for (int k = 0; k < mutants; k++) {
        memcpy(buf, base, len);
        int n_mut = 1 + (int)(rng_next(&s) % 3);
        for (int j = 0; j < n_mut; j++) {
          size_t pos = rng_next(&s) % len;
          if (rng_next(&s) % 2) buf[pos] ^= (uint8_t)(1u << (rng_next(&s) % 8));
          else buf[pos] = (uint8_t)rng_next(&s);
        }
        fuzz_fold(buf, len);
      }
      free(buf);
    }
    free(base);
    free(names[i]);
  }
  free(names);
  fuzz_report("node-test model mutations");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty_buffer),
      cmocka_unit_test(test_empty_file),
      cmocka_unit_test(test_truncated_yolo),
      cmocka_unit_test(test_random_bytes),
      cmocka_unit_test(test_wrong_wire_types),
      cmocka_unit_test(test_base_model_imports),
      cmocka_unit_test(test_missing_initializer),
      cmocka_unit_test(test_cycle),
      cmocka_unit_test(test_self_loop),
      cmocka_unit_test(test_dangling_output),
      cmocka_unit_test(test_duplicate_outputs),
      cmocka_unit_test(test_no_op_type),
      cmocka_unit_test(test_unknown_op),
      cmocka_unit_test(test_raw_data_mismatch),
      cmocka_unit_test(test_huge_dims_tiny_data),
      cmocka_unit_test(test_absurd_dims),
      cmocka_unit_test(test_sparse_initializer),
      cmocka_unit_test(test_string_initializer),
      cmocka_unit_test(test_bad_dtype),
      cmocka_unit_test(test_rank_9),
      cmocka_unit_test(test_external_data),
      cmocka_unit_test(test_mutation_fuzz),
      cmocka_unit_test(test_field_fuzz),
      cmocka_unit_test(test_nodetest_model_fuzz),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
