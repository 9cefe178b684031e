#include "commands.h"
#include <stdio.h>
int kiln_cmd_surgeon(int argc, char **argv) { fprintf(stderr, "kiln surgeon: not implemented yet\n"); return 1; }
