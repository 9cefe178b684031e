/* Graph IR basics: values, names, attributes, shapes, compaction. */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

static void test_values_and_names(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int64_t d[] = {1, 3, 4};
  int32_t a = test_add_tensor(g, "a", KILN_DTYPE_FLOAT32, 3, d);
  assert_int_equal(kiln_graph_find_value(g, "a"), a);
  assert_int_equal(kiln_graph_find_value(g, "b"), -1);
  expect_error(kiln_graph_add_value(g, "a", NULL), KILN_ERR_PARSE, "defined twice");
  for (int i = 0; i < 500; i++) { /* forces index growth */
    int32_t id;
    ASSERT_OK(kiln_graph_add_fresh_value(g, "t", &id));
    assert_int_equal(kiln_graph_find_value(g, g->values[id].name), id);
  }
  assert_int_equal(kiln_graph_find_value(g, "a"), a);
  kiln_graph_destroy(g);
}

static void test_attrs(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 0, NULL), y;
  ASSERT_OK(kiln_graph_add_value(g, "y", &y));
  int32_t nid;
  ASSERT_OK(kiln_graph_add_node(g, "n", "", "LeakyRelu", &x, 1, &y, 1, &nid));
  kiln_node *n = &g->nodes[nid];
  assert_int_equal(n->op, KILN_OP_LeakyRelu);
  ASSERT_OK(kiln_node_set_float(n, "alpha", 0.25f));
  float f;
  ASSERT_OK(kiln_node_get_float(n, "alpha", 0.01f, &f));
  assert_true(f == 0.25f);
  ASSERT_OK(kiln_node_set_float(n, "alpha", 0.5f)); /* replaces */
  assert_int_equal(n->n_attrs, 1);
  int64_t i;
  expect_error(kiln_node_get_int(n, "alpha", 0, &i), KILN_ERR_PARSE, "'alpha' is float");
  ASSERT_OK(kiln_node_get_int(n, "missing", 7, &i));
  assert_int_equal(i, 7);
  int64_t ints[] = {1, 2, 3};
  ASSERT_OK(kiln_node_set_ints(n, "pads", ints, 3));
  const int64_t *got;
  size_t cnt;
  ASSERT_OK(kiln_node_get_ints(n, "pads", &got, &cnt));
  assert_int_equal(cnt, 3);
  assert_int_equal(got[2], 3);
  kiln_node_remove_attr(n, "pads");
  assert_null(kiln_node_find_attr(n, "pads"));
  assert_int_equal(g->values[y].producer, nid);
  kiln_graph_destroy(g);
}

static void test_compact(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int32_t x = test_add_tensor(g, "x", KILN_DTYPE_FLOAT32, 0, NULL), y, z;
  ASSERT_OK(kiln_graph_add_value(g, "y", &y));
  ASSERT_OK(kiln_graph_add_value(g, "z", &z));
  g->inputs = malloc(sizeof(int32_t));
  g->inputs[0] = x;
  g->n_inputs = 1;
  g->outputs = malloc(sizeof(int32_t));
  g->outputs[0] = z;
  g->n_outputs = 1;
  ASSERT_OK(kiln_graph_add_node(g, "a", "", "Relu", &x, 1, &y, 1, NULL));
  ASSERT_OK(kiln_graph_add_node(g, "b", "", "Relu", &y, 1, &z, 1, NULL));
  g->nodes[0].dead = true;
  g->nodes[1].inputs[0] = x;
  ASSERT_OK(kiln_graph_compact(g));
  assert_int_equal(g->n_nodes, 1);
  assert_int_equal(g->n_values, 2);
  assert_string_equal(g->nodes[0].name, "b");
  assert_int_equal(kiln_graph_find_value(g, "y"), -1);
  assert_int_equal(g->values[g->outputs[0]].producer, 0);
  kiln_graph_destroy(g);
}

static void test_shape_format(void **state) {
  kiln_graph *g;
  ASSERT_OK(kiln_graph_create(&g));
  int32_t sym;
  ASSERT_OK(kiln_graph_add_symbol(g, "batch", &sym));
  kiln_shape s;
  int64_t d[] = {-1, 84, 8400};
  kiln_shape_init(&s, 3, d);
  s.sym[0] = sym;
  char buf[64];
  assert_string_equal(kiln_shape_format(g, &s, buf, sizeof buf), "batchx84x8400");
  assert_false(kiln_shape_is_static(&s));
  assert_int_equal(kiln_shape_numel(&s), -1);
  int64_t big[] = {1 << 20, 1 << 20, 4};
  kiln_shape_init(&s, 3, big);
  assert_int_equal(kiln_shape_numel(&s), -1); /* beyond 2^40 */
  kiln_graph_destroy(g);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_values_and_names),
      cmocka_unit_test(test_attrs),
      cmocka_unit_test(test_compact),
      cmocka_unit_test(test_shape_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
