/* cmd_train_step: the 'alignseg train-step' sub-command (not implemented yet). */
#include <stdio.h>

#include "commands.h"

int cmd_train_step(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "alignseg train-step: not implemented yet\n");
    return 2;
}
