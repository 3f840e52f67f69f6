/* window-tiles: the attention and prototype views (see window-private.h):
 * the grids of map tiles (each map at the photo's aspect ratio, its value
 * range and the value under the pointer), the foreground-mask tile, the
 * cumulative attention-mass curve and the colour bars. */
#include "window-private.h"

#include <math.h>
#include <string.h>

#include "detail.h"
#include "vutil.h"

static void update_detail(ViewerWindow *w);

/* ---------------------------------------------------------------- attention mass */

/* The attention view's read-out: how many patches the mass threshold keeps. */
void vw_update_mass(ViewerWindow *w)
{
    gtk_widget_queue_draw(w->mass_curve);
    if (!w->result || !w->mass_cum) {
        gtk_label_set_text(GTK_LABEL(w->mass_label), "");
        return;
    }
    const AsResult *r = &w->result->r;
    const double mass = gtk_adjustment_get_value(w->mass_adj);
    int kept = 0;
    for (int i = 0; i < r->n; i++)
        kept += w->fg[i] != 0;
    const int top = vu_mass_count(w->mass_cum, r->n, mass);
    char *t = g_strdup_printf(
        _("Attention mass kept %.2f: the %d patches with the most CLS attention hold it (%.1f %% "
          "of %d). The foreground mask keeps %d patches (%.1f %%) after smoothing and dropping "
          "regions of 2 patches or fewer."),
        mass, top, 100.0 * top / r->n, r->n, kept, 100.0 * kept / r->n);
    gtk_label_set_text(GTK_LABEL(w->mass_label), t);
    g_free(t);
}

static void mass_curve_draw(GtkDrawingArea *a, cairo_t *cr, int wd, int ht, gpointer data)
{
    ViewerWindow *w = data;
    (void)a;
    if (!w->result || !w->mass_cum)
        return;
    const int n = w->result->r.n;
    const double x0 = 4, y0 = 4, pw = wd - 8, ph = ht - 8;
    GdkRGBA fgc;
    gtk_style_context_get_color(gtk_widget_get_style_context(GTK_WIDGET(a)), &fgc);
    cairo_set_line_width(cr, 1);
    cairo_set_source_rgba(cr, fgc.red, fgc.green, fgc.blue, 0.3);
    cairo_rectangle(cr, x0 + 0.5, y0 + 0.5, pw - 1, ph - 1);
    cairo_stroke(cr);
    const double mass = gtk_adjustment_get_value(w->mass_adj);
    const int top = vu_mass_count(w->mass_cum, n, mass);
    /* kept part shaded */
    cairo_set_source_rgba(cr, 0.2, 0.55, 0.95, 0.18);
    cairo_rectangle(cr, x0, y0, pw * top / n, ph);
    cairo_fill(cr);
    /* the curve */
    cairo_set_source_rgb(cr, 0.2, 0.55, 0.95);
    cairo_set_line_width(cr, 2);
    cairo_move_to(cr, x0, y0 + ph);
    for (int i = 0; i < n; i++)
        cairo_line_to(cr, x0 + pw * (i + 1) / n, y0 + ph * (1 - w->mass_cum[i]));
    cairo_stroke(cr);
    /* the threshold */
    cairo_set_source_rgba(cr, 0.9, 0.3, 0.2, 0.9);
    cairo_set_line_width(cr, 1);
    cairo_move_to(cr, x0, y0 + ph * (1 - mass) + 0.5);
    cairo_line_to(cr, x0 + pw, y0 + ph * (1 - mass) + 0.5);
    cairo_stroke(cr);
    /* the numbers: the mass kept at its line, the patches it takes at theirs */
    char t[64];
    g_snprintf(t, sizeof t, "%.0f %%", 100.0 * mass);
    PangoLayout *lay = gtk_widget_create_pango_layout(GTK_WIDGET(a), t);
    int tw, th;
    pango_layout_get_pixel_size(lay, &tw, &th);
    double ty = y0 + ph * (1 - mass) - th - 1;
    cairo_move_to(cr, x0 + pw - tw - 3, ty < y0 ? y0 + ph * (1 - mass) + 2 : ty);
    pango_cairo_show_layout(cr, lay);
    g_object_unref(lay);
    g_snprintf(t, sizeof t, g_dngettext(NULL, "%d patch", "%d patches", top), top);
    lay = gtk_widget_create_pango_layout(GTK_WIDGET(a), t);
    pango_layout_get_pixel_size(lay, &tw, &th);
    double tx = x0 + pw * top / n + 3;
    cairo_set_source_rgb(cr, 0.2, 0.45, 0.85);
    cairo_move_to(cr, tx + tw > x0 + pw ? x0 + pw - tw - 3 : tx, y0 + ph - th - 2);
    pango_cairo_show_layout(cr, lay);
    g_object_unref(lay);
}

