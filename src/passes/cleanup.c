/* Dead-node cleanup: a node none of whose outputs reaches a graph output is removed; constants nobody
 * reads disappear with the compaction. Graph inputs stay even if unused: they are the interface. */
#include "passes/passes.h"

#include <stdlib.h>

kiln_status kiln_pass_cleanup(kiln_graph *g, int *removed) {
  int32_t *uses = calloc((size_t)g->n_values + 1, sizeof(int32_t));
  KILN_CHECK_ALLOC(uses);
  for (int32_t i = 0; i < g->n_nodes; i++) {
    if (g->nodes[i].dead) continue;
    for (int32_t k = 0; k < g->nodes[i].n_inputs; k++)
      if (g->nodes[i].inputs[k] >= 0) uses[g->nodes[i].inputs[k]]++;
  }
  for (int32_t k = 0; k < g->n_outputs; k++) uses[g->outputs[k]]++;
  int count = 0;
  /* Reverse order: in a sorted graph, removing a consumer first lets its producers go in the same sweep. */
  for (int32_t i = g->n_nodes - 1; i >= 0; i--) {
    kiln_node *n = &g->nodes[i];
    if (n->dead) continue;
    bool used = false;
    for (int32_t k = 0; k < n->n_outputs; k++)
      if (n->outputs[k] >= 0 && uses[n->outputs[k]] > 0) used = true;
    if (used) continue;
    n->dead = true;
    count++;
    for (int32_t k = 0; k < n->n_inputs; k++)
      if (n->inputs[k] >= 0) uses[n->inputs[k]]--;
  }
  free(uses);
  KILN_TRY(kiln_graph_compact(g));
  if (removed) *removed = count;
  return NULL;
}
