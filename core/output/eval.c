/* eval: see eval.h */
#include "eval.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

int as_eval_init(AsEval *e, int num_pred, int ignore, AsError *err)
{
    memset(e, 0, sizeof *e);
    if (num_pred < 1 || num_pred > 4096)
        return as_error_set(err, AS_ERR_ARG, "eval: number of clusters %d outside 1..4096",
                            num_pred);
    if (ignore < -1 || ignore > 255)
        return as_error_set(err, AS_ERR_ARG, "eval: ignore value %d outside -1..255", ignore);
    e->num_pred = num_pred;
    e->ignore = ignore;
    e->conf = calloc((size_t)num_pred * AS_EVAL_CLASSES, sizeof *e->conf);
    if (!e->conf)
        return as_error_set(err, AS_ERR_NOMEM, "eval: out of memory");
    return 0;
}

void as_eval_free(AsEval *e)
{
    free(e->conf);
    e->conf = NULL;
}

int as_eval_confusion(const AsEval *e, const int32_t *pred, const uint8_t *gt, size_t n,
                      AsEvalConfusion *c, AsError *err)
{
    c->cells = NULL;
    c->n = 0;
    const int P = e->num_pred, C = AS_EVAL_CLASSES;
    for (size_t i = 0; i < n; i++)
        if (gt[i] != e->ignore && (pred[i] < 0 || pred[i] >= P))
            return as_error_set(err, AS_ERR_ARG, "eval: predicted label %d at pixel %zu is not a "
                                "cluster (0..%d)", (int)pred[i], i, P - 1);
    int64_t *m = calloc((size_t)P * C, sizeof *m);
    if (!m)
        return as_error_set(err, AS_ERR_NOMEM, "eval: out of memory");
    size_t nz = 0;
    for (size_t i = 0; i < n; i++) {
        if (gt[i] == e->ignore)
            continue;
        if (m[(size_t)pred[i] * C + gt[i]]++ == 0)
            nz++;
    }
    if (nz > 0) {
        c->cells = malloc(nz * sizeof *c->cells);
        if (!c->cells) {
            free(m);
            return as_error_set(err, AS_ERR_NOMEM, "eval: out of memory");
        }
        for (size_t k = 0; k < (size_t)P * C; k++)
            if (m[k] > 0)
                c->cells[c->n++] = (AsEvalCell){ (int32_t)(k / C), (int32_t)(k % C), m[k] };
    }
    free(m);
    return 0;
}

void as_eval_confusion_free(AsEvalConfusion *c)
{
    free(c->cells);
    c->cells = NULL;
    c->n = 0;
}

/* Pixels one image may bring (eval maps are at most 4096 x 4096). */
#define MAX_IMAGE_PIXELS ((int64_t)1 << 31)

