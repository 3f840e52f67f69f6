/* window-views: the viewer's four views (see window-private.h): relabelling
 * from the cached result as sliders move, the legend, the attention and
 * prototype tiles, colour scales, patch similarity and the hover read-outs. */
#include "window-private.h"

#include <math.h>
#include <string.h>

#include "vutil.h"

static void update_mass(ViewerWindow *w);

/* ---------------------------------------------------------------- relabel */

static void group_colour(int g, double rgb[3])
{
    uint8_t c[3];
    as_label_colour(g, c);
    for (int i = 0; i < 3; i++)
        rgb[i] = c[i] / 255.0;
}

static void legend_toggled(GtkCheckButton *b, gpointer data);

static void swatch_draw(GtkDrawingArea *a, cairo_t *cr, int wd, int ht, gpointer data)
{
    (void)data;
    int g = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(a), "group"));
    double c[3];
    group_colour(g, c);
    cairo_set_source_rgb(cr, c[0], c[1], c[2]);
    cairo_rectangle(cr, 1, 1, wd - 2, ht - 2);
    cairo_fill_preserve(cr);
    cairo_set_source_rgba(cr, 0, 0, 0, 0.4);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
}

static GtkWidget *swatch_new(int g, int size)
{
    GtkWidget *a = gtk_drawing_area_new();
    gtk_drawing_area_set_content_width(GTK_DRAWING_AREA(a), size);
    gtk_drawing_area_set_content_height(GTK_DRAWING_AREA(a), size);
    gtk_widget_set_valign(a, GTK_ALIGN_CENTER);
    g_object_set_data(G_OBJECT(a), "group", GINT_TO_POINTER(g));
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(a), swatch_draw, NULL, NULL);
    return a;
}

static char *group_name(ViewerWindow *w, int g)
{
    const AsResult *r = &w->result->r;
    GString *s = g_string_new(NULL);
    int members = 0;
    for (int k = 0; k < r->q; k++)
        if (w->group[k] == g) {
            g_string_append_printf(s, members ? "+%d" : "%d", k); /* from 0, as the files */
            members++;
        }
    char *t = members > 1 ? g_strdup_printf(_("Prototypes %s"), s->str)
                          : g_strdup_printf(_("Prototype %s"), s->str);
    g_string_free(s, TRUE);
    const char *cls = vw_group_class(w, g); /* the class named in the legend */
    if (cls) {
        char *n = g_strdup_printf("%s (%s)", cls, t);
        g_free(t);
        t = n;
    }
    return t;
}

/* The legend's name of group g: its class in an export (window-export.c:
 * the name given with the pencil, else prototype_<g>, g from 0 as in the
 * files; hidden and empty groups are not exported) and the prototypes it
 * merges. */
static char *legend_name(ViewerWindow *w, int g)
{
    const AsResult *r = &w->result->r;
    GString *m = g_string_new(NULL); /* the merged prototypes, e.g. "0+2" */
    for (int k = 0; k < r->q; k++)
        if (w->group[k] == g)
            g_string_append_printf(m, m->len ? "+%d" : "%d", k);
    char *t = vw_group_label(w, g, m->str);
    g_string_free(m, TRUE);
    return t;
}

bool vw_group_visible(ViewerWindow *w, int g)
{
    const AsResult *r = &w->result->r;
    if (w->isolate >= 0 && w->isolate < r->q)
        return w->group[w->isolate] == g;
    for (int k = 0; k < r->q; k++)
        if (w->group[k] == g)
            return w->visible[k];
    return true;
}

