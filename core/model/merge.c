/* merge: see merge.h */
#include "merge.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

void as_merge_options_default(AsMergeOptions *o)
{
    o->merge_to = 0;
    o->threshold = 2.0f;
}

int as_merge_groups(const float *protos, int q, int dim, const AsMergeOptions *o,
                    int32_t *group, int *ngroups, AsError *err)
{
    if (q < 1 || dim < 1 || !protos || !group || !ngroups)
        return as_error_set(err, AS_ERR_ARG, "merge: need at least one prototype (q=%d, dim=%d)",
                            q, dim);
    if ((size_t)q > 65536)
        return as_error_set(err, AS_ERR_ARG, "merge: too many prototypes (%d)", q);
    AsMergeOptions def;
    if (!o) {
        as_merge_options_default(&def);
        o = &def;
    }
    for (long i = 0; i < (long)q * dim; i++)
        if (!isfinite(protos[i]))
            return as_error_set(err, AS_ERR_ARG,
                                "merge: prototype %ld has a non-finite value at column %ld",
                                i / dim, i % dim);

    size_t qq = (size_t)q * (size_t)q;
    double *nrm = malloc((size_t)q * (size_t)dim * sizeof *nrm);
    double *sum = malloc(qq * sizeof *sum); /* sum of pairwise cosines between clusters */
    int *size = malloc((size_t)q * sizeof *size);
    int *parent = malloc((size_t)q * sizeof *parent); /* cluster representative = smallest member */
    int rc = 0;
    if (!nrm || !sum || !size || !parent) {
        rc = as_error_set(err, AS_ERR_NOMEM, "merge: out of memory for %d prototypes", q);
        goto fail;
    }
    for (int i = 0; i < q; i++) {
        double s = 0;
        for (int k = 0; k < dim; k++)
            s += (double)protos[(size_t)i * dim + k] * protos[(size_t)i * dim + k];
        double n = sqrt(s);
        if (n < 1e-10)
            n = 1e-10;
        for (int k = 0; k < dim; k++)
            nrm[(size_t)i * dim + k] = protos[(size_t)i * dim + k] / n;
        size[i] = 1;
        parent[i] = i;
    }
    for (int i = 0; i < q; i++)
        for (int j = i; j < q; j++) {
            double s = 0;
            for (int k = 0; k < dim; k++)
                s += nrm[(size_t)i * dim + k] * nrm[(size_t)j * dim + k];
            sum[(size_t)i * q + j] = sum[(size_t)j * q + i] = s;
        }

    int count = q;
    int k_target = o->merge_to > 0 ? o->merge_to : 0;
    bool use_t = o->threshold <= 1.0f; /* NaN: off */
    double t = o->threshold;
    while (count > 1) {
        /* best pair among active clusters (parent[i] == i), scanning in index order */
        int ba = -1, bb = -1;
        double best = -INFINITY;
        for (int a = 0; a < q; a++) {
            if (parent[a] != a)
                continue;
            for (int b = a + 1; b < q; b++) {
                if (parent[b] != b)
                    continue;
                double l = sum[(size_t)a * q + b] / ((double)size[a] * size[b]);
                if (l > best) {
                    best = l;
                    ba = a;
                    bb = b;
                }
            }
        }
        bool go = (k_target > 0 && count > k_target) || (use_t && best >= t);
        if (!go || ba < 0)
            break;
        /* merge bb into ba (ba < bb keeps the smallest member as representative) */
        for (int c = 0; c < q; c++) {
            if (parent[c] != c || c == ba || c == bb)
                continue;
            sum[(size_t)ba * q + c] += sum[(size_t)bb * q + c];
            sum[(size_t)c * q + ba] = sum[(size_t)ba * q + c];
        }
        size[ba] += size[bb];
        parent[bb] = ba;
        for (int c = 0; c < q; c++)
            if (parent[c] == bb)
                parent[c] = ba;
        count--;
    }
    /* number groups by representative (smallest member) */
    int g = 0;
    int *id = size; /* reuse: id of each representative */
    for (int i = 0; i < q; i++)
        if (parent[i] == i)
            id[i] = g++;
    for (int i = 0; i < q; i++) {
        int r = i;
        while (parent[r] != r)
            r = parent[r];
        group[i] = id[r];
    }
    *ngroups = g;
fail:
    free(nrm);
    free(sum);
    free(size);
    free(parent);
    return rc;
}

