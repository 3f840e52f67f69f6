/* cmd_train: the 'alignseg train' sub-command (not implemented yet). */
#include <stdio.h>

#include "commands.h"

int cmd_train(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "alignseg train: not implemented yet\n");
    return 2;
}