static void rebuild_legend(ViewerWindow *w)
{
    GtkWidget *child;
    int q = w->result ? w->result->r.q : 0;
    /* same grouping as last time: only update shares and toggles (cheap, no relayout) */
    if (w->result && w->legend_sig && w->legend_groups == w->ngroups &&
        !memcmp(w->legend_sig, w->group, (size_t)q * sizeof *w->group)) {
        w->legend_building = TRUE;
        for (int g = 0; g < w->ngroups; g++) {
            char *name = legend_name(w, g);
            gtk_label_set_text(GTK_LABEL(w->legend_name[g]), name);
            g_free(name);
            char pc[32];
            g_snprintf(pc, sizeof pc, "%.1f %%", 100.0 * w->share[g]);
            gtk_label_set_text(GTK_LABEL(w->legend_share[g]), pc);
            gtk_check_button_set_active(GTK_CHECK_BUTTON(w->legend_check[g]), vw_group_visible(w, g));
        }
        w->legend_building = FALSE;
        return;
    }
    w->legend_building = TRUE;
    while ((child = gtk_widget_get_first_child(w->legend)))
        gtk_list_box_remove(GTK_LIST_BOX(w->legend), child);
    g_free(w->legend_sig);
    w->legend_sig = NULL;
    w->legend_groups = -1;
    if (!w->result) {
        w->legend_building = FALSE;
        return;
    }
    for (int g = 0; g < w->ngroups && g < AS_MAX_GROUPS; g++) {
        GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
        gtk_widget_set_margin_start(row, 6);
        gtk_widget_set_margin_end(row, 6);
        gtk_widget_set_margin_top(row, 4);
        gtk_widget_set_margin_bottom(row, 4);
        gtk_box_append(GTK_BOX(row), swatch_new(g, 18));
        char *name = legend_name(w, g);
        GtkWidget *l = gtk_label_new(name);
        g_free(name);
        w->legend_name[g] = l;
        gtk_label_set_xalign(GTK_LABEL(l), 0);
        gtk_widget_set_hexpand(l, TRUE);
        gtk_label_set_ellipsize(GTK_LABEL(l), PANGO_ELLIPSIZE_END);
        gtk_box_append(GTK_BOX(row), l);
        char *pc = g_strdup_printf("%.1f %%", 100.0 * w->share[g]);
        GtkWidget *sl = gtk_label_new(pc);
        g_free(pc);
        gtk_label_set_width_chars(GTK_LABEL(sl), 7);
        gtk_label_set_xalign(GTK_LABEL(sl), 1);
        gtk_widget_add_css_class(sl, "legend-share");
        gtk_widget_add_css_class(sl, "dim-label");
        gtk_box_append(GTK_BOX(row), sl);
        gtk_box_append(GTK_BOX(row), vw_class_button_new(w, g));
        GtkWidget *cb = gtk_check_button_new();
        gtk_widget_set_tooltip_text(cb, _("Show this prototype"));
        gtk_check_button_set_active(GTK_CHECK_BUTTON(cb), vw_group_visible(w, g));
        g_object_set_data(G_OBJECT(cb), "group", GINT_TO_POINTER(g));
        g_signal_connect(cb, "toggled", G_CALLBACK(legend_toggled), w);
        gtk_box_append(GTK_BOX(row), cb);
        gtk_list_box_append(GTK_LIST_BOX(w->legend), row);
        w->legend_share[g] = sl;
        w->legend_check[g] = cb;
    }
    w->legend_sig = g_memdup2(w->group, (gsize)q * sizeof *w->group);
    w->legend_groups = w->ngroups;
    w->legend_building = FALSE;
}

static gboolean relabel_idle_cb(gpointer data)
{
    ViewerWindow *w = data;
    w->relabel_idle = 0;
    vw_relabel(w);
    vw_update_status(w);
    return G_SOURCE_REMOVE;
}

void vw_schedule_relabel(ViewerWindow *w)
{
    if (!w->relabel_idle)
        w->relabel_idle = g_idle_add_full(G_PRIORITY_HIGH_IDLE, relabel_idle_cb, w, NULL);
}

