/* Loaded engines and execution contexts (internal view). */
#ifndef KILN_RUNTIME_ENGINE_H
#define KILN_RUNTIME_ENGINE_H

#include "runtime/kernel.h"

struct kiln_engine {
  uint8_t *data;   /* the file: mmap'd (mapped != 0) or malloc'd */
  size_t size;
  int mapped;
  const kiln_engine_header *header;
  const kiln_target_rec *target;
  const kiln_options_rec *options;
  const kiln_plan_rec *plan;
  const char *strings;
  uint64_t strings_size;
  const kiln_tensor_rec *tensors;
  int32_t n_tensors;
  const kiln_layer_rec *layers;
  int32_t n_layers;
  const int32_t *indices;
  uint64_t n_indices;
  const uint8_t *params;
  uint64_t params_size;
  const uint8_t *weights;
  uint64_t weights_size;
  const kiln_binding_rec *bindings;
  int32_t n_bindings;
  kiln_layer_rt *rt; /* prepared layers */
  uint64_t workspace_size; /* per-context scratch: the plan's, or more if this kiln's kernels need it */
  int64_t opset;
  uint8_t *device_weights; /* CUDA engines: the weights section on the GPU (uploaded once at load) */
};

const char *kiln_engine_string(const kiln_engine *e, uint32_t off);
/* Validate and index an engine image (takes ownership of data on success and failure). describe_only:
 * check the records but not the target, and prepare no kernels (for kiln inspect; cannot run). */
kiln_status kiln_engine_open(uint8_t *data, size_t size, int mapped, int describe_only, kiln_engine **out);
/* kiln_engine_load_file for describing only (an engine for another device can be inspected anywhere). */
kiln_status kiln_engine_describe_file(const char *path, kiln_engine **out);
/* Describe the engine (kiln inspect ENGINE). */
void kiln_engine_print(const kiln_engine *e, int layers);

#endif
