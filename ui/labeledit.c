/* labeledit: corrections to a label map (see labeledit.h). */
#include "labeledit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One undo step: the correction layer inside a rectangle, before and after
 * (after NULL: no corrections there, as after a drop). */
typedef struct {
    int x, y, w, h;
    int32_t *before, *after;
} Step;

typedef struct {
    Step *v;
    size_t n, cap;
} StepStack;

struct LabelEdit {
    int w, h;
    int32_t *base, *corr, *out;
    size_t ncorr;
    size_t limit, bytes;
    StepStack undo, redo;
    /* the running stroke: its rectangle [sx0,sx1) x [sy0,sy1) and the layer's
     * values there before the stroke */
    bool in_stroke, stroke_failed;
    int sx0, sy0, sx1, sy1;
    int32_t *sbefore;
    /* corrections changed since le_take_dirty: [dx0,dx1) x [dy0,dy1) */
    int dx0, dy0, dx1, dy1;
    /* the grouping the labels refer to */
    int32_t *group;
    int q;
};

static size_t step_bytes(const Step *s)
{
    return sizeof *s + (s->after ? 2 : 1) * (size_t)s->w * s->h * sizeof(int32_t);
}

static void step_free(Step *s)
{
    free(s->before);
    free(s->after);
}

static void stack_clear(LabelEdit *e, StepStack *st)
{
    for (size_t i = 0; i < st->n; i++) {
        e->bytes -= step_bytes(&st->v[i]);
        step_free(&st->v[i]);
    }
    st->n = 0;
}

static bool stack_push(StepStack *st, Step s)
{
    if (st->n == st->cap) {
        size_t cap = st->cap ? 2 * st->cap : 16;
        Step *v = realloc(st->v, cap * sizeof *v);
        if (!v)
            return false;
        st->v = v;
        st->cap = cap;
    }
    st->v[st->n++] = s;
    return true;
}

LabelEdit *le_new(int w, int h, int32_t fill, size_t undo_limit)
{
    if (w < 1 || h < 1 || (size_t)w > SIZE_MAX / sizeof(int32_t) / (size_t)h)
        return NULL;
    LabelEdit *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    size_t n = (size_t)w * h;
    e->w = w;
    e->h = h;
    e->limit = undo_limit;
    e->dx0 = w;
    e->dy0 = h;
    e->base = malloc(n * sizeof *e->base);
    e->corr = malloc(n * sizeof *e->corr);
    e->out = malloc(n * sizeof *e->out);
    if (!e->base || !e->corr || !e->out) {
        le_free(e);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        e->base[i] = fill;
        e->corr[i] = LE_NONE;
        e->out[i] = fill;
    }
    return e;
}

void le_free(LabelEdit *e)
{
    if (!e)
        return;
    stack_clear(e, &e->undo);
    stack_clear(e, &e->redo);
    free(e->undo.v);
    free(e->redo.v);
    free(e->base);
    free(e->corr);
    free(e->out);
    free(e->sbefore);
    free(e->group);
    free(e);
}

int le_width(const LabelEdit *e) { return e->w; }
int le_height(const LabelEdit *e) { return e->h; }
const int32_t *le_labels(const LabelEdit *e) { return e->out; }
const int32_t *le_corrections(const LabelEdit *e) { return e->corr; }
size_t le_correction_count(const LabelEdit *e) { return e->ncorr; }
bool le_can_undo(const LabelEdit *e) { return e->undo.n > 0; }
bool le_can_redo(const LabelEdit *e) { return e->redo.n > 0; }
size_t le_undo_bytes(const LabelEdit *e) { return e->bytes; }

/* Set the correction of pixel i and what it shows. */
static void set_corr(LabelEdit *e, size_t i, int32_t v)
{
    int32_t old = e->corr[i];
    if (old == v)
        return;
    int x = (int)(i % (size_t)e->w), y = (int)(i / (size_t)e->w);
    e->dx0 = x < e->dx0 ? x : e->dx0;
    e->dx1 = x + 1 > e->dx1 ? x + 1 : e->dx1;
    e->dy0 = y < e->dy0 ? y : e->dy0;
    e->dy1 = y + 1 > e->dy1 ? y + 1 : e->dy1;
    e->ncorr += (v != LE_NONE) - (old != LE_NONE);
    e->corr[i] = v;
    e->out[i] = v != LE_NONE ? v : e->base[i];
}