static void legend_toggled(GtkCheckButton *b, gpointer data)
{
    ViewerWindow *w = data;
    if (w->legend_building || !w->result)
        return;
    int g = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(b), "group"));
    gboolean on = gtk_check_button_get_active(b);
    if (w->isolate >= 0) {
        /* leaving isolation: start from "only the isolated group visible" */
        for (int k = 0; k < w->result->r.q; k++)
            w->visible[k] = w->group[k] == w->group[w->isolate];
        w->isolate = -1;
    }
    for (int k = 0; k < w->result->r.q; k++)
        if (w->group[k] == g)
            w->visible[k] = on;
    vw_schedule_relabel(w);
}

static void on_show_all(ViewerWindow *w)
{
    if (!w->result)
        return;
    w->isolate = -1;
    for (int k = 0; k < w->result->r.q; k++)
        w->visible[k] = true;
    vw_schedule_relabel(w);
}

void vw_relabel(ViewerWindow *w)
{
    gint64 t0 = g_get_monotonic_time();
    if (!w->result) {
        w->ngroups = 0;
        rebuild_legend(w);
        return;
    }
    const AsResult *r = &w->result->r;
    AsError err = { 0 };
    AsMergeOptions mo;
    as_merge_options_default(&mo);
    int k = (int)lround(gtk_adjustment_get_value(w->k_adj));
    mo.merge_to = k >= r->q ? 0 : k;
    double thr = gtk_adjustment_get_value(w->merge_adj);
    mo.threshold = thr > 1.0 ? 2.0f : (float)thr;
    if (as_foreground_mask(r->cls_attn_mean, r->gh, r->gw,
                           (float)gtk_adjustment_get_value(w->mass_adj), w->fg) != 0) {
        vw_show_error(w, _("Out of memory while computing the foreground mask."));
        return;
    }
    int ng = 0;
    gboolean fg_only = gtk_check_button_get_active(GTK_CHECK_BUTTON(w->fg_check));
    if (as_merge_groups(r->queries, r->q, r->dim, &mo, w->group, &ng, &err) != 0 ||
        as_relabel(r->assign, r->gh, r->gw, r->q, w->group, ng, fg_only ? w->fg : NULL, r->in_h,
                   r->in_w, NULL, w->labels, &err) != 0) {
        vw_show_error(w, err.msg);
        w->ngroups = 0;
        return;
    }
    w->ngroups = ng;
    uint8_t colours[AS_MAX_GROUPS * 3];
    bool gvis[AS_MAX_GROUPS];
    for (int g = 0; g < ng && g < AS_MAX_GROUPS; g++) {
        as_label_colour(g, colours + 3 * g);
        gvis[g] = vw_group_visible(w, g);
    }
    cairo_surface_flush(w->label_surface);
    vu_colourise(w->labels, r->in_w, r->in_h, ng, colours, gvis, NULL, 0, 0,
                 gtk_check_button_get_active(GTK_CHECK_BUTTON(w->contours_check)), 1.0,
                 cairo_image_surface_get_data(w->label_surface),
                 cairo_image_surface_get_stride(w->label_surface));
    cairo_surface_mark_dirty(w->label_surface);
    vu_label_shares(w->labels, (size_t)r->in_w * r->in_h, NULL, ng, w->share);
    imgview_set_overlay(w->seg_view, w->label_surface, gtk_adjustment_get_value(w->opacity_adj),
                        FALSE);
    w->relabel_us = g_get_monotonic_time() - t0;
    rebuild_legend(w);
    /* the foreground tile follows the mass slider live: queue its own drawing
     * area (GTK 4 keeps a parent's children's render nodes on a parent's
     * queue_draw) */
    if (w->fg_area)
        gtk_widget_queue_draw(w->fg_area);
    update_mass(w);
    /* prototype swatches follow the groups */
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

/* ---------------------------------------------------------------- attention mass */

/* The attention view's read-out: how many patches the mass threshold keeps. */
static void update_mass(ViewerWindow *w)
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
}

