/* polygon: see polygon.h */
#include "polygon.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- small growable int32 array ---- */
typedef struct {
    int32_t *v;
    size_t n, cap;
} Vec;

static bool vec_push2(Vec *a, int32_t x, int32_t y)
{
    if (a->n + 2 > a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 64;
        int32_t *nv = realloc(a->v, nc * sizeof *nv);
        if (!nv)
            return false;
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = x;
    a->v[a->n++] = y;
    return true;
}

/* ---- connected components (4-connectivity, same value) ---- */
static int32_t uf_find(int32_t *p, int32_t i)
{
    while (p[i] != i) {
        p[i] = p[p[i]];
        i = p[i];
    }
    return i;
}

static void uf_union(int32_t *p, int32_t a, int32_t b)
{
    a = uf_find(p, a);
    b = uf_find(p, b);
    if (a == b)
        return;
    if (a < b)
        p[b] = a;
    else
        p[a] = b;
}

/* ---- cycles ---- */
typedef struct {
    int32_t comp;
    int64_t area2; /* twice the signed area (positive: outer boundary) */
    size_t n;      /* points */
    int32_t *xy;
} Cycle;

enum { DIR_E = 0, DIR_S = 1, DIR_W = 2, DIR_N = 3 };
static const int DX[4] = { 1, 0, -1, 0 };
static const int DY[4] = { 0, 1, 0, -1 };

/* ---- Douglas-Peucker on a closed ring ---- */
static double seg_dist2(const int32_t *a, const int32_t *b, const int32_t *p)
{
    double vx = (double)b[0] - a[0], vy = (double)b[1] - a[1];
    double wx = (double)p[0] - a[0], wy = (double)p[1] - a[1];
    double l2 = vx * vx + vy * vy;
    double t = l2 > 0 ? (wx * vx + wy * vy) / l2 : 0;
    if (t < 0)
        t = 0;
    if (t > 1)
        t = 1;
    double dx = wx - t * vx, dy = wy - t * vy;
    return dx * dx + dy * dy;
}

/* Simplify ring (n points) in place; returns the new point count. */
static size_t simplify_ring(int32_t *xy, size_t n, double eps)
{
    if (eps <= 0 || n <= 4)
        return n;
    uint8_t *keep = calloc(n, 1);
    size_t *stack = malloc(2 * (n + 2) * sizeof *stack);
    if (!keep || !stack) {
        free(keep);
        free(stack);
        return n; /* out of memory: leave it unsimplified */
    }
    /* anchors: point 0 and the point farthest from it */
    size_t far = 0;
    double best = -1;
    for (size_t i = 1; i < n; i++) {
        double dx = (double)xy[2 * i] - xy[0], dy = (double)xy[2 * i + 1] - xy[1];
        if (dx * dx + dy * dy > best) {
            best = dx * dx + dy * dy;
            far = i;
        }
    }
    keep[0] = keep[far] = 1;
    size_t sp = 0;
    stack[sp++] = 0;
    stack[sp++] = far;
    stack[sp++] = far;
    stack[sp++] = n; /* index n is point 0 again */
    double eps2 = eps * eps;
    while (sp > 0) {
        size_t j = stack[--sp], i = stack[--sp];
        if (j <= i + 1)
            continue;
        const int32_t *a = xy + 2 * (i % n), *b = xy + 2 * (j % n);
        double dmax = -1;
        size_t k = i;
        for (size_t t = i + 1; t < j; t++) {
            double d = seg_dist2(a, b, xy + 2 * t);
            if (d > dmax) {
                dmax = d;
                k = t;
            }
        }
        if (dmax > eps2) {
            keep[k] = 1;
            stack[sp++] = i;
            stack[sp++] = k;
            stack[sp++] = k;
            stack[sp++] = j;
        }
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += keep[i];
    if (m >= 3) {
        size_t o = 0;
        for (size_t i = 0; i < n; i++)
            if (keep[i]) {
                xy[2 * o] = xy[2 * i];
                xy[2 * o + 1] = xy[2 * i + 1];
                o++;
            }
        n = o;
    }
    free(keep);
    free(stack);
    return n;
}

static int64_t area2_of(const int32_t *xy, size_t n)
{
    int64_t s = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = (i + 1) % n;
        s += (int64_t)xy[2 * i] * xy[2 * j + 1] - (int64_t)xy[2 * j] * xy[2 * i + 1];
    }
    return s;
}

void as_polygon_set_free(AsPolygonSet *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->count; i++)
        free(s->items[i].xy);
    free(s->items);
    memset(s, 0, sizeof *s);
}