static bool is_identity(const int32_t *group, int q, int ngroups)
{
    if (!group)
        return true;
    if (ngroups != q)
        return false;
    for (int i = 0; i < q; i++)
        if (group[i] != i)
            return false;
    return true;
}

int as_relabel(const float *assign, int gh, int gw, int q, const int32_t *group, int ngroups,
               const uint8_t *fg_mask, int out_h, int out_w, int32_t *labels_patch,
               int32_t *labels_full, AsError *err)
{
    if (!assign || gh < 1 || gw < 1 || q < 1)
        return as_error_set(err, AS_ERR_ARG, "relabel: empty assignment (%dx%d grid, q=%d)", gh,
                            gw, q);
    if (!group)
        ngroups = q;
    if (ngroups < 1 || ngroups > q)
        return as_error_set(err, AS_ERR_ARG, "relabel: %d groups for %d prototypes", ngroups, q);
    if (fg_mask && ngroups > AS_MAX_GROUPS)
        return as_error_set(err, AS_ERR_ARG,
                            "relabel: %d groups; at most %d fit beside the background label",
                            ngroups, AS_MAX_GROUPS);
    if (labels_full && (out_h < 1 || out_w < 1))
        return as_error_set(err, AS_ERR_ARG, "relabel: bad output size %dx%d", out_w, out_h);
    if (group)
        for (int k = 0; k < q; k++)
            if (group[k] < 0 || group[k] >= ngroups)
                return as_error_set(err, AS_ERR_ARG, "relabel: prototype %d has group %d of %d",
                                    k, (int)group[k], ngroups);
    size_t n = (size_t)gh * gw;
    const float *prob = assign;
    float *buf = NULL, *m2 = NULL;
    int32_t *fg = NULL;
    int rc = 0;
    if (!is_identity(group, q, ngroups)) {
        buf = calloc(n * (size_t)ngroups, sizeof *buf);
        if (!buf)
            return as_error_set(err, AS_ERR_NOMEM, "relabel: out of memory");
        for (size_t i = 0; i < n; i++) {
            const float *a = assign + i * q;
            float *o = buf + i * ngroups;
            for (int k = 0; k < q; k++)
                o[group[k]] += a[k];
        }
        prob = buf;
    }
    if (labels_patch) {
        for (size_t i = 0; i < n; i++) {
            const float *p = prob + i * ngroups;
            int best = 0;
            for (int g = 1; g < ngroups; g++)
                if (p[g] > p[best])
                    best = g;
            labels_patch[i] = (fg_mask && !fg_mask[i]) ? AS_LABEL_BACKGROUND : best;
        }
    }
    if (labels_full) {
        as_upsample_argmax(prob, gh, gw, ngroups, out_h, out_w, labels_full);
        if (fg_mask) {
            size_t npix = (size_t)out_h * out_w;
            m2 = malloc(2 * n * sizeof *m2);
            fg = malloc(npix * sizeof *fg);
            if (!m2 || !fg) {
                rc = as_error_set(err, AS_ERR_NOMEM, "relabel: out of memory for %dx%d", out_w,
                                  out_h);
                goto fail;
            }
            for (size_t i = 0; i < n; i++) {
                m2[2 * i] = fg_mask[i] ? 0.0f : 1.0f;
                m2[2 * i + 1] = fg_mask[i] ? 1.0f : 0.0f;
            }
            as_upsample_argmax(m2, gh, gw, 2, out_h, out_w, fg);
            for (size_t i = 0; i < npix; i++)
                if (fg[i] != 1)
                    labels_full[i] = AS_LABEL_BACKGROUND;
        }
    }
fail:
    free(m2);
    free(fg);
    free(buf);
    return rc;
}

