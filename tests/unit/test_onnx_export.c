/* ONNX export: graphs built in code are saved, checked at the protobuf level and re-imported. */
#include "testlib.h"

#include "core/dtype.h"
#include "onnx/onnx.h"

#include "onnx.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers --------------------------------------------------------------------------------------- */
typedef struct tmpdir {
  char dir[64];
  char path[128];
} tmpdir;

static void tmp_open(tmpdir *t, const char *file) {
  snprintf(t->dir, sizeof t->dir, "/tmp/kiln_export_XXXXXX");
  assert_non_null(mkdtemp(t->dir));
  snprintf(t->path, sizeof t->path, "%s/%s", t->dir, file);
}

static void tmp_close(tmpdir *t) {
  unlink(t->path);
  rmdir(t->dir);
}

static Onnx__ModelProto *read_proto(const char *path) {
  size_t len;
  void *buf = test_read_file(path, &len);
  assert_non_null(buf);
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
  free(buf);
  assert_non_null(m);
  return m;
}

static void mark_input(kiln_graph *g, int32_t id) {
  g->inputs = realloc(g->inputs, sizeof(int32_t) * (size_t)(g->n_inputs + 1));
  assert_non_null(g->inputs);
  g->inputs[g->n_inputs++] = id;
  g->values[id].flags |= KILN_VALUE_GRAPH_INPUT;
}

static void mark_output(kiln_graph *g, int32_t id) {
  g->outputs = realloc(g->outputs, sizeof(int32_t) * (size_t)(g->n_outputs + 1));
  assert_non_null(g->outputs);
  g->outputs[g->n_outputs++] = id;
  g->values[id].flags |= KILN_VALUE_GRAPH_OUTPUT;
}

static int32_t add_const(kiln_graph *g, const char *name, kiln_dtype dt, int32_t rank, const int64_t *dims,
                         const void *data) {
  int32_t id;
  ASSERT_OK(kiln_graph_add_value(g, name, &id));
  kiln_shape s;
  kiln_shape_init(&s, rank, dims);
  ASSERT_OK(kiln_value_set_constant(g, id, dt, &s, data));
  g->values[id].flags |= KILN_VALUE_INITIALIZER;
  return id;
}

static int32_t add_plain(kiln_graph *g, const char *name) {
  int32_t id;
  ASSERT_OK(kiln_graph_add_value(g, name, &id));
  return id;
}

static void set_opset(kiln_graph *g, int64_t opset, int64_t ir) {
  g->opset = opset;
  g->ir_version = ir;
  g->opsets = calloc(1, sizeof(kiln_opset));
  assert_non_null(g->opsets);
  g->opsets[0].domain = strdup("");
  g->opsets[0].version = opset;
  g->n_opsets = 1;
}

static kiln_attr *append_attr(kiln_node *n, const char *name, kiln_attr_type type) {
  kiln_attr a;
  memset(&a, 0, sizeof a);
  a.name = strdup(name);
  a.type = type;
  ASSERT_OK(kiln_node_append_attr(n, &a));
  return &n->attrs[n->n_attrs - 1];
}

static void fill_tensor(kiln_tensor *t, kiln_dtype dt, int32_t rank, const int64_t *dims, const void *data) {
  memset(t, 0, sizeof *t);
  t->dtype = dt;
  t->rank = rank;
  for (int32_t i = 0; i < rank; i++) t->dims[i] = dims[i];
  size_t nb = kiln_tensor_nbytes(t);
  t->data = malloc(nb ? nb : 1);
  assert_non_null(t->data);
  if (nb) memcpy(t->data, data, nb);
}

static void assert_tensor_equal(const kiln_tensor *a, const kiln_tensor *b) {
  assert_int_equal(a->dtype, b->dtype);
  assert_int_equal(a->rank, b->rank);
  for (int32_t i = 0; i < a->rank; i++) assert_int_equal(a->dims[i], b->dims[i]);
  size_t nb = kiln_tensor_nbytes(a);
  assert_int_equal(nb, kiln_tensor_nbytes(b));
  if (nb) assert_memory_equal(a->data, b->data, nb);
}