bool le_take_dirty(LabelEdit *e, int *x0, int *y0, int *x1, int *y1)
{
    bool any = e->dx0 < e->dx1 && e->dy0 < e->dy1;
    *x0 = any ? e->dx0 : 0;
    *y0 = any ? e->dy0 : 0;
    *x1 = any ? e->dx1 : 0;
    *y1 = any ? e->dy1 : 0;
    e->dx0 = e->w;
    e->dy0 = e->h;
    e->dx1 = e->dy1 = 0;
    return any;
}

void le_set_base(LabelEdit *e, const int32_t *base)
{
    size_t n = (size_t)e->w * e->h;
    memcpy(e->base, base, n * sizeof *base);
    for (size_t i = 0; i < n; i++)
        e->out[i] = e->corr[i] != LE_NONE ? e->corr[i] : base[i];
}

/* Push a finished step: the redo steps are forgotten, then the oldest undo
 * steps while over the limit (never the newest). */
static bool push_step(LabelEdit *e, Step s)
{
    stack_clear(e, &e->redo);
    if (!stack_push(&e->undo, s)) {
        step_free(&s);
        return false;
    }
    e->bytes += step_bytes(&s);
    size_t drop = 0;
    while (e->bytes > e->limit && e->undo.n - drop > 1) {
        e->bytes -= step_bytes(&e->undo.v[drop]);
        step_free(&e->undo.v[drop]);
        drop++;
    }
    if (drop) {
        memmove(e->undo.v, e->undo.v + drop, (e->undo.n - drop) * sizeof *e->undo.v);
        e->undo.n -= drop;
    }
    return true;
}

/* ---------------------------------------------------------------- strokes */

void le_stroke_begin(LabelEdit *e)
{
    if (e->in_stroke)
        return;
    e->in_stroke = true;
    e->stroke_failed = false;
    e->sx0 = e->sy0 = e->sx1 = e->sy1 = 0;
    free(e->sbefore);
    e->sbefore = NULL;
}

/* Make the stroke's rectangle cover [x0,x1) x [y0,y1) (clamped to the map),
 * saving the layer's values of the newly covered pixels (not yet touched by
 * the stroke, so still as before it). Grows by at least the current size on
 * each side so a long stroke copies O(log) times. */
static bool stroke_cover(LabelEdit *e, int x0, int y0, int x1, int y1)
{
    if (x0 >= e->sx0 && y0 >= e->sy0 && x1 <= e->sx1 && y1 <= e->sy1 && e->sbefore)
        return true;
    int nx0 = x0, ny0 = y0, nx1 = x1, ny1 = y1;
    if (e->sbefore) {
        int cw = e->sx1 - e->sx0, ch = e->sy1 - e->sy0;
        nx0 = x0 < e->sx0 ? (x0 < e->sx0 - cw ? x0 : e->sx0 - cw) : e->sx0;
        ny0 = y0 < e->sy0 ? (y0 < e->sy0 - ch ? y0 : e->sy0 - ch) : e->sy0;
        nx1 = x1 > e->sx1 ? (x1 > e->sx1 + cw ? x1 : e->sx1 + cw) : e->sx1;
        ny1 = y1 > e->sy1 ? (y1 > e->sy1 + ch ? y1 : e->sy1 + ch) : e->sy1;
    }
    nx0 = nx0 < 0 ? 0 : nx0;
    ny0 = ny0 < 0 ? 0 : ny0;
    nx1 = nx1 > e->w ? e->w : nx1;
    ny1 = ny1 > e->h ? e->h : ny1;
    int nw = nx1 - nx0, nh = ny1 - ny0;
    int32_t *nb = malloc((size_t)nw * nh * sizeof *nb);
    if (!nb) {
        e->stroke_failed = true;
        return false;
    }
    for (int y = ny0; y < ny1; y++) {
        int32_t *row = nb + (size_t)(y - ny0) * nw;
        memcpy(row, e->corr + (size_t)y * e->w + nx0, (size_t)nw * sizeof *row);
        if (e->sbefore && y >= e->sy0 && y < e->sy1) /* touched: the saved values */
            memcpy(row + (e->sx0 - nx0), e->sbefore + (size_t)(y - e->sy0) * (e->sx1 - e->sx0),
                   (size_t)(e->sx1 - e->sx0) * sizeof *row);
    }
    free(e->sbefore);
    e->sbefore = nb;
    e->sx0 = nx0;
    e->sy0 = ny0;
    e->sx1 = nx1;
    e->sy1 = ny1;
    return true;
}