/* ---------------------------------------------------------------- tiles */

static cairo_surface_t *heat_surface(const float *v, int gw, int gh, float *lo, float *hi)
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

static gboolean smooth(ViewerWindow *w)
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
                             smooth(w) ? CAIRO_FILTER_BILINEAR : CAIRO_FILTER_NEAREST);
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
    const char *range = g_object_get_data(G_OBJECT(area), "range");
    if (range) { /* the colour bar's ends for this map, in numbers */
        GtkWidget *r = gtk_label_new(range);
        gtk_widget_add_css_class(r, "dim-label");
        gtk_widget_add_css_class(r, "legend-share");
        gtk_box_append(GTK_BOX(box), r);
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

static GtkWidget *heat_area(ViewerWindow *w, const float *v, int gw, int gh)
{
    GtkWidget *a = gtk_drawing_area_new();
    float lo = 0, hi = 0;
    g_object_set_data_full(G_OBJECT(a), "surface", heat_surface(v, gw, gh, &lo, &hi),
                           (GDestroyNotify)cairo_surface_destroy);
    g_object_set_data_full(G_OBJECT(a), "range", g_strdup_printf("%.3g – %.3g", lo, hi), g_free);
    g_object_set_data_full(G_OBJECT(a), "values", g_memdup2(v, (gsize)gw * gh * sizeof *v),
                           g_free);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(a), heat_tile_draw, w, NULL);
    GtkEventController *motion = gtk_event_controller_motion_new();
    g_signal_connect(motion, "motion", G_CALLBACK(heat_motion), w);
    gtk_widget_add_controller(a, motion);
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

static void build_proto_grid(ViewerWindow *w)
{
    clear_container(w->proto_grid);
    if (!w->result)
        return;
    const AsResult *r = &w->result->r;
    int head = (int)gtk_drop_down_get_selected(GTK_DROP_DOWN(w->head_dropdown)) - 1;
    float *col = g_new(float, r->n), *ca = g_new(float, r->n);
    for (int k = 0; k < r->q; k++) {
        GtkWidget *tile = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
        gtk_widget_set_tooltip_text(tile, _("Click to isolate this prototype in the segmentation"));
        GtkWidget *hdr = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
        gtk_widget_set_halign(hdr, GTK_ALIGN_CENTER);
        GtkWidget *sw = swatch_new(w->group ? w->group[k] : k, 14);
        gtk_box_append(GTK_BOX(hdr), sw);
        char *t = g_strdup_printf(_("Prototype %d"), k); /* from 0, as the files */
        GtkWidget *l = gtk_label_new(t);
        g_free(t);
        gtk_widget_add_css_class(l, "tile-title");
        gtk_box_append(GTK_BOX(hdr), l);
        gtk_box_append(GTK_BOX(tile), hdr);
        GtkWidget *maps = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
        for (int i = 0; i < r->n; i++)
            col[i] = r->similarity[(size_t)i * r->q + k];
        gtk_box_append(GTK_BOX(maps), tile_new(_("similarity"), heat_area(w, col, r->gw, r->gh), 120));
        if (r->cross_attn) {
            vu_cross_attn_map(r->cross_attn, r->dec_heads, r->q, r->n, k, head, ca);
            gtk_box_append(GTK_BOX(maps),
                           tile_new(_("cross-attention"), heat_area(w, ca, r->gw, r->gh), 120));
        }
        gtk_box_append(GTK_BOX(tile), maps);
        g_object_set_data(G_OBJECT(tile), "proto", GINT_TO_POINTER(k));
        g_object_set_data(G_OBJECT(tile), "swatch", sw);
        GtkGesture *click = gtk_gesture_click_new();
        g_signal_connect(click, "released", G_CALLBACK(proto_clicked), w);
        gtk_widget_add_controller(tile, GTK_EVENT_CONTROLLER(click));
        gtk_flow_box_append(GTK_FLOW_BOX(w->proto_grid), tile);
    }
    g_free(col);
    g_free(ca);
}

void vw_rebuild_tiles(ViewerWindow *w)
{
    w->fg_area = NULL;
    clear_container(w->attn_grid);
    build_proto_grid(w);
    if (!w->result)
        return;
    const AsResult *r = &w->result->r;
    gtk_flow_box_append(GTK_FLOW_BOX(w->attn_grid),
                        tile_new(_("Mean of heads"), heat_area(w, r->cls_attn_mean, r->gw, r->gh), 200));
    for (int h = 0; h < r->heads; h++) {
        char *t = g_strdup_printf(_("Head %d"), h + 1);
        gtk_flow_box_append(GTK_FLOW_BOX(w->attn_grid),
                            tile_new(t, heat_area(w, r->cls_attn + (size_t)h * r->n, r->gw, r->gh),
                                     200));
        g_free(t);
    }
    GtkWidget *fa = gtk_drawing_area_new();
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(fa), fg_tile_draw, w, NULL);
    gtk_flow_box_append(GTK_FLOW_BOX(w->attn_grid), tile_new(_("Foreground mask"), fa, 200));
    w->fg_area = fa;
}

