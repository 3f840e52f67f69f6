/* window-views: the viewer's views (see window-private.h): relabelling from
 * the cached result as sliders move, the legend, patch similarity and the
 * hover read-outs. The attention and prototype tiles live in window-tiles.c. */
#include "window-private.h"

#include <math.h>
#include <string.h>

#include "vutil.h"

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

GtkWidget *vw_swatch_new(int g, int size)
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
        gtk_box_append(GTK_BOX(row), vw_swatch_new(g, 18));
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
    vw_edit_relabel(w); /* corrections over the new labels, or dropped (after the legend) */
    /* the foreground tile follows the mass slider live: queue its own drawing
     * area (GTK 4 keeps a parent's children's render nodes on a parent's
     * queue_draw) */
    if (w->fg_area)
        gtk_widget_queue_draw(w->fg_area);
    vw_tiles_follow_groups(w);
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
    cairo_surface_t *s = vw_heat_surface(w->sim_values, r->gw, r->gh, &w->sim_lo, &w->sim_hi);
    imgview_set_overlay(w->sim_view, s, gtk_adjustment_get_value(w->opacity_adj), vw_smooth(w));
    cairo_surface_destroy(s);
    vw_scale_set(w->sim_scale, w->sim_lo, w->sim_hi, _("cosine similarity to the selected patch"));
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
    const int32_t c = vw_edit_correction_at(w, (int)ix, (int)iy);
    const gboolean corrected = c != LE_NONE;
    if (corrected)
        g = c;
    char *t;
    if (g == AS_LABEL_BACKGROUND || g < 0 || g >= w->ngroups) {
        t = corrected ? g_strdup_printf(_("(%d, %d): background (corrected)"), (int)ix, (int)iy)
                      : g_strdup_printf(_("(%d, %d): background (outside the foreground mask)"),
                                        (int)ix, (int)iy);
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
                            prob, corrected ? _(" (corrected; the model's values)")
                                  : w->result->untrained ? _(" (untrained)") : "");
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

static void on_smooth(ViewerWindow *w)
{
    vw_update_similarity(w);
    vw_tiles_redraw(w);
}

static void on_head(ViewerWindow *w)
{
    vw_tiles_rebuild_protos(w);
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
    vw_edit_class_init(wc);
    vw_tiles_class_init(wc);
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
    imgview_set_callbacks(w->seg_view, seg_hover, NULL, vw_edit_draw, w);
    imgview_set_placeholder(w->seg_view, _("Open an image (Ctrl+O) or drop one here"));
    w->sim_view = imgview_attach(w->sim_area);
    imgview_set_callbacks(w->sim_view, sim_hover, sim_click, sim_draw, w);
    imgview_set_placeholder(w->sim_view, _("Open an image (Ctrl+O) or drop one here"));
    vw_tiles_init(w);
    gtk_scale_set_format_value_func(GTK_SCALE(w->merge_scale), format_merge, NULL, NULL);
    vw_edit_init(w);
}