static void assert_attr_equal(const kiln_attr *a, const kiln_attr *b) {
  assert_string_equal(a->name, b->name);
  assert_int_equal(a->type, b->type);
  switch (a->type) {
  case KILN_ATTR_FLOAT: assert_true(a->f == b->f); break;
  case KILN_ATTR_INT: assert_int_equal(a->i, b->i); break;
  case KILN_ATTR_STRING:
    assert_int_equal(a->s_len, b->s_len);
    assert_memory_equal(a->s, b->s, a->s_len);
    break;
  case KILN_ATTR_FLOATS:
    assert_int_equal(a->count, b->count);
    if (a->count) assert_memory_equal(a->floats, b->floats, sizeof(float) * a->count);
    break;
  case KILN_ATTR_INTS:
    assert_int_equal(a->count, b->count);
    if (a->count) assert_memory_equal(a->ints, b->ints, sizeof(int64_t) * a->count);
    break;
  case KILN_ATTR_STRINGS:
    assert_int_equal(a->count, b->count);
    for (size_t i = 0; i < a->count; i++) assert_string_equal(a->strings[i], b->strings[i]);
    break;
  case KILN_ATTR_TENSOR:
  case KILN_ATTR_TENSORS:
    assert_int_equal(a->count, b->count);
    for (size_t i = 0; i < a->count; i++) assert_tensor_equal(&a->tensors[i], &b->tensors[i]);
    break;
  default: fail_msg("unexpected attribute kind %d", a->type);
  }
}

static const Onnx__TensorProto *find_init(const Onnx__GraphProto *gp, const char *name) {
  for (size_t i = 0; i < gp->n_initializer; i++)
    if (!strcmp(gp->initializer[i]->name, name)) return gp->initializer[i];
  return NULL;
}

/* ---- the round-trip graph ------------------------------------------------------------------------- */
/*
 *   X [N,3,8,8] --Conv(W,B)--> c1 --LeakyRelu--> l1 --Clip(_, "", max)--> y --Reshape(shape)--> r
 *   Where(cond, r, r) --> out [N,4,?,1]            F16a + F16b --Add--> out2 (float16 [2,2])
 * Constants: float32 W/B/max, int64 shape, bool cond, float16 F16a/F16b; LeakyRelu carries extra
 * attributes of every list kind (parsers ignore attributes they do not know).
 */