static int cmp_cycle(const void *pa, const void *pb)
{
    const Cycle *a = pa, *b = pb;
    if (a->comp != b->comp)
        return a->comp < b->comp ? -1 : 1;
    /* outer (positive) first, then holes by top-left vertex */
    bool oa = a->area2 > 0, ob = b->area2 > 0;
    if (oa != ob)
        return oa ? -1 : 1;
    return 0;
}

/* Index of the top-most, then left-most vertex. */
static size_t top_left(const int32_t *xy, size_t n)
{
    size_t k = 0;
    for (size_t i = 1; i < n; i++)
        if (xy[2 * i + 1] < xy[2 * k + 1] ||
            (xy[2 * i + 1] == xy[2 * k + 1] && xy[2 * i] < xy[2 * k]))
            k = i;
    return k;
}

static int cmp_hole_pos(const void *pa, const void *pb)
{
    const Cycle *a = pa, *b = pb;
    const int32_t *ta = a->xy + 2 * top_left(a->xy, a->n);
    const int32_t *tb = b->xy + 2 * top_left(b->xy, b->n);
    if (ta[1] != tb[1])
        return ta[1] < tb[1] ? -1 : 1;
    if (ta[0] != tb[0])
        return ta[0] < tb[0] ? -1 : 1;
    return 0;
}

/* Join the holes to the outer ring: every hole is bridged from its top-left
 * vertex to the nearest vertex of the outer ring (found through a grid of
 * 16-pixel cells, ties to the lower index), then the polygon is written in
 * one pass: outer vertex k, then for each hole attached to k the whole hole
 * ring back to its first vertex and vertex k again. Linear in the output. */
typedef struct {
    size_t at;   /* outer vertex index */
    size_t hole; /* index into the holes array */
} Attach;

static int cmp_attach(const void *pa, const void *pb)
{
    const Attach *a = pa, *b = pb;
    if (a->at != b->at)
        return a->at < b->at ? -1 : 1;
    return a->hole < b->hole ? -1 : (a->hole > b->hole);
}

static bool join_holes(const int32_t *ring, size_t rn, const Cycle *holes, size_t nh, Vec *out)
{
    out->v = NULL;
    out->n = out->cap = 0;
    size_t total = rn;
    for (size_t h = 0; h < nh; h++)
        total += holes[h].n + 2;
    out->v = malloc(2 * (total ? total : 1) * sizeof *out->v);
    Attach *att = malloc((nh ? nh : 1) * sizeof *att);
    if (!out->v || !att) {
        free(out->v);
        free(att);
        out->v = NULL;
        return false;
    }
    out->cap = 2 * total;
    if (nh > 0) {
        const int C = 16;
        int32_t x0 = INT32_MAX, y0 = INT32_MAX, x1 = INT32_MIN, y1 = INT32_MIN;
        for (size_t i = 0; i < rn; i++) {
            x0 = ring[2 * i] < x0 ? ring[2 * i] : x0;
            x1 = ring[2 * i] > x1 ? ring[2 * i] : x1;
            y0 = ring[2 * i + 1] < y0 ? ring[2 * i + 1] : y0;
            y1 = ring[2 * i + 1] > y1 ? ring[2 * i + 1] : y1;
        }
        int gw = (int)(((int64_t)x1 - x0) / C + 1), gh = (int)(((int64_t)y1 - y0) / C + 1);
        size_t ncell = (size_t)gw * (size_t)gh;
        size_t *start = calloc(ncell + 1, sizeof *start), *idx = malloc(rn * sizeof *idx);
        size_t *fill = malloc((ncell ? ncell : 1) * sizeof *fill);
        if (!start || !idx || !fill) {
            free(fill);
            free(start);
            free(idx);
            free(att);
            free(out->v);
            out->v = NULL;
            return false;
        }
#define CELL(i) ((size_t)((ring[2 * (i) + 1] - y0) / C) * gw + (size_t)((ring[2 * (i)] - x0) / C))
        for (size_t i = 0; i < rn; i++)
            start[CELL(i) + 1]++;
        for (size_t c = 0; c < ncell; c++)
            start[c + 1] += start[c];
        memcpy(fill, start, sizeof(size_t) * ncell);
        for (size_t i = 0; i < rn; i++) /* ascending i within each cell */
            idx[fill[CELL(i)]++] = i;
        free(fill);
#undef CELL
        for (size_t h = 0; h < nh; h++) {
            const int32_t *hv = holes[h].xy + 2 * top_left(holes[h].xy, holes[h].n);
            int cx = (int)(((int64_t)hv[0] - x0) / C), cy = (int)(((int64_t)hv[1] - y0) / C);
            cx = cx < 0 ? 0 : (cx >= gw ? gw - 1 : cx);
            cy = cy < 0 ? 0 : (cy >= gh ? gh - 1 : cy);
            double best = INFINITY;
            size_t bi = 0;
            int maxr = gw > gh ? gw : gh;
            for (int r = 0; r <= maxr; r++) {
                if (best < INFINITY && (double)(r - 1) * C * (double)(r - 1) * C > best)
                    break;
                for (int yy = cy - r; yy <= cy + r; yy++) {
                    if (yy < 0 || yy >= gh)
                        continue;
                    for (int xx = cx - r; xx <= cx + r; xx++) {
                        if (xx < 0 || xx >= gw)
                            continue;
                        if (yy != cy - r && yy != cy + r && xx != cx - r && xx != cx + r)
                            continue; /* interior cells were done at smaller r */
                        size_t c = (size_t)yy * gw + xx;
                        for (size_t k = start[c]; k < start[c + 1]; k++) {
                            size_t i = idx[k];
                            double dx = (double)ring[2 * i] - hv[0];
                            double dy = (double)ring[2 * i + 1] - hv[1];
                            double d = dx * dx + dy * dy;
                            if (d < best || (d == best && i < bi)) {
                                best = d;
                                bi = i;
                            }
                        }
                    }
                }
            }
            att[h].at = bi;
            att[h].hole = h;
        }
        free(start);
        free(idx);
        qsort(att, nh, sizeof *att, cmp_attach);
    }
    size_t o = 0, a = 0;
    for (size_t i = 0; i < rn; i++) {
        out->v[o++] = ring[2 * i];
        out->v[o++] = ring[2 * i + 1];
        for (; a < nh && att[a].at == i; a++) {
            const Cycle *hc = &holes[att[a].hole];
            size_t t = top_left(hc->xy, hc->n);
            for (size_t k = 0; k <= hc->n; k++) {
                size_t q = (t + k) % hc->n;
                out->v[o++] = hc->xy[2 * q];
                out->v[o++] = hc->xy[2 * q + 1];
            }
            out->v[o++] = ring[2 * i];
            out->v[o++] = ring[2 * i + 1];
        }
    }
    out->n = o;
    free(att);
    return true;
}