size_t le_dab(LabelEdit *e, double cx, double cy, double radius, int32_t label)
{
    if (!(radius >= 0) || !isfinite(cx) || !isfinite(cy))
        return 0;
    int fx = (int)floor(cx), fy = (int)floor(cy);
    double lx = floor(cx - radius - 0.5), hx = ceil(cx + radius), ly = floor(cy - radius - 0.5),
           hy = ceil(cy + radius);
    int x0 = lx < 0 ? 0 : lx > e->w ? e->w : (int)lx;
    int y0 = ly < 0 ? 0 : ly > e->h ? e->h : (int)ly;
    int x1 = hx + 1 > e->w ? e->w : hx + 1 < 0 ? 0 : (int)hx + 1;
    int y1 = hy + 1 > e->h ? e->h : hy + 1 < 0 ? 0 : (int)hy + 1;
    if (x0 >= x1 || y0 >= y1)
        return 0;
    bool own = !e->in_stroke;
    if (own)
        le_stroke_begin(e);
    size_t changed = 0;
    if (stroke_cover(e, x0, y0, x1, y1)) {
        double r2 = radius * radius;
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++) {
                double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
                if (dx * dx + dy * dy > r2 && !(x == fx && y == fy))
                    continue;
                size_t i = (size_t)y * e->w + x;
                if (e->corr[i] != label) {
                    set_corr(e, i, label);
                    changed++;
                }
            }
    }
    if (own)
        le_stroke_end(e);
    return changed;
}

size_t le_segment(LabelEdit *e, double x0, double y0, double x1, double y1, double radius,
                  int32_t label)
{
    bool own = !e->in_stroke;
    if (own)
        le_stroke_begin(e);
    double len = hypot(x1 - x0, y1 - y0), gap = radius / 2 > 0.5 ? radius / 2 : 0.5;
    int n = isfinite(len) ? (int)ceil(len / gap) : 0;
    size_t changed = 0;
    for (int i = 0; i <= n; i++) {
        double t = n ? (double)i / n : 0;
        changed += le_dab(e, x0 + t * (x1 - x0), y0 + t * (y1 - y0), radius, label);
    }
    if (own)
        le_stroke_end(e);
    return changed;
}

bool le_stroke_end(LabelEdit *e)
{
    if (!e->in_stroke)
        return false;
    e->in_stroke = false;
    bool made = false;
    if (e->sbefore && !e->stroke_failed) {
        /* the smallest rectangle of the pixels the stroke changed */
        int cw = e->sx1 - e->sx0;
        int bx0 = e->sx1, by0 = e->sy1, bx1 = e->sx0, by1 = e->sy0;
        for (int y = e->sy0; y < e->sy1; y++)
            for (int x = e->sx0; x < e->sx1; x++)
                if (e->sbefore[(size_t)(y - e->sy0) * cw + (x - e->sx0)] !=
                    e->corr[(size_t)y * e->w + x]) {
                    bx0 = x < bx0 ? x : bx0;
                    bx1 = x + 1 > bx1 ? x + 1 : bx1;
                    by0 = y < by0 ? y : by0;
                    by1 = y + 1;
                }
        if (bx0 < bx1) {
            Step s = { bx0, by0, bx1 - bx0, by1 - by0, NULL, NULL };
            size_t area = (size_t)s.w * s.h;
            s.before = malloc(area * sizeof *s.before);
            s.after = malloc(area * sizeof *s.after);
            if (s.before && s.after) {
                for (int y = 0; y < s.h; y++) {
                    memcpy(s.before + (size_t)y * s.w,
                           e->sbefore + (size_t)(by0 + y - e->sy0) * cw + (bx0 - e->sx0),
                           (size_t)s.w * sizeof *s.before);
                    memcpy(s.after + (size_t)y * s.w, e->corr + (size_t)(by0 + y) * e->w + bx0,
                           (size_t)s.w * sizeof *s.after);
                }
                made = push_step(e, s);
            } else {
                step_free(&s);
            }
        }
    }
    free(e->sbefore);
    e->sbefore = NULL;
    return made;
}