/* ---------------------------------------------------------------- tiles */

cairo_surface_t *vw_heat_surface(const float *v, int gw, int gh, float *lo, float *hi)
{
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, gw, gh);
    float a, b;
    vu_range(v, (size_t)gw * gh, &a, &b);
    cairo_surface_flush(s);
    vu_heatmap_argb(v, gw, gh, a, b, 255, cairo_image_surface_get_data(s),
                    cairo_image_surface_get_stride(s));
    cairo_surface_mark_dirty(s);
    if (lo)
        *lo = a;
    if (hi)
        *hi = b;
    return s;
}

gboolean vw_smooth(ViewerWindow *w)
{
    return gtk_check_button_get_active(GTK_CHECK_BUTTON(w->smooth_check));
}

/* rectangle that fits an aw x ah picture into wd x ht */
static void fit_rect(int aw, int ah, int wd, int ht, double *x, double *y, double *sw, double *sh)
{
    double s = vu_fit_scale(aw, ah, wd, ht);
    *sw = aw * s;
    *sh = ah * s;
    *x = (wd - *sw) / 2;
    *y = (ht - *sh) / 2;
}

/* A map drawn in a wd x ht tile has the photo's aspect ratio (the network's
 * input may be square), or the input's when there is no photo. */
static void map_rect(ViewerWindow *w, int wd, int ht, double *x, double *y, double *sw, double *sh)
{
    if (w->image)
        fit_rect(w->image->img.w, w->image->img.h, wd, ht, x, y, sw, sh);
    else
        fit_rect(w->result->r.in_w, w->result->r.in_h, wd, ht, x, y, sw, sh);
}

static void heat_tile_draw(GtkDrawingArea *a, cairo_t *cr, int wd, int ht, gpointer data)
{
    ViewerWindow *w = data;
    cairo_surface_t *s = g_object_get_data(G_OBJECT(a), "surface");
    if (!s || !w->result)
        return;
    double x, y, sw, sh;
    map_rect(w, wd, ht, &x, &y, &sw, &sh);
    cairo_save(cr);
    cairo_rectangle(cr, x, y, sw, sh);
    cairo_clip(cr);
    cairo_translate(cr, x, y);
    cairo_scale(cr, sw / cairo_image_surface_get_width(s), sh / cairo_image_surface_get_height(s));
    cairo_set_source_surface(cr, s, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr),
                             vw_smooth(w) ? CAIRO_FILTER_BILINEAR : CAIRO_FILTER_NEAREST);
    cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
    cairo_paint(cr);
    cairo_restore(cr);
}

static void fg_tile_draw(GtkDrawingArea *a, cairo_t *cr, int wd, int ht, gpointer data)
{
    ViewerWindow *w = data;
    (void)a;
    if (!w->result || !w->image)
        return;
    const AsResult *r = &w->result->r;
    double x, y, sw, sh;
    map_rect(w, wd, ht, &x, &y, &sw, &sh);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_save(cr);
    {
        /* the smallest pyramid level still at least the tile's size */
        double scale = fmin(sw / w->image->img.w, sh / w->image->img.h);
        cairo_surface_t *ls = w->image->level[vu_pyramid_level(scale, w->image->nlevels)];
        cairo_scale(cr, sw / cairo_image_surface_get_width(ls),
                    sh / cairo_image_surface_get_height(ls));
        cairo_set_source_surface(cr, ls, 0, 0);
        cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_BILINEAR);
        cairo_paint(cr);
    }
    cairo_restore(cr);
    double pw = sw / r->gw, ph = sh / r->gh;
    cairo_set_source_rgba(cr, 0, 0, 0, 0.72);
    for (int i = 0; i < r->gh; i++)
        for (int j = 0; j < r->gw; j++)
            if (!w->fg[i * r->gw + j])
                cairo_rectangle(cr, j * pw, i * ph, pw, ph);
    cairo_fill(cr);
    cairo_restore(cr);
}