/* ---------------------------------------------------------------- colour scale */

static void scale_draw(GtkDrawingArea *a, cairo_t *cr, int wd, int ht, gpointer data)
{
    (void)data;
    const char *lo = g_object_get_data(G_OBJECT(a), "lo");
    const char *hi = g_object_get_data(G_OBJECT(a), "hi");
    const char *cap = g_object_get_data(G_OBJECT(a), "caption");
    int bar_h = 14, x0 = 4, x1 = wd - 4;
    if (x1 <= x0)
        return;
    for (int x = x0; x < x1; x++) {
        uint8_t c[3];
        vu_viridis((double)(x - x0) / (x1 - x0 - 1), c);
        cairo_set_source_rgb(cr, c[0] / 255.0, c[1] / 255.0, c[2] / 255.0);
        cairo_rectangle(cr, x, 4, 1, bar_h);
        cairo_fill(cr);
    }
    GtkStyleContext *sc = gtk_widget_get_style_context(GTK_WIDGET(a));
    GdkRGBA fgc;
    gtk_style_context_get_color(sc, &fgc);
    gdk_cairo_set_source_rgba(cr, &fgc);
    const char *texts[3] = { lo, cap, hi };
    for (int i = 0; i < 3; i++) {
        if (!texts[i])
            continue;
        PangoLayout *lay = gtk_widget_create_pango_layout(GTK_WIDGET(a), texts[i]);
        int tw, th;
        pango_layout_get_pixel_size(lay, &tw, &th);
        double tx = i == 0 ? x0 : i == 1 ? (wd - tw) / 2.0 : x1 - tw;
        cairo_move_to(cr, tx, 4 + bar_h + 2);
        pango_cairo_show_layout(cr, lay);
        g_object_unref(lay);
    }
    (void)ht;
}

static void scale_set(GtkWidget *a, const char *lo, const char *hi, const char *caption)
{
    g_object_set_data_full(G_OBJECT(a), "lo", g_strdup(lo), g_free);
    g_object_set_data_full(G_OBJECT(a), "hi", g_strdup(hi), g_free);
    g_object_set_data_full(G_OBJECT(a), "caption", g_strdup(caption), g_free);
    gtk_widget_queue_draw(a);
}

/* ---------------------------------------------------------------- similarity */