/* ---------------------------------------------------------------- region */

size_t le_fill(LabelEdit *e, int x, int y, int32_t label)
{
    if (x < 0 || y < 0 || x >= e->w || y >= e->h)
        return 0;
    size_t n = (size_t)e->w * e->h, seed = (size_t)y * e->w + x;
    int32_t from = e->out[seed];
    if (from == label)
        return 0;
    uint8_t *seen = calloc(n, 1);
    size_t *stack = malloc(n * sizeof *stack);
    size_t *region = malloc(n * sizeof *region);
    size_t top = 0, count = 0, changed = 0;
    if (!seen || !stack || !region)
        goto done;
    int x0 = x, x1 = x + 1, y0 = y, y1 = y + 1;
    stack[top++] = seed;
    seen[seed] = 1;
    while (top) {
        size_t i = stack[--top];
        region[count++] = i;
        int px = (int)(i % e->w), py = (int)(i / e->w);
        x0 = px < x0 ? px : x0;
        x1 = px + 1 > x1 ? px + 1 : x1;
        y0 = py < y0 ? py : y0;
        y1 = py + 1 > y1 ? py + 1 : y1;
        size_t nb[4];
        int k = 0;
        if (px > 0)
            nb[k++] = i - 1;
        if (px + 1 < e->w)
            nb[k++] = i + 1;
        if (py > 0)
            nb[k++] = i - e->w;
        if (py + 1 < e->h)
            nb[k++] = i + e->w;
        for (int j = 0; j < k; j++)
            if (!seen[nb[j]] && e->out[nb[j]] == from) {
                seen[nb[j]] = 1;
                stack[top++] = nb[j];
            }
    }
    bool own = !e->in_stroke;
    if (own)
        le_stroke_begin(e);
    if (stroke_cover(e, x0, y0, x1, y1))
        for (size_t j = 0; j < count; j++) {
            if (e->corr[region[j]] != label) {
                set_corr(e, region[j], label);
                changed++;
            }
        }
    if (own)
        le_stroke_end(e);
done:
    free(seen);
    free(stack);
    free(region);
    return changed;
}

/* ---------------------------------------------------------------- undo */

/* Write one side of a step into the layer. */
static void apply_step(LabelEdit *e, const Step *s, bool after)
{
    const int32_t *src = after ? s->after : s->before;
    for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++)
            set_corr(e, (size_t)(s->y + y) * e->w + s->x + x,
                     src ? src[(size_t)y * s->w + x] : LE_NONE);
}

bool le_undo(LabelEdit *e)
{
    if (e->in_stroke)
        le_stroke_end(e);
    if (!e->undo.n)
        return false;
    Step s = e->undo.v[e->undo.n - 1];
    if (!stack_push(&e->redo, s))
        return false;
    e->undo.n--;
    apply_step(e, &s, false);
    return true;
}

bool le_redo(LabelEdit *e)
{
    if (e->in_stroke)
        le_stroke_end(e);
    if (!e->redo.n)
        return false;
    Step s = e->redo.v[e->redo.n - 1];
    if (!stack_push(&e->undo, s))
        return false;
    e->redo.n--;
    apply_step(e, &s, true);
    return true;
}