int as_eval_add_confusion(AsEval *e, const AsEvalConfusion *c, AsError *err)
{
    const int P = e->num_pred, C = AS_EVAL_CLASSES;
    int64_t col[AS_EVAL_CLASSES] = { 0 }, valid = 0;
    for (size_t k = 0; k < c->n; k++) {
        const AsEvalCell *x = &c->cells[k];
        if (x->pred < 0 || x->pred >= P)
            return as_error_set(err, AS_ERR_FORMAT, "eval: confusion cell %zu: cluster %d is not "
                                "in 0..%d", k, (int)x->pred, P - 1);
        if (x->cls < 0 || x->cls >= C || x->cls == e->ignore)
            return as_error_set(err, AS_ERR_FORMAT, "eval: confusion cell %zu: class %d is not a "
                                "scored class (0..255, not the ignore value %d)", k, (int)x->cls,
                                e->ignore);
        if (k > 0 && (x->pred < x[-1].pred || (x->pred == x[-1].pred && x->cls <= x[-1].cls)))
            return as_error_set(err, AS_ERR_FORMAT, "eval: confusion cell %zu (%d, %d) is out of "
                                "order or repeated", k, (int)x->pred, (int)x->cls);
        if (x->count < 1 || x->count > MAX_IMAGE_PIXELS - valid)
            return as_error_set(err, AS_ERR_FORMAT, "eval: confusion cell %zu: count %lld outside "
                                "1..%lld pixels per image", k, (long long)x->count,
                                (long long)(MAX_IMAGE_PIXELS - valid));
        col[x->cls] += x->count;
        valid += x->count;
    }
    if (e->valid_pixels > INT64_MAX / 4 - valid)
        return as_error_set(err, AS_ERR_FORMAT, "eval: more than %lld pixels in all",
                            (long long)(INT64_MAX / 4));
    for (size_t k = 0; k < c->n; k++)
        e->conf[(size_t)c->cells[k].pred * C + c->cells[k].cls] += c->cells[k].count;
    for (int k = 0; k < C; k++)
        e->gt_pixels[k] += col[k];
    e->valid_pixels += valid;
    e->nimages++;
    if (valid == 0)
        return 0;
    /* many-to-one: each cluster -> the present class it overlaps most (ties:
     * the smallest class; every class a cell names is present) */
    int64_t tp[AS_EVAL_CLASSES] = { 0 }, pc[AS_EVAL_CLASSES] = { 0 };
    for (size_t k = 0; k < c->n;) {
        size_t best = k;
        int64_t row = 0;
        size_t j = k;
        for (; j < c->n && c->cells[j].pred == c->cells[k].pred; j++) {
            row += c->cells[j].count;
            if (c->cells[j].count > c->cells[best].count)
                best = j;
        }
        tp[c->cells[best].cls] += c->cells[best].count;
        pc[c->cells[best].cls] += row;
        k = j;
    }
    double sum = 0;
    int present = 0;
    for (int k = 0; k < C; k++) {
        if (col[k] == 0)
            continue;
        double iou = (double)tp[k] / (double)(col[k] + pc[k] - tp[k]);
        sum += iou;
        present++;
        e->class_iou_sum[k] += iou;
        e->class_images[k]++;
        e->ref_correct += tp[k];
    }
    e->sum_image_miou += sum / present;
    e->nscored++;
    return 0;
}

int as_eval_add(AsEval *e, const int32_t *pred, const uint8_t *gt, size_t n, AsError *err)
{
    AsEvalConfusion c;
    int rc = as_eval_confusion(e, pred, gt, n, &c, err);
    if (rc == 0)
        rc = as_eval_add_confusion(e, &c, err);
    as_eval_confusion_free(&c);
    return rc;
}

