/*
 * Building an engine image: collects strings, tensors, layers, parameter blobs and weights, plans the
 * activation arena, and serializes everything as format v3 (runtime/engine_format.h). Used by the
 * builder's lowering; knows nothing about ops.
 */
#ifndef KILN_BUILD_ENGINE_WRITER_H
#define KILN_BUILD_ENGINE_WRITER_H

#include "core/status.h"
#include "runtime/engine_format.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kiln_engine_writer kiln_engine_writer;

kiln_status kiln_ew_create(kiln_engine_writer **out);
void kiln_ew_destroy(kiln_engine_writer *w);

uint32_t kiln_ew_string(kiln_engine_writer *w, const char *s); /* offset in the string table */
/* A tensor record; returns its id. For VIEW, alias_of must be an earlier tensor. */
kiln_status kiln_ew_add_tensor(kiln_engine_writer *w, const char *name, uint32_t dtype, uint32_t rank,
                               const int64_t *dims, uint32_t storage, int32_t alias_of, uint64_t view_offset,
                               int32_t *out_id);
/* Give tensor `id` a physical layout (KILN_LAYOUT_NHWC needs rank 4; pixel_stride 0 = dense, i.e. C). */
kiln_status kiln_ew_set_layout(kiln_engine_writer *w, int32_t id, uint32_t layout, int64_t pixel_stride);
/* Make LINEAR VIEW `id` row-strided: its dim-0 indices lie row_stride elements apart (>= the product of
 * dims 1..; equal means dense). Only for tensors whose every layer has a KILN_KERNEL_ROW_STRIDED kernel. */
kiln_status kiln_ew_set_row_stride(kiln_engine_writer *w, int32_t id, int64_t row_stride);
/* A constant: appends `data` to the weights (64-byte aligned) and makes a WEIGHT tensor. */
kiln_status kiln_ew_add_weight(kiln_engine_writer *w, const char *name, uint32_t dtype, uint32_t rank,
                               const int64_t *dims, const void *data, int32_t *out_id);
/* Raw bytes in the weights section (packed weights a kernel reads through its params); returns the offset. */
kiln_status kiln_ew_add_blob(kiln_engine_writer *w, const void *data, size_t size, uint64_t *out_offset);
/* Make tensor `id` an engine input/output (its storage becomes IO with the next binding slot). */
kiln_status kiln_ew_add_binding(kiln_engine_writer *w, int32_t id, int is_input);
kiln_status kiln_ew_add_layer(kiln_engine_writer *w, const char *name, const char *kernel, const char *op,
                              const int32_t *inputs, uint32_t n_inputs, const int32_t *outputs, uint32_t n_outputs,
                              const void *params, size_t params_size, uint64_t workspace, uint64_t macs);
int32_t kiln_ew_num_layers(const kiln_engine_writer *w);
/* A layer's parameter blob, for choices made after the layer was added (tactic timing runs once the whole
 * network is lowered, so its buffers are sized for the largest layer). Valid until the next add_layer. */
kiln_status kiln_ew_layer_params(kiln_engine_writer *w, int32_t layer, void **params, size_t *size);
kiln_status kiln_ew_set_layer_workspace(kiln_engine_writer *w, int32_t layer, uint64_t workspace);
int32_t kiln_ew_num_tensors(const kiln_engine_writer *w);
const kiln_tensor_rec *kiln_ew_tensor(const kiln_engine_writer *w, int32_t id);

/* Assign arena offsets by liveness (memory_plan.c), then serialize into a malloc'd image. */
kiln_status kiln_ew_finish(kiln_engine_writer *w, const kiln_target_rec *target, const kiln_options_rec *options,
                           void **out, size_t *out_size);

/* The planner (memory_plan.c): given tensors and layers, set ARENA offsets; returns arena and naive sizes. */
kiln_status kiln_memory_plan(kiln_tensor_rec *tensors, int32_t n_tensors, const kiln_layer_rec *layers, int32_t n_layers,
                             const int32_t *indices, uint64_t *arena_size, uint64_t *naive_size);

#endif
