/* commands: the sub-commands of the `alignseg` command-line program.
 * Each returns the process exit status (0 ok, 1 some input failed, 2 usage). */
#ifndef ALIGNSEG_COMMANDS_H
#define ALIGNSEG_COMMANDS_H

int cmd_segment(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_train_step(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
