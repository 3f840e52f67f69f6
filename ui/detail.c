/* detail: one map over the photo, and numbered colour bars (see detail.h). */
#include "detail.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "imgview.h"
#include "vutil.h"

struct DetailView {
    GtkWidget *box, *title, *hover, *area, *bar, *opacity;
    ImgView *view;
    ViewerImage *image;
    float *values;
    int gw, gh;
    float lo, hi;
    char *name, *caption;
    gboolean smooth;
    cairo_surface_t *heat;
};

/* ---------------------------------------------------------------- colour bars */

int detail_ticks(double lo, double hi, int max_ticks, double *ticks, int *decimals)
{
    *decimals = 0;
    if (max_ticks < 1)
        return 0;
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi)) {
        ticks[0] = lo;
        double a = fabs(lo);
        *decimals = a > 0 && a < 1 ? (int)ceil(-log10(a)) + 1 : 0;
        return 1;
    }
    if (max_ticks == 1) {
        ticks[0] = lo;
        *decimals = 3;
        return 1;
    }
    const double raw = (hi - lo) / (max_ticks - 1);
    double p = pow(10.0, floor(log10(raw)));
    double step = p;
    static const double mult[] = { 1, 2, 5, 10 };
    for (size_t i = 0; i < sizeof mult / sizeof *mult; i++)
        if (mult[i] * p >= raw * (1 - 1e-9)) {
            step = mult[i] * p;
            break;
        }
    int n = 0;
    double first = ceil(lo / step - 1e-9) * step;
    for (double t = first; t <= hi + step * 1e-9 && n < max_ticks; t = first + n * step)
        ticks[n++] = fabs(t) < step * 1e-9 ? 0.0 : t;
    int d = (int)ceil(-log10(step) - 1e-9);
    *decimals = d > 0 ? d : 0;
    return n;
}

void detail_colourbar_draw(GtkWidget *widget, cairo_t *cr, double x, double y, double width,
                           double bar_h, double lo, double hi, const char *caption)
{
    if (width < 4)
        return;
    const int n = (int)width;
    for (int i = 0; i < n; i++) {
        uint8_t c[3];
        vu_viridis(n > 1 ? (double)i / (n - 1) : 0.5, c);
        cairo_set_source_rgb(cr, c[0] / 255.0, c[1] / 255.0, c[2] / 255.0);
        cairo_rectangle(cr, x + i, y, 1, bar_h);
        cairo_fill(cr);
    }
    GdkRGBA fg;
    gtk_style_context_get_color(gtk_widget_get_style_context(widget), &fg);
    gdk_cairo_set_source_rgba(cr, &fg);
    /* the ends in numbers, then round numbers between them where they fit */
    int text_h = 0;
    double left_end = x, right_start = x + width;
    for (int e = 0; e < 2; e++) {
        char num[48];
        g_snprintf(num, sizeof num, "%.3g", e ? hi : lo);
        PangoLayout *lay = gtk_widget_create_pango_layout(widget, num);
        int tw, th;
        pango_layout_get_pixel_size(lay, &tw, &th);
        text_h = th;
        double tx = e ? x + width - 0.5 : x + 0.5;
        cairo_set_line_width(cr, 1);
        cairo_move_to(cr, tx, y + bar_h - 3);
        cairo_line_to(cr, tx, y + bar_h + 3);
        cairo_stroke(cr);
        double lx = e ? x + width - tw : x;
        if (e && lx < left_end + 6) { /* too narrow for both: only the lower end */
            g_object_unref(lay);
            break;
        }
        cairo_move_to(cr, lx, y + bar_h + 3);
        pango_cairo_show_layout(cr, lay);
        if (e)
            right_start = lx;
        else
            left_end = x + tw;
        g_object_unref(lay);
    }
    double ticks[8];
    int dec;
    int max_ticks = (int)(width / 60) + 1;
    max_ticks = max_ticks < 2 ? 2 : max_ticks > 8 ? 8 : max_ticks;
    int nt = hi > lo ? detail_ticks(lo, hi, max_ticks, ticks, &dec) : 0;
    double last_right = left_end;
    for (int i = 0; i < nt; i++) {
        double tx = x + (ticks[i] - lo) / (hi - lo) * (width - 1);
        char num[48];
        g_snprintf(num, sizeof num, "%.*f", dec, ticks[i]);
        PangoLayout *lay = gtk_widget_create_pango_layout(widget, num);
        int tw, th;
        pango_layout_get_pixel_size(lay, &tw, &th);
        double lx = tx - tw / 2.0;
        if (lx > last_right + 6 && lx + tw < right_start - 6) { /* no overlapping numbers */
            cairo_move_to(cr, floor(tx) + 0.5, y + bar_h - 3);
            cairo_line_to(cr, floor(tx) + 0.5, y + bar_h + 3);
            cairo_stroke(cr);
            cairo_move_to(cr, lx, y + bar_h + 3);
            pango_cairo_show_layout(cr, lay);
            last_right = lx + tw;
        }
        g_object_unref(lay);
    }
    if (caption && *caption) {
        PangoLayout *lay = gtk_widget_create_pango_layout(widget, caption);
        pango_layout_set_width(lay, (int)(width * PANGO_SCALE));
        pango_layout_set_ellipsize(lay, PANGO_ELLIPSIZE_END);
        pango_layout_set_alignment(lay, PANGO_ALIGN_CENTER);
        cairo_move_to(cr, x, y + bar_h + 3 + text_h);
        pango_cairo_show_layout(cr, lay);
        g_object_unref(lay);
    }
}

