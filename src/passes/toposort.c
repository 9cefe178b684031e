/* Topological sort (Kahn's algorithm, stable: a node keeps its place unless a producer comes later). */
#include "passes/passes.h"

#include <stdlib.h>
#include <string.h>

kiln_status kiln_pass_toposort(kiln_graph *g) {
  int32_t n = g->n_nodes;
  if (n == 0) return NULL;
  kiln_graph_update_producers(g);
  int32_t *pending = calloc((size_t)n, sizeof(int32_t)); /* unmet producer edges per node */
  int32_t *order = malloc(sizeof(int32_t) * (size_t)n);
  int32_t *heap = malloc(sizeof(int32_t) * (size_t)n); /* min-heap of ready node indices: keeps file order */
  /* consumers as CSR: for each node, the nodes that read its outputs */
  int32_t *cstart = calloc((size_t)n + 1, sizeof(int32_t));
  int32_t edges = 0;
  for (int32_t i = 0; i < n; i++) edges += g->nodes[i].n_inputs;
  int32_t *clist = malloc(sizeof(int32_t) * (size_t)(edges + 1));
  kiln_node *sorted = malloc(sizeof(kiln_node) * (size_t)n);
  kiln_status st = NULL;
  if (!pending || !order || !heap || !cstart || !clist || !sorted) {
    st = kiln_error(KILN_ERR_OUT_OF_MEMORY, "out of memory sorting the graph");
    goto done;
  }
  for (int32_t i = 0; i < n; i++)
    for (int32_t k = 0; k < g->nodes[i].n_inputs; k++) {
      int32_t v = g->nodes[i].inputs[k];
      int32_t p = v >= 0 ? g->values[v].producer : -1;
      if (p >= 0) {
        pending[i]++;
        cstart[p + 1]++;
      }
    }
  for (int32_t i = 0; i < n; i++) cstart[i + 1] += cstart[i];
  int32_t *fill = order; /* reuse as a cursor array temporarily */
  for (int32_t i = 0; i < n; i++) fill[i] = cstart[i];
  for (int32_t i = 0; i < n; i++)
    for (int32_t k = 0; k < g->nodes[i].n_inputs; k++) {
      int32_t v = g->nodes[i].inputs[k];
      int32_t p = v >= 0 ? g->values[v].producer : -1;
      if (p >= 0) clist[fill[p]++] = i;
    }
  int32_t hn = 0, done_count = 0;
#define HEAP_PUSH(x)                                                                                 \
  do {                                                                                               \
    int32_t j_ = hn++;                                                                               \
    heap[j_] = (x);                                                                                  \
    while (j_ > 0 && heap[(j_ - 1) / 2] > heap[j_]) {                                                \
      int32_t t_ = heap[j_]; heap[j_] = heap[(j_ - 1) / 2]; heap[(j_ - 1) / 2] = t_; j_ = (j_ - 1) / 2; \
    }                                                                                                \
  } while (0)
  for (int32_t i = 0; i < n; i++)
    if (pending[i] == 0) HEAP_PUSH(i);
  while (hn > 0) {
    int32_t top = heap[0];
    heap[0] = heap[--hn];
    for (int32_t j = 0;;) {
      int32_t l = 2 * j + 1, r = l + 1, m = j;
      if (l < hn && heap[l] < heap[m]) m = l;
      if (r < hn && heap[r] < heap[m]) m = r;
      if (m == j) break;
      int32_t t = heap[j]; heap[j] = heap[m]; heap[m] = t; j = m;
    }
    order[done_count++] = top;
    for (int32_t e = cstart[top]; e < cstart[top + 1]; e++)
      if (--pending[clist[e]] == 0) HEAP_PUSH(clist[e]);
  }
#undef HEAP_PUSH
  if (done_count < n) {
    for (int32_t i = 0; i < n; i++)
      if (pending[i] > 0) {
        st = kiln_error(KILN_ERR_PARSE, "the graph has a cycle through node '%s' (%s)", g->nodes[i].name,
                        g->nodes[i].op_type);
        break;
      }
    goto done;
  }
  for (int32_t i = 0; i < n; i++) sorted[i] = g->nodes[order[i]];
  memcpy(g->nodes, sorted, sizeof(kiln_node) * (size_t)n);
  kiln_graph_update_producers(g);
done:
  free(pending);
  free(order);
  free(heap);
  free(cstart);
  free(clist);
  free(sorted);
  return st;
}
