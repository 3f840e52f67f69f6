/* runlist: see runlist.h */
#include "runlist.h"

#include <limits.h>
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