/* A map's own colour bar: its range in numbers (the tile's width). */
static void tile_bar_draw(GtkDrawingArea *a, cairo_t *cr, int wd, int ht, gpointer data)
{
    (void)ht;
    (void)data;
    const float *range = g_object_get_data(G_OBJECT(a), "range");
    if (range)
        detail_colourbar_draw(GTK_WIDGET(a), cr, 2, 2, wd - 4, 8, range[0], range[1], NULL);
}

static GtkWidget *tile_new(const char *title, GtkWidget *area, int size)
{
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
    GtkWidget *l = gtk_label_new(title);
    gtk_widget_add_css_class(l, "tile-title");
    gtk_label_set_ellipsize(GTK_LABEL(l), PANGO_ELLIPSIZE_END);
    gtk_box_append(GTK_BOX(box), l);
    gtk_drawing_area_set_content_width(GTK_DRAWING_AREA(area), size);
    gtk_drawing_area_set_content_height(GTK_DRAWING_AREA(area), size);
    gtk_box_append(GTK_BOX(box), area);
    const float *range = g_object_get_data(G_OBJECT(area), "range");
    if (range) { /* the colour bar of this map, with numbers */
        GtkWidget *bar = gtk_drawing_area_new();
        gtk_drawing_area_set_content_width(GTK_DRAWING_AREA(bar), size);
        gtk_drawing_area_set_content_height(GTK_DRAWING_AREA(bar), 30);
        g_object_set_data_full(G_OBJECT(bar), "range", g_memdup2(range, 2 * sizeof *range),
                               g_free);
        gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(bar), tile_bar_draw, NULL, NULL);
        gtk_box_append(GTK_BOX(box), bar);
        gtk_widget_set_tooltip_text(area, _("Click to see this map over the photo, larger"));
    }
    g_object_set_data_full(G_OBJECT(area), "title", g_strdup(title), g_free);
    return box;
}

/* Hovering a map tile: the value under the pointer in the status bar. */
static void heat_motion(GtkEventControllerMotion *m, double x, double y, gpointer data)
{
    ViewerWindow *w = data;
    GtkWidget *a = gtk_event_controller_get_widget(GTK_EVENT_CONTROLLER(m));
    const float *v = g_object_get_data(G_OBJECT(a), "values");
    if (!v || !w->result)
        return;
    const AsResult *r = &w->result->r;
    double rx, ry, sw, sh;
    map_rect(w, gtk_widget_get_width(a), gtk_widget_get_height(a), &rx, &ry, &sw, &sh);
    const int px = (int)((x - rx) / sw * r->gw), py = (int)((y - ry) / sh * r->gh);
    if (px < 0 || py < 0 || px >= r->gw || py >= r->gh || sw <= 0 || sh <= 0)
        return;
    char *t = g_strdup_printf(_("%s: patch (%d, %d) = %.4g"),
                              (const char *)g_object_get_data(G_OBJECT(a), "title"), px, py,
                              v[py * r->gw + px]);
    gtk_label_set_text(GTK_LABEL(w->hover_label), t);
    g_free(t);
}

/* A click on a map: the map page shows it. */
static void heat_pressed(GtkGestureClick *g, int n, double x, double y, gpointer data)
{
    (void)n;
    (void)x;
    (void)y;
    /* the tile's own click (isolating a prototype) does not see this one */
    gtk_gesture_set_state(GTK_GESTURE(g), GTK_EVENT_SEQUENCE_CLAIMED);
    GtkWidget *a = gtk_event_controller_get_widget(GTK_EVENT_CONTROLLER(g));
    vw_tiles_show_detail(data, g_object_get_data(G_OBJECT(a), "detail-id"));
}

/* A heat-map tile of v (gw x gh), coloured from lo to hi, or from its own
 * minimum to maximum when lo is NaN; id names it for the map page. */