void vw_update_similarity(ViewerWindow *w)
{
    if (!w->result) {
        imgview_set_overlay(w->sim_view, NULL, 0, FALSE);
        gtk_label_set_text(GTK_LABEL(w->sim_label), "");
        return;
    }
    const AsResult *r = &w->result->r;
    vu_patch_similarity(r->tokens, r->n, r->dim, w->sim_patch, w->sim_values);
    cairo_surface_t *s = heat_surface(w->sim_values, r->gw, r->gh, &w->sim_lo, &w->sim_hi);
    imgview_set_overlay(w->sim_view, s, gtk_adjustment_get_value(w->opacity_adj), smooth(w));
    cairo_surface_destroy(s);
    char lo[32], hi[32];
    g_snprintf(lo, sizeof lo, "%.3f", w->sim_lo);
    g_snprintf(hi, sizeof hi, "%.3f", w->sim_hi);
    scale_set(w->sim_scale, lo, hi, _("cosine similarity to the selected patch"));
    char *t = w->sim_pinned
                  ? g_strdup_printf(_("Patch (%d, %d), pinned — click it again to follow the pointer"),
                                    w->sim_patch % r->gw, w->sim_patch / r->gw)
                  : g_strdup_printf(_("Patch (%d, %d) — hover to explore, click to pin"),
                                    w->sim_patch % r->gw, w->sim_patch / r->gw);
    gtk_label_set_text(GTK_LABEL(w->sim_label), t);
    g_free(t);
}

static int patch_at(ViewerWindow *w, double ix, double iy)
{
    if (!w->result || !w->image)
        return -1;
    const AsResult *r = &w->result->r;
    int px = (int)(ix * r->gw / w->image->img.w), py = (int)(iy * r->gh / w->image->img.h);
    if (px < 0 || py < 0 || px >= r->gw || py >= r->gh)
        return -1;
    return py * r->gw + px;
}

static void sim_hover(ImgView *v, double ix, double iy, gboolean in, gpointer data)
{
    ViewerWindow *w = data;
    (void)v;
    if (!in || w->sim_pinned)
        return;
    int p = patch_at(w, ix, iy);
    if (p >= 0 && p != w->sim_patch) {
        w->sim_patch = p;
        vw_update_similarity(w);
    }
}

static void sim_click(ImgView *v, double ix, double iy, gboolean in, gpointer data)
{
    ViewerWindow *w = data;
    (void)v;
    if (!in)
        return;
    int p = patch_at(w, ix, iy);
    if (p < 0)
        return;
    w->sim_pinned = !(w->sim_pinned && p == w->sim_patch);
    w->sim_patch = p;
    vw_update_similarity(w);
}

static void sim_draw(ImgView *v, cairo_t *cr, gpointer data)
{
    ViewerWindow *w = data;
    (void)v;
    if (!w->result || !w->image || w->sim_patch < 0)
        return;
    const AsResult *r = &w->result->r;
    double pw = (double)w->image->img.w / r->gw, ph = (double)w->image->img.h / r->gh;
    int px = w->sim_patch % r->gw, py = w->sim_patch / r->gw;
    double lw = pw / 12.0 > 1.5 ? pw / 12.0 : 1.5;
    cairo_set_line_width(cr, lw);
    cairo_set_source_rgb(cr, 1, 0.2, 0.2);
    cairo_rectangle(cr, px * pw + lw / 2, py * ph + lw / 2, pw - lw, ph - lw);
    cairo_stroke(cr);
}

/* ---------------------------------------------------------------- seg hover */