int as_trace_polygons(const int32_t *labels, int w, int h, int nlabels, double epsilon,
                      AsPolygonSet *out, AsError *err)
{
    memset(out, 0, sizeof *out);
    if (w < 1 || h < 1 || (int64_t)w * h > INT32_MAX / 2 || w >= INT32_MAX - 1 ||
        h >= INT32_MAX - 1)
        return as_error_set(err, AS_ERR_ARG, "polygons: bad label map size %dx%d", w, h);
    size_t npix = (size_t)w * h, ncorner = (size_t)(w + 1) * (size_t)(h + 1);
    int32_t *comp = malloc(npix * sizeof *comp);
    uint8_t *bits = calloc(ncorner, 1); /* low nibble: edge exists, high: used */
    Cycle *cyc = NULL;
    size_t ncyc = 0, capcyc = 0;
    int64_t *carea = NULL;
    int32_t *clabel = NULL;
    int rc = 0;
    if (!comp || !bits) {
        rc = as_error_set(err, AS_ERR_NOMEM, "polygons: out of memory for %dx%d", w, h);
        goto done;
    }
#define IN(v) ((v) >= 0 && (v) < nlabels)
    for (size_t i = 0; i < npix; i++)
        comp[i] = IN(labels[i]) ? (int32_t)i : -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            if (comp[i] < 0)
                continue;
            if (x > 0 && labels[i - 1] == labels[i])
                uf_union(comp, (int32_t)i, (int32_t)(i - 1));
            if (y > 0 && labels[i - w] == labels[i])
                uf_union(comp, (int32_t)i, (int32_t)(i - w));
        }
    /* compact ids in raster order of the first pixel; roots are first pixels
     * because uf_union keeps the smaller index as the root */
    int32_t ncomp = 0;
    for (size_t i = 0; i < npix; i++) {
        if (comp[i] < 0)
            continue;
        int32_t r = uf_find(comp, (int32_t)i);
        if ((size_t)r == i)
            ncomp++;
    }
    carea = calloc((size_t)ncomp + 1, sizeof *carea);
    clabel = malloc(((size_t)ncomp + 1) * sizeof *clabel);
    if (!carea || !clabel) {
        rc = as_error_set(err, AS_ERR_NOMEM, "polygons: out of memory for %d components", ncomp);
        goto done;
    }
    {
        /* second pass: root pixel index -> compact id, stored as -(id+2) at the root */
        int32_t next = 0;
        for (size_t i = 0; i < npix; i++) {
            if (comp[i] == -1)
                continue;
            if (comp[i] == (int32_t)i) {
                clabel[next] = labels[i];
                comp[i] = -(next + 2);
                next++;
            }
        }
        for (size_t i = 0; i < npix; i++) {
            if (comp[i] >= 0) {
                /* follow to the root, which now holds a negative compact id */
                int32_t r = comp[i];
                while (comp[r] >= 0)
                    r = comp[r];
                comp[i] = comp[r];
            }
        }
        for (size_t i = 0; i < npix; i++)
            comp[i] = comp[i] == -1 ? -1 : -comp[i] - 2;
    }
    for (size_t i = 0; i < npix; i++)
        if (comp[i] >= 0)
            carea[comp[i]]++;
    /* boundary edges, region on the right of the walking direction */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            int32_t c = comp[i];
            if (c < 0)
                continue;
            size_t W1 = (size_t)w + 1;
            if (y == 0 || comp[i - w] != c)
                bits[(size_t)y * W1 + x] |= 1 << DIR_E;
            if (x == w - 1 || comp[i + 1] != c)
                bits[(size_t)y * W1 + x + 1] |= 1 << DIR_S;
            if (y == h - 1 || comp[i + w] != c)
                bits[(size_t)(y + 1) * W1 + x + 1] |= 1 << DIR_W;
            if (x == 0 || comp[i - 1] != c)
                bits[(size_t)(y + 1) * W1 + x] |= 1 << DIR_N;
        }
    {
        size_t W1 = (size_t)w + 1;
        Vec cur = { 0 };
        for (size_t ci = 0; ci < ncorner; ci++) {
            while ((bits[ci] & 0x0f) & ~(bits[ci] >> 4)) {
                int free_bits = (bits[ci] & 0x0f) & ~(bits[ci] >> 4);
                int d0 = __builtin_ctz((unsigned)free_bits);
                int sx = (int)(ci % W1), sy = (int)(ci / W1);
                /* the pixel on the right of the start edge owns the cycle */
                int px = sx, py = sy;
                if (d0 == DIR_S) px = sx - 1;
                else if (d0 == DIR_W) { px = sx - 1; py = sy - 1; }
                else if (d0 == DIR_N) py = sy - 1;
                int32_t owner = comp[(size_t)py * w + px];
                cur.n = 0;
                int x = sx, y = sy, d = d0;
                size_t steps = 0;
                for (;;) {
                    if (++steps > 4 * ncorner) { /* cannot happen: every edge is used once */
                        rc = as_error_set(err, AS_ERR_FORMAT,
                                          "polygons: boundary walk does not close at (%d,%d)",
                                          sx, sy);
                        free(cur.v);
                        goto done;
                    }
                    size_t k = (size_t)y * W1 + x;
                    bits[k] |= (uint8_t)(1 << (d + 4));
                    x += DX[d];
                    y += DY[d];
                    k = (size_t)y * W1 + x;
                    int ex = bits[k] & 0x0f;
                    int r = (d + 1) & 3, l = (d + 3) & 3, nd;
                    if (ex & (1 << r)) nd = r;
                    else if (ex & (1 << d)) nd = d;
                    else if (ex & (1 << l)) nd = l;
                    else { nd = -1; }
                    if (nd < 0) { /* cannot happen on a consistent edge set */
                        rc = as_error_set(err, AS_ERR_FORMAT,
                                          "polygons: broken boundary at (%d,%d)", x, y);
                        free(cur.v);
                        goto done;
                    }
                    if (nd != d && !vec_push2(&cur, x, y)) {
                        free(cur.v);
                        rc = as_error_set(err, AS_ERR_NOMEM, "polygons: out of memory");
                        goto done;
                    }
                    if (x == sx && y == sy && nd == d0)
                        break;
                    d = nd;
                }
                if (ncyc == capcyc) {
                    size_t nc = capcyc ? capcyc * 2 : 64;
                    Cycle *n2 = realloc(cyc, nc * sizeof *n2);
                    if (!n2) {
                        free(cur.v);
                        rc = as_error_set(err, AS_ERR_NOMEM, "polygons: out of memory");
                        goto done;
                    }
                    cyc = n2;
                    capcyc = nc;
                }
                Cycle *cy = &cyc[ncyc];
                cy->comp = owner;
                cy->n = cur.n / 2;
                cy->xy = malloc((cur.n ? cur.n : 1) * sizeof *cy->xy);
                if (!cy->xy) {
                    free(cur.v);
                    rc = as_error_set(err, AS_ERR_NOMEM, "polygons: out of memory");
                    goto done;
                }
                memcpy(cy->xy, cur.v, sizeof(int32_t) * cur.n);
                cy->area2 = area2_of(cy->xy, cy->n);
                ncyc++;
            }
        }
        free(cur.v);
    }
    free(bits);
    bits = NULL;
    qsort(cyc, ncyc, sizeof *cyc, cmp_cycle);
    /* one polygon per component: outer ring + bridged holes */
    out->items = calloc((size_t)ncomp + 1, sizeof *out->items);
    if (!out->items) {
        rc = as_error_set(err, AS_ERR_NOMEM, "polygons: out of memory");
        goto done;
    }
    out->cap = (size_t)ncomp;
    {
        size_t i = 0;
        while (i < ncyc) {
            size_t j = i;
            while (j < ncyc && cyc[j].comp == cyc[i].comp)
                j++;
            /* cyc[i] is the outer ring (positive area), cyc[i+1..j) are holes */
            if (cyc[i].area2 <= 0) { /* cannot happen: every component has an outer ring */
                rc = as_error_set(err, AS_ERR_FORMAT, "polygons: component %d has no outer ring",
                                  cyc[i].comp);
                goto done;
            }
            for (size_t k = i; k < j; k++)
                cyc[k].n = simplify_ring(cyc[k].xy, cyc[k].n, epsilon);
            qsort(cyc + i + 1, j - i - 1, sizeof *cyc, cmp_hole_pos);
            Vec r;
            if (!join_holes(cyc[i].xy, cyc[i].n, cyc + i + 1, j - i - 1, &r)) {
                rc = as_error_set(err, AS_ERR_NOMEM, "polygons: out of memory");
                goto done;
            }
            AsPolygon *p = &out->items[out->count++];
            p->label = clabel[cyc[i].comp];
            p->n = r.n / 2;
            p->xy = r.v;
            p->nholes = (int)(j - i - 1);
            p->area = carea[cyc[i].comp];
            i = j;
        }
    }
    /* components are in raster order; make the order (label, raster) */
    {
        AsPolygon *sorted = malloc((out->count + 1) * sizeof *sorted);
        if (!sorted) {
            rc = as_error_set(err, AS_ERR_NOMEM, "polygons: out of memory");
            goto done;
        }
        size_t o = 0;
        for (int lab = 0; lab < nlabels && o < out->count; lab++)
            for (size_t k = 0; k < out->count; k++)
                if (out->items[k].label == lab)
                    sorted[o++] = out->items[k];
        free(out->items);
        out->items = sorted;
    }
