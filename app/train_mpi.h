/* train_mpi: `alignseg train` under mpirun/srun (built with -Dmpi): the
 * ranks of MPI_COMM_WORLD train one model data-parallel (train_run.h): each
 * crops and encodes its share of every batch, MPI_Allgatherv gives every
 * rank the whole batch's tokens, the decoder step runs on all, and the
 * gradients are averaged with MPI_Allreduce (they agree already: this keeps
 * the ranks' weights identical). Rank 0 alone reports and writes files.
 * Without MPI in the build, or when not started by an MPI launcher, the
 * functions do nothing and training runs as one process. */
#ifndef ALIGNSEG_TRAIN_MPI_H
#define ALIGNSEG_TRAIN_MPI_H

#include <stdbool.h>

#include "train_run.h"

/* Starts MPI when launched by mpirun/srun (OMPI_COMM_WORLD_SIZE, PMIX_RANK,
 * PMI_RANK in the environment) and fills ev's rank, world, share and reduce.
 * Returns true when running under MPI with more than one rank. */
bool train_mpi_begin(int *argc, char ***argv, AsTrainEvents *ev);
/* Ends MPI: MPI_Finalize after success, MPI_Abort of the whole job after an
 * error (so no rank waits forever for one that has given up). */
void train_mpi_end(int rc);

#endif