static void seg_hover(ImgView *v, double ix, double iy, gboolean in, gpointer data)
{
    ViewerWindow *w = data;
    (void)v;
    if (!in || !w->result || !w->image) {
        gtk_label_set_text(GTK_LABEL(w->hover_label), "");
        return;
    }
    const AsResult *r = &w->result->r;
    int lx = (int)(ix * r->in_w / w->image->img.w), ly = (int)(iy * r->in_h / w->image->img.h);
    int p = patch_at(w, ix, iy);
    if (lx < 0 || ly < 0 || lx >= r->in_w || ly >= r->in_h || p < 0)
        return;
    int32_t g = w->labels[(size_t)ly * r->in_w + lx];
    char *t;
    if (g == AS_LABEL_BACKGROUND || g < 0 || g >= w->ngroups) {
        t = g_strdup_printf(_("(%d, %d): background (outside the foreground mask)"), (int)ix,
                            (int)iy);
    } else {
        int best = -1;
        for (int k = 0; k < r->q; k++)
            if (w->group[k] == g && (best < 0 || r->similarity[(size_t)p * r->q + k] >
                                                      r->similarity[(size_t)p * r->q + best]))
                best = k;
        char *name = group_name(w, g);
        double prob = 0;
        for (int k = 0; k < r->q; k++)
            if (w->group[k] == g)
                prob += r->assign[(size_t)p * r->q + k];
        t = g_strdup_printf(_("(%d, %d): %s — cosine %.3f, probability %.2f%s"), (int)ix, (int)iy,
                            name, best >= 0 ? r->similarity[(size_t)p * r->q + best] : 0.0,
                            prob, w->result->untrained ? _(" (untrained)") : "");
        g_free(name);
    }
    gtk_label_set_text(GTK_LABEL(w->hover_label), t);
    g_free(t);
}


/* Free the per-result arrays (labels, groups, legend state) of the window. */
void vw_free_result_arrays(ViewerWindow *w)
{
    g_free(w->group);
    g_free(w->visible);
    g_free(w->fg);
    g_free(w->labels);
    g_free(w->share);
    g_free(w->sim_values);
    g_free(w->legend_sig);
    g_free(w->mass_cum);
    w->mass_cum = NULL;
}

void vw_views_set_result(ViewerWindow *w, ViewerResult *r)
{
    viewer_result_unref(w->result);
    w->result = viewer_result_ref(r);
    const AsResult *ar = &r->r;
    vw_free_result_arrays(w);
    w->legend_sig = NULL;
    w->legend_groups = -1;
    w->group = g_new0(int32_t, ar->q);
    w->visible = g_new(bool, ar->q);
    for (int i = 0; i < ar->q; i++)
        w->visible[i] = true;
    w->isolate = -1;
    w->fg = g_new0(uint8_t, ar->n);
    w->labels = g_new0(int32_t, (size_t)ar->in_w * ar->in_h);
    w->share = g_new0(double, ar->q);
    w->sim_values = g_new0(float, ar->n);
    w->mass_cum = g_new(float, ar->n);
    vu_mass_curve(ar->cls_attn_mean, ar->n, w->mass_cum);
    w->sim_patch = (ar->gh / 2) * ar->gw + ar->gw / 2;
    w->sim_pinned = FALSE;
    if (w->label_surface)
        cairo_surface_destroy(w->label_surface);
    w->label_surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, ar->in_w, ar->in_h);
    /* K slider: 1..Q */
    double k = gtk_adjustment_get_value(w->k_adj);
    gboolean was_max = k >= gtk_adjustment_get_upper(w->k_adj);
    gtk_adjustment_set_upper(w->k_adj, ar->q);
    if (was_max || k > ar->q)
        gtk_adjustment_set_value(w->k_adj, ar->q);
    /* decoder head chooser */
    GtkStringList *heads = gtk_string_list_new(NULL);
    gtk_string_list_append(heads, _("Mean"));
    for (int h = 0; h < ar->dec_heads; h++) {
        char *t = g_strdup_printf(_("Head %d"), h + 1);
        gtk_string_list_append(heads, t);
        g_free(t);
    }
    gtk_drop_down_set_model(GTK_DROP_DOWN(w->head_dropdown), G_LIST_MODEL(heads));
    g_object_unref(heads);
    gtk_widget_set_sensitive(w->head_dropdown, ar->cross_attn != NULL);
    vw_relabel(w);
    vw_rebuild_tiles(w);
    vw_update_similarity(w);
}

/* ---------------------------------------------------------------- signals (window.ui) */

/* Connected in data/ui/window.ui with swapped="yes": the window comes first. */
static void on_slider(ViewerWindow *w)
{
    vw_schedule_relabel(w);
}