static kiln_graph *build_graph(void) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  set_opset(g, 17, 8);
  g->name = strdup("roundtrip");
  int32_t n_sym;
  ASSERT_OK(kiln_graph_add_symbol(g, "N", &n_sym));

  int64_t xd[] = {KILN_DIM_DYNAMIC, 3, 8, 8};
  int32_t x = test_add_tensor(g, "X", KILN_DTYPE_FLOAT32, 4, xd);
  g->values[x].shape.sym[0] = n_sym;
  mark_input(g, x);

  float w[4 * 3 * 3 * 3], b[4] = {0.5f, -1, 2, 0}, mx = 6.0f;
  for (int i = 0; i < 108; i++) w[i] = (float)(i % 7) * 0.25f - 0.75f;
  int64_t wd[] = {4, 3, 3, 3}, bd[] = {4}, sd[] = {4}, cd[] = {1, 4, 1, 1}, hd[] = {2, 2};
  int32_t W = add_const(g, "W", KILN_DTYPE_FLOAT32, 4, wd, w);
  int32_t B = add_const(g, "B", KILN_DTYPE_FLOAT32, 1, bd, b);
  int32_t MX = add_const(g, "max", KILN_DTYPE_FLOAT32, 0, NULL, &mx);
  int64_t shape[] = {0, 4, 64, 1};
  int32_t SH = add_const(g, "shape", KILN_DTYPE_INT64, 1, sd, shape);
  uint8_t cond[] = {1, 0, 1, 1};
  int32_t CO = add_const(g, "cond", KILN_DTYPE_BOOL, 4, cd, cond);
  uint16_t ha[] = {kiln_f32_to_f16(1.5f), kiln_f32_to_f16(-2.0f), kiln_f32_to_f16(65504.0f), 0x7e00 /* NaN */};
  uint16_t hb[] = {kiln_f32_to_f16(0.25f), 0x0001 /* subnormal */, 0x8000 /* -0 */, kiln_f32_to_f16(3.0f)};
  int32_t HA = add_const(g, "F16a", KILN_DTYPE_FLOAT16, 2, hd, ha);
  int32_t HB = add_const(g, "F16b", KILN_DTYPE_FLOAT16, 2, hd, hb);

  int32_t c1 = add_plain(g, "c1"), l1 = add_plain(g, "l1"), y = add_plain(g, "y"), r = add_plain(g, "r");
  int32_t out = add_plain(g, "out"), out2 = add_plain(g, "out2");
  int64_t c1d[] = {KILN_DIM_DYNAMIC, 4, 8, 8};
  g->values[c1].dtype = KILN_DTYPE_FLOAT32; /* an intermediate with a known type: goes to value_info */
  kiln_shape_init(&g->values[c1].shape, 4, c1d);
  g->values[c1].shape.sym[0] = n_sym;

  int32_t nid;
  int32_t conv_in[] = {x, W, B};
  ASSERT_OK(kiln_graph_add_node(g, "conv0", "", "Conv", conv_in, 3, &c1, 1, &nid));
  int64_t ks[] = {3, 3}, pads[] = {1, 1, 1, 1}, strides[] = {1, 1};
  ASSERT_OK(kiln_node_set_ints(&g->nodes[nid], "kernel_shape", ks, 2));
  ASSERT_OK(kiln_node_set_ints(&g->nodes[nid], "pads", pads, 4));
  ASSERT_OK(kiln_node_set_ints(&g->nodes[nid], "strides", strides, 2));
  ASSERT_OK(kiln_node_set_int(&g->nodes[nid], "group", 1));
  ASSERT_OK(kiln_node_set_string(&g->nodes[nid], "auto_pad", "NOTSET"));

  ASSERT_OK(kiln_graph_add_node(g, "leaky", "", "LeakyRelu", &c1, 1, &l1, 1, &nid));
  kiln_node *lk = &g->nodes[nid];
  ASSERT_OK(kiln_node_set_float(lk, "alpha", 0.125f));
  float fl[] = {1.5f, -2.0f, 1e-30f};
  ASSERT_OK(kiln_node_set_floats(lk, "x_floats", fl, 3));
  ASSERT_OK(kiln_node_set_floats(lk, "x_floats_empty", NULL, 0));
  kiln_attr *a = append_attr(lk, "x_strings", KILN_ATTR_STRINGS);
  a->strings = calloc(3, sizeof(char *));
  a->strings[0] = strdup("a");
  a->strings[1] = strdup("");
  a->strings[2] = strdup("long string with spaces");
  a->count = 3;
  a = append_attr(lk, "x_tensors", KILN_ATTR_TENSORS);
  a->tensors = calloc(2, sizeof(kiln_tensor));
  int64_t i64[] = {7, -8}, two[] = {2};
  fill_tensor(&a->tensors[0], KILN_DTYPE_INT64, 1, two, i64);
  fill_tensor(&a->tensors[1], KILN_DTYPE_FLOAT32, 0, NULL, &mx);
  a->count = 2;
  a = append_attr(lk, "x_tensor", KILN_ATTR_TENSOR);
  a->tensors = calloc(1, sizeof(kiln_tensor));
  int64_t three[] = {3};
  uint8_t bools[] = {1, 0, 1};
  fill_tensor(&a->tensors[0], KILN_DTYPE_BOOL, 1, three, bools);
  a->count = 1;

  int32_t clip_in[] = {l1, -1, MX}; /* min omitted: written as "" */
  ASSERT_OK(kiln_graph_add_node(g, "clip", "", "Clip", clip_in, 3, &y, 1, NULL));
  int32_t rs_in[] = {y, SH};
  ASSERT_OK(kiln_graph_add_node(g, "reshape", "", "Reshape", rs_in, 2, &r, 1, NULL));
  int32_t wh_in[] = {CO, r, r};
  ASSERT_OK(kiln_graph_add_node(g, "where", "", "Where", wh_in, 3, &out, 1, NULL));
  int32_t add_in[] = {HA, HB};
  ASSERT_OK(kiln_graph_add_node(g, "add16", "", "Add", add_in, 2, &out2, 1, NULL));

  int64_t od[] = {KILN_DIM_DYNAMIC, 4, KILN_DIM_DYNAMIC, 1};
  g->values[out].dtype = KILN_DTYPE_FLOAT32;
  kiln_shape_init(&g->values[out].shape, 4, od);
  g->values[out].shape.sym[0] = n_sym; /* dim 2 stays anonymous */
  g->values[out2].dtype = KILN_DTYPE_FLOAT16;
  kiln_shape_init(&g->values[out2].shape, 2, hd);
  mark_output(g, out);
  mark_output(g, out2);
  /* parse so the graph is what import would produce (params set) */
  for (int32_t i = 0; i < g->n_nodes; i++) ASSERT_OK(kiln_node_parse(g, &g->nodes[i]));
  return g;
}

