/* cmd_bench: the 'alignseg bench' sub-command (not implemented yet). */
#include <stdio.h>

#include "commands.h"

int cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "alignseg bench: not implemented yet\n");
    return 2;
}