static void on_opacity(ViewerWindow *w, GtkAdjustment *adj)
{
    if (!w->result)
        return;
    imgview_set_overlay(w->seg_view, w->label_surface, gtk_adjustment_get_value(adj), FALSE);
    vw_update_similarity(w); /* its overlay follows the same slider */
}

/* Redraw every drawing area under widget (tiles are boxes of labels and areas). */
static void queue_draw_tree(GtkWidget *widget)
{
    gtk_widget_queue_draw(widget);
    for (GtkWidget *c = gtk_widget_get_first_child(widget); c; c = gtk_widget_get_next_sibling(c))
        queue_draw_tree(c);
}

static void on_smooth(ViewerWindow *w)
{
    vw_update_similarity(w);
    queue_draw_tree(w->attn_grid);
    build_proto_grid(w);
}

static void on_head(ViewerWindow *w)
{
    build_proto_grid(w);
}

static char *format_merge(GtkScale *s, double v, gpointer data)
{
    (void)s;
    (void)data;
    return v > 1.0 ? g_strdup(_("off")) : g_strdup_printf("%.2f", v);
}

void vw_views_class_init(GtkWidgetClass *wc)
{
    gtk_widget_class_bind_template_callback(wc, on_slider);
    gtk_widget_class_bind_template_callback(wc, on_opacity);
    gtk_widget_class_bind_template_callback(wc, on_smooth);
    gtk_widget_class_bind_template_callback(wc, on_head);
    gtk_widget_class_bind_template_callback(wc, on_show_all);
}

/* A click on a picture takes the keyboard focus from a slider, so that Left
 * and Right step through the images again (a focused slider keeps them):
 * with no focus widget the window's own shortcuts get the keys. */
static void on_area_pressed(GtkGestureClick *g, int n, double x, double y, gpointer data)
{
    (void)g;
    (void)n;
    (void)x;
    (void)y;
    gtk_window_set_focus(GTK_WINDOW(data), NULL);
}

void vw_views_init(ViewerWindow *w)
{
    GtkWidget *areas[] = { w->seg_area, w->sim_area };
    for (size_t i = 0; i < G_N_ELEMENTS(areas); i++) {
        GtkGesture *click = gtk_gesture_click_new();
        gtk_event_controller_set_propagation_phase(GTK_EVENT_CONTROLLER(click), GTK_PHASE_CAPTURE);
        g_signal_connect(click, "pressed", G_CALLBACK(on_area_pressed), w);
        gtk_widget_add_controller(areas[i], GTK_EVENT_CONTROLLER(click));
    }
    w->seg_view = imgview_attach(w->seg_area);
    imgview_set_callbacks(w->seg_view, seg_hover, NULL, NULL, w);
    imgview_set_placeholder(w->seg_view, _("Open an image (Ctrl+O) or drop one here"));
    w->sim_view = imgview_attach(w->sim_area);
    imgview_set_callbacks(w->sim_view, sim_hover, sim_click, sim_draw, w);
    imgview_set_placeholder(w->sim_view, _("Open an image (Ctrl+O) or drop one here"));
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(w->attn_scale), scale_draw, NULL, NULL);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(w->proto_scale), scale_draw, NULL, NULL);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(w->sim_scale), scale_draw, NULL, NULL);
    scale_set(w->attn_scale, _("low"), _("high"),
              _("CLS attention (viridis; each map from its own minimum to maximum, the numbers "
                "under it; hover a map for values)"));
    scale_set(w->proto_scale, _("low"), _("high"),
              _("similarity and decoder cross-attention (each map from its own minimum to "
                "maximum, the numbers under it)"));
    gtk_scale_set_format_value_func(GTK_SCALE(w->merge_scale), format_merge, NULL, NULL);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(w->mass_curve), mass_curve_draw, w, NULL);
}
