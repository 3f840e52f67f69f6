/* runlist: see runlist.h */
#include "runlist.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct {
    char *stem;
    int index;
} Stem;

static int cmp_stem(const void *a, const void *b)
{
    const Stem *x = a, *y = b;
    int c = strcmp(x->stem, y->stem);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

int runlist_check_unique(const char *cmd, const char *const *images, int n, const char *outdir,
                         const char *outfmt)
{
    if (n < 2)
        return 0;
    Stem *s = calloc((size_t)n, sizeof *s);
    int rc = 0;
    for (int i = 0; s && i < n; i++) {
        char buf[PATH_MAX];
        s[i].stem = strdup(cli_stem(images[i], buf, sizeof buf));
        s[i].index = i;
        if (!s[i].stem)
            rc = -1;
    }
    if (!s || rc) {
        fprintf(stderr, "alignseg %s: out of memory\n", cmd);
        rc = -1;
        goto out;
    }
    qsort(s, (size_t)n, sizeof *s, cmp_stem);
    for (int i = 1; i < n; i++)
        if (!strcmp(s[i - 1].stem, s[i].stem)) {
            char out[PATH_MAX];
            snprintf(out, sizeof out, outfmt, outdir, s[i].stem);
            fprintf(stderr,
                    "alignseg %s: '%s' and '%s' would both be written as %s; give them "
                    "different file names or run them into different folders\n",
                    cmd, images[s[i - 1].index], images[s[i].index], out);
            rc = -1;
            break;
        }
out:
    for (int i = 0; s && i < n; i++)
        free(s[i].stem);
    free(s);
    return rc;
}

const char runlist_shard_help[] =
    "      --shard I/N        process only the I-th (0-based) of N parts of the input list\n"
    "                         sorted by path (byte order): images [I*n/N, (I+1)*n/N)\n"
    "      --shard slurm      I and N from a Slurm job array: I = SLURM_ARRAY_TASK_ID -\n"
    "                         SLURM_ARRAY_TASK_MIN, N = SLURM_ARRAY_TASK_COUNT\n";

static int cmp_path(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool env_long(const char *name, long *out)
{
    const char *v = getenv(name);
    char *end;
    if (!v || !*v)
        return false;
    *out = strtol(v, &end, 10);
    return *end == '\0';
}

int runlist_parse_shard(const char *cmd, const char *v, RunShard *s)
{
    long i = -1, n = -1;
    if (v && !strcmp(v, "slurm")) {
        long id, min;
        if (!env_long("SLURM_ARRAY_TASK_ID", &id) || !env_long("SLURM_ARRAY_TASK_MIN", &min) ||
            !env_long("SLURM_ARRAY_TASK_COUNT", &n)) {
            fprintf(stderr,
                    "alignseg %s: --shard slurm: not in a Slurm job array (SLURM_ARRAY_TASK_ID, "
                    "SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT are not all set; submit "
                    "with sbatch --array=0-N)\n",
                    cmd);
            return -1;
        }
        i = id - min;
    } else if (v) {
        char *end;
        i = strtol(v, &end, 10);
        if (end == v || *end != '/')
            i = -1;
        else
            n = strtol(end + 1, &end, 10);
        if (*end != '\0')
            i = -1;
    }
    if (i < 0 || n < 1 || n > 100000 || i >= n) {
        fprintf(stderr, "alignseg %s: --shard needs I/N with 0 <= I < N <= 100000, or slurm%s%s\n",
                cmd, v ? "; got " : "", v ? v : "");
        return -1;
    }
    s->index = (int)i;
    s->count = (int)n;
    return 0;
}

int runlist_apply_shard(const char **images, int n, const RunShard *s)
{
    if (!s || s->count <= 0)
        return n;
    qsort(images, (size_t)n, sizeof *images, cmp_path);
    long lo = (long)s->index * n / s->count, hi = (long)(s->index + 1) * n / s->count;
    memmove(images, images + lo, (size_t)(hi - lo) * sizeof *images);
    return (int)(hi - lo);
}