static void test_roundtrip(void **state) {
  tmpdir t;
  tmp_open(&t, "rt.onnx");
  kiln_graph *g = build_graph();
  ASSERT_OK(kiln_onnx_save(g, t.path));

  kiln_onnx_import_options opts = {.skip_infer = true}; /* about export, not the op families' inference */
  kiln_graph *h;
  ASSERT_OK(kiln_onnx_load(t.path, &opts, &h));
  assert_int_equal(h->opset, 17);
  assert_int_equal(h->ir_version, 8);
  assert_string_equal(h->name, "roundtrip");
  assert_string_equal(h->producer_name, "kiln");

  /* nodes: same order, names, ops, wiring (by name), attributes */
  assert_int_equal(h->n_nodes, g->n_nodes);
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const kiln_node *a = &g->nodes[i], *b = &h->nodes[i];
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->op_type, b->op_type);
    assert_int_equal(a->n_inputs, b->n_inputs);
    assert_int_equal(a->n_outputs, b->n_outputs);
    for (int32_t k = 0; k < a->n_inputs; k++) {
      if (a->inputs[k] < 0) assert_int_equal(b->inputs[k], -1);
      else assert_string_equal(g->values[a->inputs[k]].name, h->values[b->inputs[k]].name);
    }
    for (int32_t k = 0; k < a->n_outputs; k++)
      assert_string_equal(g->values[a->outputs[k]].name, h->values[b->outputs[k]].name);
    assert_int_equal(a->n_attrs, b->n_attrs);
    for (int32_t k = 0; k < a->n_attrs; k++) assert_attr_equal(&a->attrs[k], kiln_node_find_attr(b, a->attrs[k].name));
  }

  /* constants: every dtype bit-exact (float16 NaN, subnormal and -0 included) */
  const char *consts[] = {"W", "B", "max", "shape", "cond", "F16a", "F16b"};
  for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++) {
    const kiln_value *a = &g->values[kiln_graph_find_value(g, consts[i])];
    int32_t bid = kiln_graph_find_value(h, consts[i]);
    assert_true(bid >= 0);
    const kiln_value *b = &h->values[bid];
    assert_non_null(b->data);
    assert_int_equal(a->dtype, b->dtype);
    assert_true(kiln_shape_equal(&a->shape, &b->shape));
    assert_int_equal(a->nbytes, b->nbytes);
    assert_memory_equal(a->data, b->data, a->nbytes);
    assert_true(b->flags & KILN_VALUE_INITIALIZER);
  }

  /* interface: symbolic dims keep their names, anonymous ones stay anonymous */
  assert_int_equal(h->n_inputs, 1);
  const kiln_value *x = &h->values[h->inputs[0]];
  assert_string_equal(x->name, "X");
  assert_int_equal(x->shape.rank, 4);
  assert_int_equal(x->shape.dims[0], KILN_DIM_DYNAMIC);
  assert_true(x->shape.sym[0] >= 0);
  assert_string_equal(h->symbols[x->shape.sym[0]], "N");
  assert_int_equal(x->shape.dims[3], 8);
  assert_int_equal(h->n_outputs, 2);
  const kiln_value *o = &h->values[h->outputs[0]];
  assert_string_equal(o->name, "out");
  assert_int_equal(o->dtype, KILN_DTYPE_FLOAT32);
  assert_int_equal(o->shape.rank, 4);
  assert_string_equal(h->symbols[o->shape.sym[0]], "N");
  assert_int_equal(o->shape.dims[2], KILN_DIM_DYNAMIC);
  assert_int_equal(o->shape.sym[2], -1);
  assert_int_equal(o->shape.dims[1], 4);
  const kiln_value *o2 = &h->values[h->outputs[1]];
  assert_int_equal(o2->dtype, KILN_DTYPE_FLOAT16);
  assert_int_equal(o2->shape.dims[1], 2);
  /* the intermediate's type came back through value_info */
  const kiln_value *c1 = &h->values[kiln_graph_find_value(h, "c1")];
  assert_int_equal(c1->dtype, KILN_DTYPE_FLOAT32);
  assert_int_equal(c1->shape.rank, 4);

  /* a second save of the re-imported graph is byte-identical: export is deterministic and lossless */
  tmpdir t2;
  tmp_open(&t2, "rt2.onnx");
  ASSERT_OK(kiln_onnx_save(h, t2.path));
  size_t l1, l2;
  void *b1 = test_read_file(t.path, &l1), *b2 = test_read_file(t2.path, &l2);
  assert_int_equal(l1, l2);
  assert_memory_equal(b1, b2, l1);
  free(b1);
  free(b2);
  tmp_close(&t2);

  kiln_graph_destroy(h);
  kiln_graph_destroy(g);
  tmp_close(&t);
}

