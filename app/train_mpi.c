/* train_mpi: see train_mpi.h */
#include "train_mpi.h"

#include <stdio.h>
#include <stdlib.h>

#ifdef ALIGNSEG_MPI
#include <mpi.h>

static bool g_started;

static bool launched_by_mpi(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

static int mpi_fail(int code, const char *what, AsError *err)
{
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(code, msg, &len);
    return as_error_set(err, AS_ERR_IO, "MPI: %s failed: %s", what, msg);
}

/* every rank's images (bounds, train_run.h) of each crop kind gathered in place */
static int share(void *user, float *tokens, uint8_t *fg, int ncrops, int batch, int n, int dim,
                 const int *bounds, AsError *err)
{
    (void)user;
    int world = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    int *cnt = malloc((size_t)4 * world * sizeof(int));
    if (!cnt)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory");
    int *dsp = cnt + world, *cntm = cnt + 2 * world, *dspm = cnt + 3 * world, rc = 0;
    const long nd = (long)n * dim;
    for (int c = 0; c < ncrops && !rc; c++) {
        for (int r = 0; r < world; r++) {
            cnt[r] = (int)((bounds[r + 1] - bounds[r]) * nd);
            dsp[r] = (int)(((long)c * batch + bounds[r]) * nd);
            cntm[r] = (bounds[r + 1] - bounds[r]) * n;
            dspm[r] = (c * batch + bounds[r]) * n;
        }
        int e = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, tokens, cnt, dsp, MPI_FLOAT,
                               MPI_COMM_WORLD);
        if (e == MPI_SUCCESS)
            e = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, fg, cntm, dspm,
                               MPI_UNSIGNED_CHAR, MPI_COMM_WORLD);
        if (e != MPI_SUCCESS)
            rc = mpi_fail(e, "gathering the encoded crops", err);
    }
    free(cnt);
    return rc;
}

/* the mean over the ranks (identical inputs: the same numbers, kept in step) */
static int reduce(void *user, float *grad, long n, AsTrainLosses *loss, AsError *err)
{
    (void)user;
    int world = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    for (long at = 0; at < n;) {
        const int part = n - at > (1 << 28) ? (1 << 28) : (int)(n - at);
        int e = MPI_Allreduce(MPI_IN_PLACE, grad + at, part, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (e != MPI_SUCCESS)
            return mpi_fail(e, "averaging the gradients", err);
        at += part;
    }
    for (long i = 0; i < n; i++)
        grad[i] /= (float)world;
    double l[3] = { loss->loss, loss->loss_ce, loss->loss_corr };
    int e = MPI_Allreduce(MPI_IN_PLACE, l, 3, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if (e != MPI_SUCCESS)
        return mpi_fail(e, "averaging the losses", err);
    loss->loss = l[0] / world;
    loss->loss_ce = l[1] / world;
    loss->loss_corr = l[2] / world;
    return 0;
}

bool train_mpi_begin(int *argc, char ***argv, AsTrainEvents *ev)
{
    if (!launched_by_mpi())
        return false;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "alignseg train: MPI_Init failed\n");
        exit(1);
    }
    g_started = true;
    /* a failed call ends the whole job (the default, said once more) */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    MPI_Comm_rank(MPI_COMM_WORLD, &ev->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ev->world);
    ev->share = share;
    ev->reduce = reduce;
    return ev->world > 1;
}

void train_mpi_end(int rc)
{
    if (!g_started)
        return;
    g_started = false;
    int world = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (rc && world > 1)
        MPI_Abort(MPI_COMM_WORLD, rc);
    MPI_Finalize();
}

#else /* built without MPI */

bool train_mpi_begin(int *argc, char ***argv, AsTrainEvents *ev)
{
    (void)argc;
    (void)argv;
    (void)ev;
    return false;
}

void train_mpi_end(int rc)
{
    (void)rc;
}

#endif