static GtkWidget *heat_area(ViewerWindow *w, const float *v, int gw, int gh, float lo, float hi,
                            const char *id)
{
    GtkWidget *a = gtk_drawing_area_new();
    float range[2];
    cairo_surface_t *s;
    if (isnan(lo)) {
        s = vw_heat_surface(v, gw, gh, &range[0], &range[1]);
    } else {
        range[0] = lo;
        range[1] = hi;
        s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, gw, gh);
        cairo_surface_flush(s);
        vu_heatmap_argb(v, gw, gh, lo, hi, 255, cairo_image_surface_get_data(s),
                        cairo_image_surface_get_stride(s));
        cairo_surface_mark_dirty(s);
    }
    g_object_set_data_full(G_OBJECT(a), "surface", s, (GDestroyNotify)cairo_surface_destroy);
    g_object_set_data_full(G_OBJECT(a), "range", g_memdup2(range, sizeof range), g_free);
    g_object_set_data_full(G_OBJECT(a), "values", g_memdup2(v, (gsize)gw * gh * sizeof *v),
                           g_free);
    g_object_set_data_full(G_OBJECT(a), "detail-id", g_strdup(id), g_free);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(a), heat_tile_draw, w, NULL);
    GtkEventController *motion = gtk_event_controller_motion_new();
    g_signal_connect(motion, "motion", G_CALLBACK(heat_motion), w);
    gtk_widget_add_controller(a, motion);
    GtkGesture *click = gtk_gesture_click_new();
    g_signal_connect(click, "pressed", G_CALLBACK(heat_pressed), w);
    gtk_widget_add_controller(a, GTK_EVENT_CONTROLLER(click));
    gtk_widget_set_cursor_from_name(a, "zoom-in");
    return a;
}

static void clear_container(GtkWidget *flow)
{
    GtkWidget *c;
    while ((c = gtk_widget_get_first_child(flow)))
        gtk_flow_box_remove(GTK_FLOW_BOX(flow), c);
}

static void proto_clicked(GtkGestureClick *g, int n, double x, double y, gpointer data)
{
    ViewerWindow *w = data;
    (void)n;
    (void)x;
    (void)y;
    GtkWidget *tile = gtk_event_controller_get_widget(GTK_EVENT_CONTROLLER(g));
    if (!w->result)
        return;
    int k = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(tile), "proto"));
    w->isolate = (w->isolate == k) ? -1 : k;
    vw_schedule_relabel(w);
    if (w->isolate >= 0)
        gtk_stack_set_visible_child_name(GTK_STACK(w->views), "segmentation");
}

/* ---------------------------------------------------------------- maps by name */

/* The maps have names, for the map page and the tiles.detail action:
 * "attention:mean", "attention:H" (head H from 1, as shown), "similarity:K"
 * and "cross-attention:K" (prototype K from 0, as shown; the head chosen in
 * the side panel). Their values into out (n); title and caption newly
 * allocated (may be NULL). FALSE when the result has no such map. */
static gboolean map_values(ViewerWindow *w, const char *id, float *out, char **title,
                           char **caption)
{
    if (!w->result || !id)
        return FALSE;
    const AsResult *r = &w->result->r;
    const char *colon = strchr(id, ':');
    if (!colon)
        return FALSE;
    const char *arg = colon + 1;
    char *end = NULL;
    long idx = strtol(arg, &end, 10);
    gboolean numeric = end && end != arg && *end == 0;
    size_t kl = (size_t)(colon - id);
    char *t = NULL, *c = NULL;
    if (kl == 9 && !strncmp(id, "attention", kl)) {
        if (!strcmp(arg, "mean")) {
            memcpy(out, r->cls_attn_mean, (size_t)r->n * sizeof *out);
            t = g_strdup(_("CLS attention, mean of heads"));
        } else if (numeric && idx >= 1 && idx <= r->heads) {
            memcpy(out, r->cls_attn + (size_t)(idx - 1) * r->n, (size_t)r->n * sizeof *out);
            t = g_strdup_printf(_("CLS attention, head %ld"), idx);
        } else {
            return FALSE;
        }
        c = g_strdup(_("share of the CLS token's attention on each patch"));
    } else if (kl == 10 && !strncmp(id, "similarity", kl) && numeric && idx >= 0 && idx < r->q) {
        for (int i = 0; i < r->n; i++)
            out[i] = r->similarity[(size_t)i * r->q + idx];
        t = g_strdup_printf(_("Prototype %ld, similarity"), idx);
        c = g_strdup(_("cosine similarity of each patch to the adapted prototype"));
    } else if (kl == 15 && !strncmp(id, "cross-attention", kl) && numeric && idx >= 0 &&
               idx < r->q && r->cross_attn) {
        int head = (int)gtk_drop_down_get_selected(GTK_DROP_DOWN(w->head_dropdown)) - 1;
        vu_cross_attn_map(r->cross_attn, r->dec_heads, r->q, r->n, (int)idx, head, out);
        t = head < 0 ? g_strdup_printf(_("Prototype %ld, cross-attention (mean of heads)"), idx)
                     : g_strdup_printf(_("Prototype %ld, cross-attention (head %d)"), idx,
                                       head + 1);
        c = g_strdup(_("decoder cross-attention of the prototype to each patch"));
    } else {
        return FALSE;
    }
    if (title)
        *title = t;
    else
        g_free(t);
    if (caption)
        *caption = c;
    else
        g_free(c);
    return TRUE;
}

