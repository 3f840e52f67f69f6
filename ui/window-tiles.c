/* window-tiles: the attention and prototype views (see window-private.h):
 * the grids of map tiles (each map at the photo's aspect ratio, its value
 * range and the value under the pointer), the foreground-mask tile, the
 * cumulative attention-mass curve and the colour bars. */
#include "window-private.h"

#include <math.h>
#include <string.h>

#include "vutil.h"

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
    g_object_set_data_full(G_OBJECT(a), "surface", vw_heat_surface(v, gw, gh, &lo, &hi),
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

void vw_tiles_rebuild_protos(ViewerWindow *w)
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
        GtkWidget *sw = vw_swatch_new(w->group ? w->group[k] : k, 14);
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
    vw_tiles_rebuild_protos(w);
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

void vw_scale_set(GtkWidget *a, const char *lo, const char *hi, const char *caption)
{
    g_object_set_data_full(G_OBJECT(a), "lo", g_strdup(lo), g_free);
    g_object_set_data_full(G_OBJECT(a), "hi", g_strdup(hi), g_free);
    g_object_set_data_full(G_OBJECT(a), "caption", g_strdup(caption), g_free);
    gtk_widget_queue_draw(a);
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
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(w->attn_scale), scale_draw, NULL, NULL);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(w->proto_scale), scale_draw, NULL, NULL);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(w->sim_scale), scale_draw, NULL, NULL);
    vw_scale_set(w->attn_scale, _("low"), _("high"),
                 _("CLS attention (viridis; each map from its own minimum to maximum, the numbers "
                   "under it; hover a map for values)"));
    vw_scale_set(w->proto_scale, _("low"), _("high"),
                 _("similarity and decoder cross-attention (each map from its own minimum to "
                   "maximum, the numbers under it)"));
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(w->mass_curve), mass_curve_draw, w, NULL);
}
