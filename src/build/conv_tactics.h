/*
 * Build-time tactic timing for the GPU conv layers (TensorRT's builder autotuning).
 *
 * The CUDA lowering adds every cuda.conv layer here as it writes it (with the heuristic, tactic 0); once
 * the whole network is lowered, kiln_conv_tuner_finish times each layer's candidates
 * (kiln_cuda_conv_tactic_count) on the build GPU, writes the fastest one's index into the layer's
 * parameters (desc.tactic) and its workspace into the layer record, and updates the timing cache. Timing
 * after lowering lets the device buffers be allocated once, for the largest layer.
 *
 * Timing happens only when the build GPU is the target (cfg->cuda_arch 0 or equal to its compute
 * capability) and cfg->no_tactic_timing is 0; otherwise every call here is a no-op and the engine is the
 * heuristic's, byte for byte.
 */
#ifndef KILN_BUILD_CONV_TACTICS_H
#define KILN_BUILD_CONV_TACTICS_H

#include "backend/cuda/conv_cuda.h"
#include "build/engine_writer.h"
#include "kiln/kiln.h"

typedef struct kiln_conv_tuner kiln_conv_tuner;

/* Reads cfg->timing_cache_path if set (a missing file is fine; a malformed one is an error). */
kiln_status kiln_conv_tuner_create(const kiln_build_config *cfg, kiln_conv_tuner **out);
void kiln_conv_tuner_destroy(kiln_conv_tuner *t);
/* Conv layer `layer` of the writer (params: kiln_cuda_conv_params) with descriptor d; misalign: byte
 * offsets mod 16 of its x, residual and y pointers in the engine (views into Concat buffers). */
kiln_status kiln_conv_tuner_add(kiln_conv_tuner *t, int32_t layer, const char *name, const kiln_cuda_conv_desc *d,
                                const unsigned misalign[3]);
/* Choose (cache or timing) and patch every added layer; write the cache file if it gained entries. */
kiln_status kiln_conv_tuner_finish(kiln_conv_tuner *t, kiln_engine_writer *w);

#endif