/* The range of every map of a kind ("attention", "similarity",
 * "cross-attention"): the shared colour scale. */
static void kind_range(ViewerWindow *w, const char *kind, float *lo, float *hi)
{
    const AsResult *r = &w->result->r;
    float *v = g_new(float, r->n);
    *lo = INFINITY;
    *hi = -INFINITY;
    int count = strcmp(kind, "attention") ? r->q : r->heads + 1;
    for (int i = 0; i < count; i++) {
        char id[64];
        if (!strcmp(kind, "attention") && i == r->heads)
            g_snprintf(id, sizeof id, "attention:mean");
        else
            g_snprintf(id, sizeof id, "%s:%d", kind, strcmp(kind, "attention") ? i : i + 1);
        if (!map_values(w, id, v, NULL, NULL))
            continue;
        float a, b;
        vu_range(v, (size_t)r->n, &a, &b);
        *lo = a < *lo ? a : *lo;
        *hi = b > *hi ? b : *hi;
    }
    if (!(*hi > *lo)) {
        *lo = 0;
        *hi = 1;
    }
    g_free(v);
}

/* The colour range of a kind's tiles: shared, or NaN (each its own). */
static void tiles_range(ViewerWindow *w, const char *kind, float *lo, float *hi)
{
    if (w->tiles_shared) {
        kind_range(w, kind, lo, hi);
    } else {
        *lo = NAN;
        *hi = NAN;
    }
}

static GtkWidget *map_tile(ViewerWindow *w, const char *id, const char *label, float lo, float hi,
                           int size, float *buf)
{
    if (!map_values(w, id, buf, NULL, NULL))
        return NULL;
    const AsResult *r = &w->result->r;
    return tile_new(label, heat_area(w, buf, r->gw, r->gh, lo, hi, id), size);
}

void vw_tiles_rebuild_protos(ViewerWindow *w)
{
    clear_container(w->proto_grid);
    if (!w->result)
        return;
    const AsResult *r = &w->result->r;
    float *buf = g_new(float, r->n);
    float slo, shi, clo, chi;
    tiles_range(w, "similarity", &slo, &shi);
    tiles_range(w, "cross-attention", &clo, &chi);
    for (int k = 0; k < r->q; k++) {
        GtkWidget *tile = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
        gtk_widget_set_tooltip_text(tile, _("Click the title to isolate this prototype in the "
                                            "segmentation, a map to see it larger"));
        GtkWidget *hdr = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
        gtk_widget_set_halign(hdr, GTK_ALIGN_CENTER);
        GtkWidget *sw = vw_swatch_new(w->group ? w->group[k] : k, 14);
        gtk_box_append(GTK_BOX(hdr), sw);
        char *t = g_strdup_printf(_("Prototype %d"), k); /* from 0, as the files */
        GtkWidget *l = gtk_label_new(t);
        g_free(t);
        gtk_widget_add_css_class(l, "tile-title");
        gtk_box_append(GTK_BOX(hdr), l);
        gtk_box_append(GTK_BOX(tile), hdr);
        GtkWidget *maps = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
        char id[64];
        g_snprintf(id, sizeof id, "similarity:%d", k);
        GtkWidget *m = map_tile(w, id, _("similarity"), slo, shi, 120, buf);
        if (m)
            gtk_box_append(GTK_BOX(maps), m);
        g_snprintf(id, sizeof id, "cross-attention:%d", k);
        m = map_tile(w, id, _("cross-attention"), clo, chi, 120, buf);
        if (m)
            gtk_box_append(GTK_BOX(maps), m);
        gtk_box_append(GTK_BOX(tile), maps);
        g_object_set_data(G_OBJECT(tile), "proto", GINT_TO_POINTER(k));
        g_object_set_data(G_OBJECT(tile), "swatch", sw);
        GtkGesture *click = gtk_gesture_click_new();
        g_signal_connect(click, "released", G_CALLBACK(proto_clicked), w);
        gtk_widget_add_controller(tile, GTK_EVENT_CONTROLLER(click));
        gtk_flow_box_append(GTK_FLOW_BOX(w->proto_grid), tile);
    }
    g_free(buf);
    if (w->tiles_shared)
        vw_scale_set(w->proto_scale, slo, shi,
                     _("cosine similarity, the same scale for every prototype (cross-attention: "
                       "the numbers under each map)"));
    else
        vw_scale_set(w->proto_scale, NAN, NAN,
                     _("similarity and decoder cross-attention: each map from its own minimum to "
                       "maximum, numbered under it; click a map to see it over the photo"));
    update_detail(w);
}

