/* Without CUDA (no nvcc at build time) there are no devices, and every runtime call says why it fails. */
#include "backend/cuda/cuda_device.h"

#ifndef KILN_HAVE_CUDA
#include <string.h>

static kiln_status no_cuda(void) {
  return kiln_error(KILN_ERR_DEVICE, "kiln was built without CUDA support (no nvcc found at build time)");
}
int kiln_cuda_device_count(void) { return 0; }
kiln_status kiln_cuda_device_query(int index, kiln_cuda_device_info *out) {
  (void)index;
  memset(out, 0, sizeof *out);
  return no_cuda();
}
kiln_status kiln_cuda_current_device(int *index) {
  *index = 0;
  return no_cuda();
}
kiln_status kiln_cuda_set_device(int index) {
  (void)index;
  return no_cuda();
}
kiln_status kiln_cuda_malloc(size_t nbytes, void **out) {
  (void)nbytes;
  *out = NULL;
  return no_cuda();
}
void kiln_cuda_free(void *p) { (void)p; }
kiln_status kiln_cuda_malloc_host(size_t nbytes, void **out) {
  (void)nbytes;
  *out = NULL;
  return no_cuda();
}
void kiln_cuda_free_host(void *p) { (void)p; }
kiln_status kiln_cuda_copy_to_device(void *dst, const void *src, size_t nbytes) {
  (void)dst, (void)src, (void)nbytes;
  return no_cuda();
}
kiln_status kiln_cuda_copy_to_host(void *dst, const void *src, size_t nbytes) {
  (void)dst, (void)src, (void)nbytes;
  return no_cuda();
}
kiln_status kiln_cuda_fill(void *dst, int byte, size_t nbytes) {
  (void)dst, (void)byte, (void)nbytes;
  return no_cuda();
}
kiln_status kiln_cuda_stream_create(void **out) {
  *out = NULL;
  return no_cuda();
}
void kiln_cuda_stream_destroy(void *stream) { (void)stream; }
kiln_status kiln_cuda_stream_sync(void *stream) {
  (void)stream;
  return no_cuda();
}
kiln_status kiln_cuda_capture_begin(void *stream) {
  (void)stream;
  return no_cuda();
}
kiln_status kiln_cuda_capture_end(void *stream, kiln_cuda_graph **out) {
  (void)stream;
  *out = NULL;
  return no_cuda();
}
kiln_status kiln_cuda_graph_launch(kiln_cuda_graph *g, void *stream) {
  (void)g, (void)stream;
  return no_cuda();
}
void kiln_cuda_graph_destroy(kiln_cuda_graph *g) { (void)g; }
kiln_status kiln_cuda_event_create(void **out) {
  *out = NULL;
  return no_cuda();
}
void kiln_cuda_event_destroy(void *ev) { (void)ev; }
kiln_status kiln_cuda_event_sync(void *ev) {
  (void)ev;
  return no_cuda();
}
kiln_status kiln_cuda_event_record(void *ev, void *stream) {
  (void)ev, (void)stream;
  return no_cuda();
}
kiln_status kiln_cuda_event_elapsed(void *start, void *end, float *ms) {
  (void)start, (void)end;
  *ms = 0;
  return no_cuda();
}
#endif