/* Details checked in the file itself (protobuf level), for graphs kiln's importer would not take back. */
static void test_proto_details(void **state) {
  tmpdir t;
  tmp_open(&t, "p.onnx");
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  g->opset = 13; /* no opsets list at all: the default domain must still be declared */
  g->ir_version = 0; /* unknown: derived from the opset (13 -> IR 7) */
  int64_t d2[] = {2};
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 1, d2);
  mark_input(g, x);
  float k[] = {1, 2};
  int32_t kc = add_const(g, "k", KILN_DTYPE_FLOAT32, 1, d2, k);
  add_const(g, "unused", KILN_DTYPE_FLOAT32, 1, d2, k);
  int32_t shp = add_plain(g, "shp"), s2 = add_plain(g, "s2"), y = add_plain(g, "y"), sp = add_plain(g, "sp");
  int32_t plug = add_plain(g, "plug");
  /* Nodes added consumer-first: export must still write them producer-first. */
  int32_t mul_in[] = {y, kc};
  ASSERT_OK(kiln_graph_add_node(g, "mul", "", "Mul", mul_in, 2, &s2, 1, NULL));
  ASSERT_OK(kiln_graph_add_node(g, "shape", "", "Shape", &x, 1, &shp, 1, NULL));
  int32_t add_in[] = {x, sp};
  ASSERT_OK(kiln_graph_add_node(g, "add", "", "Add", add_in, 2, &y, 1, NULL));
  int32_t cn;
  ASSERT_OK(kiln_graph_add_node(g, "sparse_const", "", "Constant", NULL, 0, &sp, 1, &cn));
  kiln_attr *a = append_attr(&g->nodes[cn], "sparse_value", KILN_ATTR_TENSOR);
  a->was_sparse = true;
  a->tensors = calloc(1, sizeof(kiln_tensor));
  float dense[] = {0, 3};
  fill_tensor(&a->tensors[0], KILN_DTYPE_FLOAT32, 1, d2, dense);
  a->count = 1;
  int32_t pin[] = {s2, shp};
  ASSERT_OK(kiln_graph_add_node(g, "plugin", "com.example", "MyPlugin", pin, 2, &plug, 1, NULL));
  /* shape inference puts data on Shape's output: it must not also become an initializer */
  int64_t one[] = {1}, two = 2;
  kiln_shape s1;
  kiln_shape_init(&s1, 1, one);
  ASSERT_OK(kiln_value_set_constant(g, shp, KILN_DTYPE_INT64, &s1, &two));
  g->values[s2].dtype = KILN_DTYPE_FLOAT32;
  kiln_shape_init(&g->values[s2].shape, 1, d2);
  mark_output(g, plug);
  ASSERT_OK(kiln_onnx_save(g, t.path));

  Onnx__ModelProto *m = read_proto(t.path);
  assert_int_equal(m->ir_version, 7);
  assert_string_equal(m->producer_name, "kiln");
  bool have_default = false, have_example = false;
  for (size_t i = 0; i < m->n_opset_import; i++) {
    const char *dom = m->opset_import[i]->domain ? m->opset_import[i]->domain : "";
    if (!dom[0]) have_default = m->opset_import[i]->version == 13;
    if (!strcmp(dom, "com.example")) have_example = m->opset_import[i]->version == 1;
  }
  assert_true(have_default);
  assert_true(have_example);
  const Onnx__GraphProto *gp = m->graph;
  assert_true(gp->name && gp->name[0]);
  assert_int_equal(gp->n_initializer, 1); /* k only: not "unused", not Shape's output */
  assert_non_null(find_init(gp, "k"));
  assert_true(find_init(gp, "k")->has_raw_data);
  assert_int_equal(gp->n_input, 1);
  const char *order[] = {"shape", "sparse_const", "add", "mul", "plugin"};
  assert_int_equal(gp->n_node, 5);
  for (int i = 0; i < 5; i++) assert_string_equal(gp->node[i]->name, order[i]);
  const Onnx__NodeProto *c = gp->node[1];
  assert_int_equal(c->n_attribute, 1);
  assert_string_equal(c->attribute[0]->name, "value"); /* sparse_value written back dense as value */
  assert_int_equal(c->attribute[0]->type, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
  assert_non_null(c->attribute[0]->t);
  assert_int_equal(c->attribute[0]->t->raw_data.len, sizeof dense);
  assert_memory_equal(c->attribute[0]->t->raw_data.data, dense, sizeof dense);
  assert_string_equal(gp->node[4]->domain, "com.example");
  /* value_info: typed intermediates only (s2 and the Shape output), never graph outputs */
  bool vi_s2 = false;
  for (size_t i = 0; i < gp->n_value_info; i++) {
    assert_string_not_equal(gp->value_info[i]->name, "plug");
    vi_s2 |= !strcmp(gp->value_info[i]->name, "s2");
  }
  assert_true(vi_s2);
  /* the output has no known type: still listed, without elem_type */
  assert_int_equal(gp->n_output, 1);
  assert_string_equal(gp->output[0]->name, "plug");
  onnx__model_proto__free_unpacked(m, NULL);

  /* IR 3: initializers are listed as graph inputs too, after the real ones */
  g->ir_version = 3;
  ASSERT_OK(kiln_onnx_save(g, t.path));
  m = read_proto(t.path);
  assert_int_equal(m->ir_version, 3);
  assert_int_equal(m->graph->n_input, 2);
  assert_string_equal(m->graph->input[0]->name, "x");
  assert_string_equal(m->graph->input[1]->name, "k");
  assert_int_equal(m->graph->input[1]->type->tensor_type->elem_type, KILN_DTYPE_FLOAT32);
  onnx__model_proto__free_unpacked(m, NULL);

  kiln_graph_destroy(g);
  tmp_close(&t);
}