void vw_rebuild_tiles(ViewerWindow *w)
{
    w->fg_area = NULL;
    clear_container(w->attn_grid);
    vw_tiles_rebuild_protos(w);
    if (!w->result)
        return;
    const AsResult *r = &w->result->r;
    float *buf = g_new(float, r->n);
    float lo, hi;
    tiles_range(w, "attention", &lo, &hi);
    GtkWidget *m = map_tile(w, "attention:mean", _("Mean of heads"), lo, hi, 200, buf);
    if (m)
        gtk_flow_box_append(GTK_FLOW_BOX(w->attn_grid), m);
    for (int h = 0; h < r->heads; h++) {
        char *t = g_strdup_printf(_("Head %d"), h + 1);
        char id[64];
        g_snprintf(id, sizeof id, "attention:%d", h + 1);
        m = map_tile(w, id, t, lo, hi, 200, buf);
        if (m)
            gtk_flow_box_append(GTK_FLOW_BOX(w->attn_grid), m);
        g_free(t);
    }
    g_free(buf);
    GtkWidget *fa = gtk_drawing_area_new();
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(fa), fg_tile_draw, w, NULL);
    gtk_flow_box_append(GTK_FLOW_BOX(w->attn_grid), tile_new(_("Foreground mask"), fa, 200));
    w->fg_area = fa;
    if (w->tiles_shared)
        vw_scale_set(w->attn_scale, lo, hi,
                     _("CLS attention, the same scale for every map (hover a map for values, "
                       "click it to see it over the photo)"));
    else
        vw_scale_set(w->attn_scale, NAN, NAN,
                     _("CLS attention: each map from its own minimum to maximum, numbered under "
                       "it (hover a map for values, click it to see it over the photo)"));
}

/* ---------------------------------------------------------------- colour scale */

static void scale_draw(GtkDrawingArea *a, cairo_t *cr, int wd, int ht, gpointer data)
{
    (void)data;
    (void)ht;
    const float *range = g_object_get_data(G_OBJECT(a), "range");
    const char *cap = g_object_get_data(G_OBJECT(a), "caption");
    if (range && !isnan(range[0])) {
        detail_colourbar_draw(GTK_WIDGET(a), cr, 4, 4, wd - 8, 14, range[0], range[1], cap);
        return;
    }
    /* no common numbers: the ramp and what it means */
    const int x0 = 4, x1 = wd - 4, bar_h = 14;
    if (x1 <= x0 + 1)
        return;
    for (int x = x0; x < x1; x++) {
        uint8_t c[3];
        vu_viridis((double)(x - x0) / (x1 - x0 - 1), c);
        cairo_set_source_rgb(cr, c[0] / 255.0, c[1] / 255.0, c[2] / 255.0);
        cairo_rectangle(cr, x, 4, 1, bar_h);
        cairo_fill(cr);
    }
    if (!cap)
        return;
    GdkRGBA fgc;
    gtk_style_context_get_color(gtk_widget_get_style_context(GTK_WIDGET(a)), &fgc);
    gdk_cairo_set_source_rgba(cr, &fgc);
    PangoLayout *lay = gtk_widget_create_pango_layout(GTK_WIDGET(a), cap);
    pango_layout_set_width(lay, (x1 - x0) * PANGO_SCALE);
    pango_layout_set_ellipsize(lay, PANGO_ELLIPSIZE_END);
    pango_layout_set_alignment(lay, PANGO_ALIGN_CENTER);
    cairo_move_to(cr, x0, 4 + bar_h + 2);
    pango_cairo_show_layout(cr, lay);
    g_object_unref(lay);
}

