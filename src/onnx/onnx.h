/* ONNX import and export (protobuf-c code generated at build time from the onnx.proto of libonnx-dev). */
#ifndef KILN_ONNX_ONNX_H
#define KILN_ONNX_ONNX_H

#include "ir/graph.h"

typedef struct kiln_onnx_import_options {
  bool skip_infer; /* stop after structure + attribute parsing (no shape inference) */
} kiln_onnx_import_options;

/* Read an ONNX model file into a new graph: structure, initializers (typed fields, raw_data, external
 * data next to the model), attributes, op parsing, a topological order check and shape inference.
 * Errors name the offending node/tensor. `opts` may be NULL. */
kiln_status kiln_onnx_load(const char *path, const kiln_onnx_import_options *opts, kiln_graph **out);
/* Same, from a buffer. `model_dir` resolves external data (NULL: external data refused). */
kiln_status kiln_onnx_load_buffer(const void *data, size_t len, const char *model_dir,
                                  const kiln_onnx_import_options *opts, kiln_graph **out);
/* Decode a serialized TensorProto (e.g. test_data_set_N/input_0.pb) into a malloc'd tensor. */
kiln_status kiln_onnx_read_tensor_file(const char *path, kiln_tensor *out, char **name_out);

/* Run shape inference over the whole graph, in topological order. */
kiln_status kiln_graph_infer_shapes(kiln_graph *g);

/* Serialize the graph as an ONNX model (export.c). Writes atomically (temp file + rename). */
kiln_status kiln_onnx_save(const kiln_graph *g, const char *path);

#endif
