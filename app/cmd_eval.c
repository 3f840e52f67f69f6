/* cmd_eval: the 'alignseg eval' sub-command (not implemented yet). */
#include <stdio.h>

#include "commands.h"

int cmd_eval(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "alignseg eval: not implemented yet\n");
    return 2;
}