void vw_scale_set(GtkWidget *a, double lo, double hi, const char *caption)
{
    float range[2] = { (float)lo, (float)hi };
    g_object_set_data_full(G_OBJECT(a), "range", g_memdup2(range, sizeof range), g_free);
    g_object_set_data_full(G_OBJECT(a), "caption", g_strdup(caption), g_free);
    gtk_widget_queue_draw(a);
}

/* ---------------------------------------------------------------- the map page */

/* The map page and its button in the view switcher. */
static void map_page_visible(ViewerWindow *w, gboolean on)
{
    GtkWidget *page = detail_widget(w->detail);
    gtk_widget_set_visible(page, on);
    gtk_stack_page_set_visible(gtk_stack_get_page(GTK_STACK(w->views), page), on);
}

/* The map page shows the map named w->detail_id, or hides when it is gone. */
static void update_detail(ViewerWindow *w)
{
    if (!w->detail || !w->detail_id)
        return;
    if (!w->result) {
        map_page_visible(w, FALSE);
        return;
    }
    const AsResult *r = &w->result->r;
    float *v = g_new(float, r->n);
    char *title = NULL, *caption = NULL;
    if (map_values(w, w->detail_id, v, &title, &caption)) {
        float lo, hi;
        const char *kind = g_str_has_prefix(w->detail_id, "attention") ? "attention"
                           : g_str_has_prefix(w->detail_id, "similarity") ? "similarity"
                                                                          : "cross-attention";
        if (w->tiles_shared)
            kind_range(w, kind, &lo, &hi);
        else
            vu_range(v, (size_t)r->n, &lo, &hi);
        char *cap = w->tiles_shared
                        ? g_strdup_printf(_("%s (the scale shared by all tiles)"), caption)
                        : g_strdup_printf(_("%s (this map from its minimum to its maximum)"),
                                          caption);
        detail_set(w->detail, title, w->image, v, r->gw, r->gh, lo, hi, cap, vw_smooth(w));
        g_free(cap);
    } else {
        map_page_visible(w, FALSE);
    }
    g_free(title);
    g_free(caption);
    g_free(v);
}

void vw_tiles_show_detail(ViewerWindow *w, const char *id)
{
    if (!w->detail || !id)
        return;
    g_free(w->detail_id);
    w->detail_id = g_strdup(id);
    const char *from = gtk_stack_get_visible_child_name(GTK_STACK(w->views));
    if (from && strcmp(from, "map")) {
        g_free(w->detail_from);
        w->detail_from = g_strdup(from);
    }
    update_detail(w);
    if (!w->result)
        return;
    map_page_visible(w, TRUE);
    gtk_stack_set_visible_child_name(GTK_STACK(w->views), "map");
}

static void detail_back(ViewerWindow *w)
{
    gtk_stack_set_visible_child_name(GTK_STACK(w->views),
                                     w->detail_from ? w->detail_from : "attention");
    map_page_visible(w, FALSE);
}

static void act_detail(GtkWidget *widget, const char *name, GVariant *p)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    (void)name;
    const char *id = g_variant_get_string(p, NULL);
    if (!w->result)
        return;
    float *v = g_new(float, w->result->r.n);
    gboolean ok = map_values(w, id, v, NULL, NULL);
    g_free(v);
    if (!ok) {
        g_printerr("alignseg-viewer: tiles.detail: no map '%s' (attention:mean, attention:H, "
                   "similarity:K, cross-attention:K)\n", id);
        vw_set_exit(w, 2);
        return;
    }
    vw_tiles_show_detail(w, id);
}

static void shared_toggled(GtkCheckButton *b, gpointer data)
{
    ViewerWindow *w = data;
    gboolean on = gtk_check_button_get_active(b);
    if (on == w->tiles_shared)
        return;
    gtk_widget_activate_action(GTK_WIDGET(w), "tiles.shared-scale", "b", on);
}