#undef IN
done:
    for (size_t k = 0; k < ncyc; k++)
        free(cyc[k].xy);
    free(cyc);
    free(comp);
    free(bits);
    free(carea);
    free(clabel);
    if (rc)
        as_polygon_set_free(out);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void as_polygon_fill(const double *xy, size_t n, int w, int h, uint8_t *mask)
{
    if (n < 3 || w < 1 || h < 1)
        return;
    double ymin = INFINITY, ymax = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(xy[2 * i]) || !isfinite(xy[2 * i + 1]))
            return;
        if (xy[2 * i + 1] < ymin) ymin = xy[2 * i + 1];
        if (xy[2 * i + 1] > ymax) ymax = xy[2 * i + 1];
    }
    double *xs = malloc(n * sizeof *xs);
    if (!xs)
        return;
    int y0 = (int)fmin(fmax(0.0, floor(ymin - 0.5)), (double)h);
    int y1 = (int)fmax(-1.0, fmin((double)h - 1, ceil(ymax)));
    for (int y = y0; y <= y1; y++) {
        double yc = y + 0.5;
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            size_t j = (i + 1) % n;
            double ay = xy[2 * i + 1], by = xy[2 * j + 1];
            if ((ay <= yc) == (by <= yc))
                continue;
            double ax = xy[2 * i], bx = xy[2 * j];
            xs[m++] = ax + (yc - ay) * (bx - ax) / (by - ay);
        }
        qsort(xs, m, sizeof *xs, cmp_double);
        for (size_t k = 0; k + 1 < m; k += 2) {
            double a = ceil(xs[k] - 0.5), b = ceil(xs[k + 1] - 0.5);
            int xa = (int)fmin(fmax(0.0, a), (double)w);
            int xb = (int)fmax(0.0, fmin((double)w, b));
            for (int x = xa; x < xb; x++)
                mask[(size_t)y * w + x] = 1;
        }
    }
    free(xs);
}
