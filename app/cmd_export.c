/* cmd_export: the 'alignseg export' sub-command (not implemented yet). */
#include <stdio.h>

#include "commands.h"

int cmd_export(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "alignseg export: not implemented yet\n");
    return 2;
}