static void act_shared(GtkWidget *widget, const char *name, GVariant *p)
{
    ViewerWindow *w = VIEWER_WINDOW(widget);
    (void)name;
    w->tiles_shared = g_variant_get_boolean(p);
    for (int i = 0; i < 2; i++)
        if (w->shared_check[i])
            gtk_check_button_set_active(GTK_CHECK_BUTTON(w->shared_check[i]), w->tiles_shared);
    vw_rebuild_tiles(w);
}

void vw_tiles_free(ViewerWindow *w)
{
    g_free(w->detail_id);
    g_free(w->detail_from);
    w->detail_id = w->detail_from = NULL;
}

void vw_tiles_class_init(GtkWidgetClass *wc)
{
    gtk_widget_class_install_action(wc, "tiles.detail", "s", act_detail);
    gtk_widget_class_install_action(wc, "tiles.shared-scale", "b", act_shared);
}

/* The prototype tiles' swatches follow the current grouping. */
void vw_tiles_follow_groups(ViewerWindow *w)
{
    vw_update_mass(w);
    GtkWidget *pg = w->proto_grid;
    for (GtkWidget *c = gtk_widget_get_first_child(pg); c; c = gtk_widget_get_next_sibling(c)) {
        GtkWidget *tile = gtk_flow_box_child_get_child(GTK_FLOW_BOX_CHILD(c));
        GtkWidget *sw = tile ? g_object_get_data(G_OBJECT(tile), "swatch") : NULL;
        int pk = tile ? GPOINTER_TO_INT(g_object_get_data(G_OBJECT(tile), "proto")) : 0;
        if (sw) {
            g_object_set_data(G_OBJECT(sw), "group", GINT_TO_POINTER(w->group[pk]));
            gtk_widget_queue_draw(sw);
        }
    }
}

/* Redraw every drawing area under widget (tiles are boxes of labels and areas). */
static void queue_draw_tree(GtkWidget *widget)
{
    gtk_widget_queue_draw(widget);
    for (GtkWidget *c = gtk_widget_get_first_child(widget); c; c = gtk_widget_get_next_sibling(c))
        queue_draw_tree(c);
}

/* The smoothing choice changed: maps drawn again. */
void vw_tiles_redraw(ViewerWindow *w)
{
    queue_draw_tree(w->attn_grid);
    vw_tiles_rebuild_protos(w);
}

void vw_tiles_init(ViewerWindow *w)
{
    /* room for the bar, its numbers and the caption */
    gtk_drawing_area_set_content_height(GTK_DRAWING_AREA(w->attn_scale), 58);
    gtk_drawing_area_set_content_height(GTK_DRAWING_AREA(w->proto_scale), 58);
    gtk_drawing_area_set_content_height(GTK_DRAWING_AREA(w->sim_scale), 58);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(w->attn_scale), scale_draw, NULL, NULL);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(w->proto_scale), scale_draw, NULL, NULL);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(w->sim_scale), scale_draw, NULL, NULL);
    /* the same colour scale for every tile: a check under each grid */
    GtkWidget *scales[2] = { w->attn_scale, w->proto_scale };
    for (int i = 0; i < 2; i++) {
        GtkWidget *c = gtk_check_button_new_with_mnemonic(_("_Same colour scale for all maps"));
        gtk_widget_set_tooltip_text(c, _("Colour every map of this view from the smallest to the "
                                         "largest value of all of them, so that they compare"));
        gtk_widget_set_margin_start(c, 12);
        gtk_widget_set_margin_bottom(c, 4);
        g_signal_connect(c, "toggled", G_CALLBACK(shared_toggled), w);
        gtk_box_append(GTK_BOX(gtk_widget_get_parent(scales[i])), c);
        w->shared_check[i] = c;
    }
    /* the map page: one map over the photo, shown when a tile is clicked */
    w->detail = detail_new(G_CALLBACK(detail_back), w);
    GtkWidget *page = detail_widget(w->detail);
    gtk_stack_add_titled(GTK_STACK(w->views), page, "map", _("Map"));
    map_page_visible(w, FALSE);
    vw_rebuild_tiles(w);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(w->mass_curve), mass_curve_draw, w, NULL);
}