int as_hungarian_max(const int64_t *w, int rows, int cols, int *row_to_col, int64_t *total,
                     AsError *err)
{
    if (rows < 0 || cols < 0 || rows > 4096 || cols > 4096)
        return as_error_set(err, AS_ERR_ARG, "hungarian: bad matrix size %dx%d", rows, cols);
    for (int i = 0; i < rows; i++)
        row_to_col[i] = -1;
    if (total)
        *total = 0;
    if (rows == 0 || cols == 0)
        return 0;
    for (long k = 0; k < (long)rows * cols; k++)
        if (w[k] < 0 || w[k] > INT64_MAX / 8 / (rows + cols + 1))
            return as_error_set(err, AS_ERR_ARG, "hungarian: weight %lld out of range",
                                (long long)w[k]);
    /* minimise cost = -weight on an n x m problem with n <= m (transpose if needed) */
    bool tr = rows > cols;
    int n = tr ? cols : rows, m = tr ? rows : cols;
#define COST(i, j) (-(tr ? w[(size_t)(j) * cols + (i)] : w[(size_t)(i) * cols + (j)]))
    const int64_t INF = INT64_MAX / 4;
    int64_t *u = calloc((size_t)n + 1, sizeof *u), *v = calloc((size_t)m + 1, sizeof *v);
    int64_t *minv = malloc(sizeof(int64_t) * ((size_t)m + 1));
    int *p = calloc((size_t)m + 1, sizeof *p), *way = calloc((size_t)m + 1, sizeof *way);
    bool *used = malloc((size_t)m + 1);
    if (!u || !v || !minv || !p || !way || !used) {
        free(u); free(v); free(minv); free(p); free(way); free(used);
        return as_error_set(err, AS_ERR_NOMEM, "hungarian: out of memory");
    }
    for (int i = 1; i <= n; i++) {
        p[0] = i;
        int j0 = 0;
        for (int j = 0; j <= m; j++) {
            minv[j] = INF;
            used[j] = false;
        }
        do {
            used[j0] = true;
            int i0 = p[j0], j1 = 0;
            int64_t delta = INF;
            for (int j = 1; j <= m; j++) {
                if (used[j])
                    continue;
                int64_t cur = COST(i0 - 1, j - 1) - u[i0] - v[j];
                if (cur < minv[j]) {
                    minv[j] = cur;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (int j = 0; j <= m; j++) {
                if (used[j]) {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (p[j0] != 0);
        do {
            int j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
        } while (j0);
    }
    int64_t sum = 0;
    for (int j = 1; j <= m; j++) {
        if (p[j] == 0)
            continue;
        int i = p[j] - 1, jj = j - 1; /* row i of the (possibly transposed) problem */
        int r = tr ? jj : i, c = tr ? i : jj;
        row_to_col[r] = c;
        sum += w[(size_t)r * cols + c];
    }
#undef COST
    if (total)
        *total = sum;
    free(u); free(v); free(minv); free(p); free(way); free(used);
    return 0;
}

int as_eval_report(const AsEval *e, AsEvalProtocol proto, AsEvalReport *r, AsError *err)
{
    memset(r, 0, sizeof *r);
    const int P = e->num_pred, C = AS_EVAL_CLASSES;
    r->protocol = proto;
    r->num_pred = P;
    r->nimages = e->nimages;
    r->nscored = e->nscored;
    r->valid_pixels = e->valid_pixels;
    for (int c = 0; c < C; c++) {
        r->class_iou[c] = NAN;
        if (e->gt_pixels[c] > 0)
            r->nclasses = c + 1;
    }
    r->miou = NAN;
    r->pixel_acc = NAN;
    if (proto == AS_EVAL_REFERENCE) {
        if (e->nscored > 0) {
            r->miou = e->sum_image_miou / (double)e->nscored;
            r->pixel_acc = (double)e->ref_correct / (double)e->valid_pixels;
        }
        for (int c = 0; c < C; c++)
            if (e->class_images[c] > 0)
                r->class_iou[c] = e->class_iou_sum[c] / (double)e->class_images[c];
        return 0;
    }
    /* hungarian over the classes that occur */
    int cls[AS_EVAL_CLASSES], K = 0;
    for (int c = 0; c < C; c++)
        if (e->gt_pixels[c] > 0)
            cls[K++] = c;
    r->match = malloc(sizeof(int32_t) * (size_t)P);
    int64_t *w = calloc((size_t)P * (K > 0 ? K : 1), sizeof(int64_t));
    int *rc_ = malloc(sizeof(int) * (size_t)P);
    int64_t *rowsum = calloc((size_t)P, sizeof *rowsum);
    if (!r->match || !w || !rc_ || !rowsum) {
        free(w);
        free(rc_);
        free(rowsum);
        as_eval_report_free(r);
        return as_error_set(err, AS_ERR_NOMEM, "eval: out of memory");
    }
    for (int p = 0; p < P; p++) {
        for (int c = 0; c < C; c++)
            rowsum[p] += e->conf[(size_t)p * C + c];
        for (int k = 0; k < K; k++)
            w[(size_t)p * K + k] = e->conf[(size_t)p * C + cls[k]];
    }
    int64_t total = 0;
    int rc = as_hungarian_max(w, P, K, rc_, &total, err);
    if (rc == 0) {
        for (int p = 0; p < P; p++)
            r->match[p] = rc_[p] >= 0 ? cls[rc_[p]] : -1;
        double sum = 0;
        for (int k = 0; k < K; k++) {
            int c = cls[k];
            int64_t tp = 0, pred = 0;
            for (int p = 0; p < P; p++)
                if (r->match[p] == c) {
                    tp = e->conf[(size_t)p * C + c];
                    pred = rowsum[p];
                }
            r->class_iou[c] = (double)tp / (double)(e->gt_pixels[c] + pred - tp);
            sum += r->class_iou[c];
        }
        if (K > 0) {
            r->miou = sum / K;
            r->pixel_acc = (double)total / (double)e->valid_pixels;
        }
    } else {
        as_eval_report_free(r);
    }
    free(w);
    free(rc_);
    free(rowsum);
    return rc;
}

void as_eval_report_free(AsEvalReport *r)
{
    free(r->match);
    r->match = NULL;
}

int as_eval_report_json(const AsEvalReport *r, const char *path, AsError *err)
{
    AsJsonW jw;
    as_jw_init(&jw, 2);
    as_jw_object_begin(&jw);
    as_jw_key(&jw, "protocol");
    as_jw_string(&jw, r->protocol == AS_EVAL_HUNGARIAN ? "hungarian" : "reference");
    as_jw_key(&jw, "images");
    as_jw_int(&jw, r->nimages);
    as_jw_key(&jw, "scored_images");
    as_jw_int(&jw, r->nscored);
    as_jw_key(&jw, "valid_pixels");
    as_jw_int(&jw, r->valid_pixels);
    as_jw_key(&jw, "clusters");
    as_jw_int(&jw, r->num_pred);
    as_jw_key(&jw, "miou");
    as_jw_double(&jw, r->miou);
    as_jw_key(&jw, "pixel_accuracy");
    as_jw_double(&jw, r->pixel_acc);
    as_jw_key(&jw, "class_iou");
    as_jw_object_begin(&jw);
    for (int c = 0; c < r->nclasses; c++) {
        if (isnan(r->class_iou[c]))
            continue;
        char k[16];
        snprintf(k, sizeof k, "%d", c);
        as_jw_key(&jw, k);
        as_jw_double(&jw, r->class_iou[c]);
    }
    as_jw_object_end(&jw);
    if (r->match) {
        as_jw_key(&jw, "matching");
        as_jw_array_begin(&jw);
        for (int p = 0; p < r->num_pred; p++) {
            if (r->match[p] < 0)
                as_jw_null(&jw);
            else
                as_jw_int(&jw, r->match[p]);
        }
        as_jw_array_end(&jw);
    }
    as_jw_object_end(&jw);
    int rc = as_jw_write_file(&jw, path, err);
    as_jw_free(&jw);
    return rc;
}

void as_eval_report_print(const AsEvalReport *r, FILE *f)
{
    fprintf(f, "protocol        %s\n", r->protocol == AS_EVAL_HUNGARIAN ? "hungarian" : "reference");
    fprintf(f, "images          %lld (%lld with labelled pixels)\n", (long long)r->nimages,
            (long long)r->nscored);
    fprintf(f, "mIoU            %.4f\n", r->miou);
    fprintf(f, "pixel accuracy  %.4f\n", r->pixel_acc);
    fprintf(f, "per-class IoU:\n");
    for (int c = 0; c < r->nclasses; c++)
        if (!isnan(r->class_iou[c]))
            fprintf(f, "  class %3d     %.4f\n", c, r->class_iou[c]);
    if (r->match) {
        fprintf(f, "matching (cluster -> class):");
        for (int p = 0; p < r->num_pred; p++) {
            if (r->match[p] >= 0)
                fprintf(f, " %d->%d", p, r->match[p]);
            else
                fprintf(f, " %d->none", p);
        }
        fprintf(f, "\n");
    }
}

/* PIL: running sums in double, truncated (the sums are never negative). */
static void pil_index(int in, int out, int *idx)
{
    double s = (double)in / out, xx = s * 0.5;
    for (int k = 0; k < out; k++) {
        int v = (int)xx;
        idx[k] = v < in ? v : in - 1;
        xx += s;
    }
}

static void torch_index(int in, int out, int *idx)
{
    float s = (float)in / (float)out;
    for (int k = 0; k < out; k++) {
        int v = (int)floorf((float)k * s);
        idx[k] = v < in ? v : in - 1;
    }
}

#define RESIZE_BODY(INDEX)                                          \
    do {                                                            \
        if (sw < 1 || sh < 1 || dw < 1 || dh < 1)                   \
            return;                                                 \
        int *ix = malloc(sizeof(int) * (size_t)dw);                 \
        int *iy = malloc(sizeof(int) * (size_t)dh);                 \
        if (ix && iy) {                                             \
            INDEX(sw, dw, ix);                                      \
            INDEX(sh, dh, iy);                                      \
            for (int y = 0; y < dh; y++)                            \
                for (int x = 0; x < dw; x++)                        \
                    dst[(size_t)y * dw + x] = src[(size_t)iy[y] * sw + ix[x]]; \
        }                                                           \
        free(ix);                                                   \
        free(iy);                                                   \
    } while (0)

void as_resize_nearest_pil_u8(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh)
{
    RESIZE_BODY(pil_index);
}

void as_resize_nearest_torch_u8(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh)
{
    RESIZE_BODY(torch_index);
}

void as_resize_nearest_torch_i32(const int32_t *src, int sw, int sh, int32_t *dst, int dw,
                                 int dh)
{
    RESIZE_BODY(torch_index);
}
