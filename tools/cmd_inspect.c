#include "commands.h"
#include <stdio.h>
int kiln_cmd_inspect(int argc, char **argv) { fprintf(stderr, "kiln inspect: not implemented yet\n"); return 1; }