/* ---------------------------------------------------------------- the view */

static void bar_draw(GtkDrawingArea *a, cairo_t *cr, int wd, int ht, gpointer data)
{
    DetailView *d = data;
    (void)ht;
    if (!d->values)
        return;
    detail_colourbar_draw(GTK_WIDGET(a), cr, 4, 4, wd - 8, 14, d->lo, d->hi, d->caption);
}

static void detail_free(gpointer p)
{
    DetailView *d = p;
    if (d->image)
        viewer_image_unref(d->image);
    if (d->heat)
        cairo_surface_destroy(d->heat);
    g_free(d->values);
    g_free(d->name);
    g_free(d->caption);
    g_free(d);
}

char *detail_hover_text(DetailView *d, double ix, double iy)
{
    if (!d->values || d->gw < 1 || d->gh < 1)
        return g_strdup("");
    int iw = d->image ? d->image->img.w : d->gw, ih = d->image ? d->image->img.h : d->gh;
    int px = (int)floor(ix * d->gw / iw), py = (int)floor(iy * d->gh / ih);
    if (px < 0 || py < 0 || px >= d->gw || py >= d->gh)
        return g_strdup("");
    return g_strdup_printf(_("(%d, %d) in patch (%d, %d): %.4g"), (int)ix, (int)iy, px, py,
                           d->values[(size_t)py * d->gw + px]);
}

static void hover(ImgView *v, double ix, double iy, gboolean in, gpointer data)
{
    DetailView *d = data;
    (void)v;
    char *t = in ? detail_hover_text(d, ix, iy) : g_strdup(_("Hover the map for values"));
    gtk_label_set_text(GTK_LABEL(d->hover), t);
    g_free(t);
}

static void opacity_changed(GtkRange *r, gpointer data)
{
    DetailView *d = data;
    imgview_set_overlay(d->view, d->heat, gtk_range_get_value(r), d->smooth);
}

static void zoom_fit(GtkButton *b, gpointer data)
{
    (void)b;
    imgview_zoom_fit(((DetailView *)data)->view);
}

static void zoom_in(GtkButton *b, gpointer data)
{
    (void)b;
    imgview_zoom_by(((DetailView *)data)->view, 1.25);
}

static void zoom_out(GtkButton *b, gpointer data)
{
    (void)b;
    imgview_zoom_by(((DetailView *)data)->view, 0.8);
}

static GtkWidget *icon_button(const char *icon, const char *tip, GCallback cb, gpointer data)
{
    GtkWidget *b = gtk_button_new_from_icon_name(icon);
    gtk_widget_set_tooltip_text(b, tip);
    g_signal_connect(b, "clicked", cb, data);
    return b;
}

