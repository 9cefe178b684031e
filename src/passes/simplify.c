/* The standard clean-up pipeline, iterated to a fixed point (each pass can expose work for another). */
#include "passes/passes.h"

kiln_status kiln_passes_simplify(kiln_graph *g) {
  for (int round = 0; round < 16; round++) {
    int folded = 0, noops = 0, dead = 0;
    KILN_TRY(kiln_pass_fold_constants(g, &folded));
    KILN_TRY(kiln_pass_eliminate_noops(g, &noops));
    KILN_TRY(kiln_pass_cleanup(g, &dead));
    if (!folded && !noops && !dead) break;
  }
  return kiln_pass_toposort(g);
}