static void test_refusals(void **state) {
  tmpdir t;
  tmp_open(&t, "bad.onnx");
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  set_opset(g, 17, 8);
  int64_t d[] = {2};
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 1, d);
  mark_input(g, x);
  int32_t y = add_plain(g, "y"), nid;
  ASSERT_OK(kiln_graph_add_node(g, "loop", "", "If", &x, 1, &y, 1, &nid));
  kiln_attr *a = append_attr(&g->nodes[nid], "then_branch", KILN_ATTR_GRAPH);
  a->count = 1;
  mark_output(g, y);
  expect_error(kiln_onnx_save(g, t.path), KILN_ERR_UNSUPPORTED, "subgraph");
  assert_false(test_file_exists(t.path)); /* nothing written on failure */

  /* a type-proto attribute: refused too */
  a->type = KILN_ATTR_TYPE_PROTO;
  expect_error(kiln_onnx_save(g, t.path), KILN_ERR_UNSUPPORTED, "type proto");
  kiln_node_remove_attr(&g->nodes[nid], "then_branch");

  /* a value nobody defines */
  int32_t ghost = add_plain(g, "ghost");
  g->nodes[nid].inputs[0] = ghost;
  expect_error(kiln_onnx_save(g, t.path), KILN_ERR_INTERNAL, "ghost");
  /* a cycle */
  g->nodes[nid].inputs[0] = y;
  expect_error(kiln_onnx_save(g, t.path), KILN_ERR_INTERNAL, "cycle");
  g->nodes[nid].inputs[0] = x;
  /* an unwritable path */
  expect_error(kiln_onnx_save(g, "/nonexistent-dir/kiln/x.onnx"), KILN_ERR_IO, NULL);
  assert_false(test_file_exists(t.path));
  kiln_graph_destroy(g);
  tmp_close(&t);
}

/* The flagship model survives load -> save -> load with identical nodes and weights. */
static void test_yolov8n(void **state) {
  const char *model = KILN_SHARED_DIR "/models/yolov8n.onnx";
  if (!test_file_exists(model)) skip();
  tmpdir t;
  tmp_open(&t, "y.onnx");
  kiln_graph *g, *h;
  ASSERT_OK(kiln_onnx_load(model, NULL, &g));
  ASSERT_OK(kiln_onnx_save(g, t.path));
  ASSERT_OK(kiln_onnx_load(t.path, NULL, &h));
  assert_int_equal(g->n_nodes, h->n_nodes);
  assert_int_equal(g->n_values, h->n_values);
  for (int32_t i = 0; i < g->n_values; i++) {
    const kiln_value *a = &g->values[i];
    const kiln_value *b = &h->values[kiln_graph_find_value(h, a->name)];
    assert_int_equal(a->dtype, b->dtype);
    assert_true(kiln_shape_equal(&a->shape, &b->shape));
    assert_int_equal(a->nbytes, b->nbytes);
    if (a->data) assert_memory_equal(a->data, b->data, a->nbytes);
  }
  kiln_graph_destroy(g);
  kiln_graph_destroy(h);
  tmp_close(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_proto_details),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_yolov8n),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