DetailView *detail_new(GCallback on_close, gpointer user)
{
    DetailView *d = g_new0(DetailView, 1);
    d->box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
    g_object_set_data_full(G_OBJECT(d->box), "detail", d, detail_free);

    GtkWidget *top = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
    gtk_widget_set_margin_start(top, 12);
    gtk_widget_set_margin_end(top, 12);
    gtk_widget_set_margin_top(top, 6);
    d->title = gtk_label_new(NULL);
    gtk_widget_add_css_class(d->title, "heading");
    gtk_box_append(GTK_BOX(top), d->title);
    d->hover = gtk_label_new(_("Hover the map for values"));
    gtk_widget_add_css_class(d->hover, "legend-share");
    gtk_widget_set_hexpand(d->hover, TRUE);
    gtk_label_set_xalign(GTK_LABEL(d->hover), 0);
    gtk_label_set_ellipsize(GTK_LABEL(d->hover), PANGO_ELLIPSIZE_END);
    gtk_box_append(GTK_BOX(top), d->hover);
    gtk_box_append(GTK_BOX(top), gtk_label_new(_("Map opacity")));
    d->opacity = gtk_scale_new_with_range(GTK_ORIENTATION_HORIZONTAL, 0, 1, 0.05);
    gtk_range_set_value(GTK_RANGE(d->opacity), 0.7);
    gtk_widget_set_size_request(d->opacity, 110, -1);
    g_signal_connect(d->opacity, "value-changed", G_CALLBACK(opacity_changed), d);
    gtk_box_append(GTK_BOX(top), d->opacity);
    GtkWidget *zoom = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 0);
    gtk_widget_add_css_class(zoom, "linked");
    gtk_box_append(GTK_BOX(zoom), icon_button("zoom-out-symbolic", _("Zoom out (scroll down)"),
                                              G_CALLBACK(zoom_out), d));
    gtk_box_append(GTK_BOX(zoom), icon_button("zoom-fit-best-symbolic", _("Fit the window"),
                                              G_CALLBACK(zoom_fit), d));
    gtk_box_append(GTK_BOX(zoom), icon_button("zoom-in-symbolic", _("Zoom in (scroll up)"),
                                              G_CALLBACK(zoom_in), d));
    gtk_box_append(GTK_BOX(top), zoom);
    GtkWidget *close = gtk_button_new_with_mnemonic(_("_Back to the Tiles"));
    if (on_close)
        g_signal_connect_swapped(close, "clicked", on_close, user);
    gtk_box_append(GTK_BOX(top), close);
    gtk_box_append(GTK_BOX(d->box), top);

    d->area = gtk_drawing_area_new();
    gtk_widget_set_hexpand(d->area, TRUE);
    gtk_widget_set_vexpand(d->area, TRUE);
    d->view = imgview_attach(d->area);
    imgview_set_callbacks(d->view, hover, NULL, NULL, d);
    gtk_box_append(GTK_BOX(d->box), d->area);

    d->bar = gtk_drawing_area_new();
    gtk_drawing_area_set_content_height(GTK_DRAWING_AREA(d->bar), 58);
    gtk_widget_set_margin_start(d->bar, 12);
    gtk_widget_set_margin_end(d->bar, 12);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(d->bar), bar_draw, d, NULL);
    gtk_box_append(GTK_BOX(d->box), d->bar);
    return d;
}

GtkWidget *detail_widget(DetailView *d)
{
    return d->box;
}

void detail_set(DetailView *d, const char *title, ViewerImage *image, const float *values,
                int gw, int gh, float lo, float hi, const char *caption, gboolean smooth)
{
    g_free(d->values);
    d->values = g_memdup2(values, (gsize)gw * gh * sizeof *values);
    d->gw = gw;
    d->gh = gh;
    d->lo = lo;
    d->hi = hi;
    d->smooth = smooth;
    g_free(d->name);
    d->name = g_strdup(title);
    g_free(d->caption);
    d->caption = g_strdup(caption);
    if (image)
        viewer_image_ref(image);
    if (d->image)
        viewer_image_unref(d->image);
    d->image = image;
    if (d->heat)
        cairo_surface_destroy(d->heat);
    d->heat = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, gw, gh);
    cairo_surface_flush(d->heat);
    vu_heatmap_argb(values, gw, gh, lo, hi, 255, cairo_image_surface_get_data(d->heat),
                    cairo_image_surface_get_stride(d->heat));
    cairo_surface_mark_dirty(d->heat);
    if (image) {
        imgview_set_image_levels(d->view, image->level, image->nlevels);
    } else {
        cairo_surface_t *blank = cairo_image_surface_create(CAIRO_FORMAT_RGB24, gw * 16, gh * 16);
        imgview_set_image(d->view, blank);
        cairo_surface_destroy(blank);
    }
    imgview_set_overlay(d->view, d->heat, gtk_range_get_value(GTK_RANGE(d->opacity)), smooth);
    imgview_zoom_fit(d->view);
    gtk_label_set_text(GTK_LABEL(d->title), title);
    gtk_label_set_text(GTK_LABEL(d->hover), _("Hover the map for values"));
    gtk_widget_queue_draw(d->bar);
}
