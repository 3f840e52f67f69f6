/* ckpt_diff A B TOL: loads two checkpoints with our own loader and fails
 * (exit 1, naming the tensor) unless they hold the same tensor names and
 * shapes and every value agrees within TOL. Prints the largest difference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: ckpt_diff A.pth B.pth TOL\n");
        return 2;
    }
    const double tol = atof(argv[3]);
    AsTensorMap a, b;
    as_tmap_init(&a);
    as_tmap_init(&b);
    AsError err = { 0 };
    int bad = 0;
    if (as_checkpoint_load(argv[1], &a, &err) || as_checkpoint_load(argv[2], &b, &err)) {
        fprintf(stderr, "ckpt_diff: %s\n", err.msg);
        bad = 1;
        goto done;
    }
    if (a.count != b.count || a.count == 0) {
        fprintf(stderr, "ckpt_diff: %zu tensors in %s, %zu in %s\n", a.count, argv[1], b.count,
                argv[2]);
        bad = 1;
    }
    double worst = 0.0;
    for (size_t i = 0; !bad && i < a.count; i++) {
        const AsTensor *x = &a.items[i];
        const AsTensor *y = as_tmap_find(&b, x->name);
        if (!y || y->numel != x->numel || y->ndim != x->ndim ||
            memcmp(y->shape, x->shape, sizeof x->shape)) {
            fprintf(stderr, "ckpt_diff: %s missing or of another shape in %s\n", x->name,
                    argv[2]);
            bad = 1;
            break;
        }
        for (int64_t k = 0; k < x->numel; k++) {
            const double d = fabs((double)x->data[k] - y->data[k]);
            if (!(d <= tol)) {
                fprintf(stderr, "ckpt_diff: %s[%lld]: %.9g vs %.9g\n", x->name, (long long)k,
                        x->data[k], y->data[k]);
                bad = 1;
                break;
            }
            if (d > worst)
                worst = d;
        }
    }
    if (!bad)
        printf("ckpt_diff: %zu tensors agree, largest difference %.3g\n", a.count, worst);
done:
    as_tmap_free(&a);
    as_tmap_free(&b);
    return bad;
}