int as_result_relabel(const AsResult *r, const AsMergeOptions *mo, bool fg_only, int out_h,
                      int out_w, int32_t *labels_patch, int32_t *labels_full, int32_t *group,
                      int *ngroups, AsError *err)
{
    if (!r || !r->assign || !r->queries || r->q < 1)
        return as_error_set(err, AS_ERR_ARG, "relabel: the segmentation result is empty");
    int32_t local[256];
    int32_t *gr = group;
    if (!gr) {
        if (r->q <= 256) {
            gr = local;
        } else {
            gr = malloc((size_t)r->q * sizeof *gr);
            if (!gr)
                return as_error_set(err, AS_ERR_NOMEM, "relabel: out of memory");
        }
    }
    int g = 0;
    int rc = as_merge_groups(r->queries, r->q, r->dim, mo, gr, &g, err);
    if (rc == 0)
        rc = as_relabel(r->assign, r->gh, r->gw, r->q, gr, g, fg_only ? r->fg_mask : NULL, out_h,
                        out_w, labels_patch, labels_full, err);
    if (rc == 0 && ngroups)
        *ngroups = g;
    if (gr != group && gr != local)
        free(gr);
    return rc;
}

int as_labels_compact(int32_t *labels, size_t n, int nlabels, int32_t *map)
{
    if (nlabels < 0)
        return -1;
    int32_t *m = map ? map : malloc((size_t)(nlabels > 0 ? nlabels : 1) * sizeof *m);
    if (!m)
        return -1;
    for (int i = 0; i < nlabels; i++)
        m[i] = 0;
    for (size_t i = 0; i < n; i++)
        if (labels[i] >= 0 && labels[i] < nlabels)
            m[labels[i]] = 1;
    int u = 0;
    for (int i = 0; i < nlabels; i++)
        m[i] = m[i] ? u++ : -1;
    for (size_t i = 0; i < n; i++)
        if (labels[i] >= 0 && labels[i] < nlabels)
            labels[i] = m[labels[i]];
    if (m != map)
        free(m);
    return u;
}

void as_label_colour(int32_t label, uint8_t rgb[3])
{
    uint8_t pal[768];
    as_voc_palette(pal);
    int idx = (label >= 0 && label < AS_LABEL_BACKGROUND) ? label + 1 : 0;
    memcpy(rgb, pal + 3 * idx, 3);
}

void as_colourise(const int32_t *labels, int w, int h, const uint8_t *photo, float opacity,
                  int channels, uint8_t *out)
{
    if (w < 1 || h < 1 || (channels != 3 && channels != 4))
        return;
    if (!(opacity >= 0.0f))
        opacity = 0.0f;
    if (opacity > 1.0f)
        opacity = 1.0f;
    uint8_t pal[768];
    as_voc_palette(pal);
    int a = (int)lrintf(opacity * 256.0f); /* 0..256 */
    uint8_t alpha = (uint8_t)lrintf(opacity * 255.0f);
    size_t npix = (size_t)w * h;
    if (photo) {
        /* premultiplied colour part: colour * a, per palette entry */
        uint16_t pre[256][3];
        for (int i = 0; i < 256; i++)
            for (int c = 0; c < 3; c++)
                pre[i][c] = (uint16_t)(pal[3 * i + c] * a);
        int ia = 256 - a;
        for (size_t i = 0; i < npix; i++) {
            int32_t l = labels[i];
            const uint8_t *p = photo + 3 * i;
            uint8_t *o = out + (size_t)channels * i;
            if (l >= 0 && l < AS_LABEL_BACKGROUND) {
                const uint16_t *c = pre[l + 1];
                o[0] = (uint8_t)((p[0] * ia + c[0] + 128) >> 8);
                o[1] = (uint8_t)((p[1] * ia + c[1] + 128) >> 8);
                o[2] = (uint8_t)((p[2] * ia + c[2] + 128) >> 8);
            } else {
                o[0] = p[0];
                o[1] = p[1];
                o[2] = p[2];
            }
            if (channels == 4)
                o[3] = 255;
        }
    } else {
        for (size_t i = 0; i < npix; i++) {
            int32_t l = labels[i];
            bool grp = l >= 0 && l < AS_LABEL_BACKGROUND;
            const uint8_t *c = pal + 3 * (grp ? l + 1 : 0);
            uint8_t *o = out + (size_t)channels * i;
            o[0] = c[0];
            o[1] = c[1];
            o[2] = c[2];
            if (channels == 4)
                o[3] = grp ? alpha : 0;
        }
    }
}
