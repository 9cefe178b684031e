/*
 * ONNX backend node tests (`<test>/model.onnx` + `<test>/test_data_set_N/{input,output}_K.pb`): loading
 * their tensors and checking kiln's results against them. Shared by `kiln nodetest` (values) and the
 * sweep unit test (shapes), so both read the data and judge shapes the same way.
 */
#ifndef KILN_ONNX_NODETEST_DATA_H
#define KILN_ONNX_NODETEST_DATA_H

#include "ir/graph.h"

#define KILN_NODETEST_MAX_TENSORS 32

typedef struct kiln_nodetest_data {
  kiln_tensor inputs[KILN_NODETEST_MAX_TENSORS];
  kiln_tensor outputs[KILN_NODETEST_MAX_TENSORS];
  int n_inputs, n_outputs;
} kiln_nodetest_data;

/* Read <test_dir>/test_data_set_<set>/input_K.pb and output_K.pb (K = 0, 1, ... while present). On
 * error (a tensor kiln cannot decode, e.g. strings) *d is left empty and the error names the file. */
kiln_status kiln_nodetest_data_load(const char *test_dir, int set, kiln_nodetest_data *d);
void kiln_nodetest_data_free(kiln_nodetest_data *d);

/* Does value v have want's dtype and (static) shape? If not, false and a reason in why. */
bool kiln_nodetest_type_matches(const kiln_graph *g, const kiln_value *v, const kiln_tensor *want, char *why,
                                size_t why_len);
/* Type as above, then every element within a per-dtype tolerance (exact for integers and bool). */
bool kiln_nodetest_values_match(const kiln_graph *g, const kiln_value *v, const kiln_tensor *want, char *why,
                                size_t why_len);
/* Make the graph inputs constants holding the test inputs (in order). Error if the counts differ. */
kiln_status kiln_nodetest_bind_inputs(kiln_graph *g, const kiln_nodetest_data *d);

#endif