/* Drop every correction as one step whose "before" is the layer mapped
 * through map (labels 0..nmap-1; NULL: as it is). */
static bool drop_all(LabelEdit *e, const int32_t *map, int nmap)
{
    if (e->in_stroke)
        le_stroke_end(e);
    if (!e->ncorr)
        return false;
    size_t n = (size_t)e->w * e->h;
    Step s = { 0, 0, e->w, e->h, malloc(n * sizeof(int32_t)), NULL };
    if (!s.before) {
        step_free(&s);
        /* no memory for the step: drop anyway (the labels must follow the grouping) */
        for (size_t i = 0; i < n; i++)
            set_corr(e, i, LE_NONE);
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t v = e->corr[i];
        s.before[i] = map && v >= 0 && v < nmap ? map[v] : v;
        set_corr(e, i, LE_NONE);
    }
    push_step(e, s);
    return true;
}

bool le_clear(LabelEdit *e)
{
    return drop_all(e, NULL, 0);
}

/* ---------------------------------------------------------------- keep rule */

/* Map every group label (0..nmap-1) stored in the layer and the steps. */
static void remap_all(LabelEdit *e, const int32_t *map, int nmap)
{
    size_t n = (size_t)e->w * e->h;
    for (size_t i = 0; i < n; i++) {
        int32_t v = e->corr[i];
        if (v >= 0 && v < nmap)
            set_corr(e, i, map[v]);
    }
    StepStack *st[2] = { &e->undo, &e->redo };
    for (int k = 0; k < 2; k++)
        for (size_t j = 0; j < st[k]->n; j++) {
            Step *s = &st[k]->v[j];
            size_t area = (size_t)s->w * s->h;
            for (size_t i = 0; i < area; i++) {
                if (s->before[i] >= 0 && s->before[i] < nmap)
                    s->before[i] = map[s->before[i]];
                if (s->after && s->after[i] >= 0 && s->after[i] < nmap)
                    s->after[i] = map[s->after[i]];
            }
        }
}

LeRegroup le_regroup(LabelEdit *e, const int32_t *group, int q)
{
    if (q < 1)
        return LE_KEPT;
    if (e->in_stroke)
        le_stroke_end(e);
    int32_t *ng = malloc((size_t)q * sizeof *ng);
    if (!ng)
        return LE_KEPT;
    memcpy(ng, group, (size_t)q * sizeof *ng);
    if (!e->group) {
        e->group = ng;
        e->q = q;
        return LE_NEW;
    }
    /* old group g -> the new group of its smallest prototype */
    int nold = 0;
    for (int k = 0; k < e->q; k++)
        nold = e->group[k] + 1 > nold ? e->group[k] + 1 : nold;
    int32_t *map = malloc((size_t)(nold > 0 ? nold : 1) * sizeof *map);
    if (!map) {
        free(ng);
        return LE_KEPT;
    }
    for (int g = 0; g < nold; g++)
        map[g] = -1;
    for (int k = 0; k < e->q && k < q; k++)
        if (e->group[k] >= 0 && map[e->group[k]] < 0)
            map[e->group[k]] = group[k];
    bool same = q == e->q;
    for (int k = 0; same && k < q; k++)
        for (int l = 0; same && l < k; l++)
            same = (e->group[k] == e->group[l]) == (group[k] == group[l]);
    for (int g = 0; g < nold; g++)
        if (map[g] < 0) /* a group without prototypes in the new range: no label */
            map[g] = LE_NONE;
    LeRegroup res;
    if (same) {
        bool ident = true;
        for (int g = 0; g < nold; g++)
            ident = ident && map[g] == g;
        if (!ident)
            remap_all(e, map, nold);
        res = LE_KEPT;
    } else {
        remap_all(e, map, nold); /* older steps follow the smallest prototypes too */
        res = drop_all(e, NULL, 0) ? LE_DROPPED : LE_NEW;
    }
    free(map);
    free(e->group);
    e->group = ng;
    e->q = q;
    return res;
}
