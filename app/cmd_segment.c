/* cmd_segment: the 'alignseg segment' sub-command (not implemented yet). */
#include <stdio.h>

#include "commands.h"

int cmd_segment(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "alignseg segment: not implemented yet\n");
    return 2;
}
