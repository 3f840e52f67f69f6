/* imgview: zoom/pan picture widget helper (see imgview.h). */
#include "imgview.h"

#include <math.h>

#include "vutil.h"

#define IMGVIEW_MAX_LEVELS 16

struct ImgView {
    GtkWidget *area;
    cairo_surface_t *image, *overlay;
    cairo_surface_t *level[IMGVIEW_MAX_LEVELS]; /* level[0] == image */
    int nlevels;
    int iw, ih;
    double alpha;
    gboolean smooth;
    gboolean fit;
    double scale, ox, oy;
    double px, py; /* last pointer position */
    gboolean have_pointer;
    double drag_ox, drag_oy;
    gboolean dragged;
    char *placeholder;
    ImgViewPointFn hover, click;
    ImgViewDrawFn draw;
    gpointer user;
};

static void imgview_free(gpointer p)
{
    ImgView *v = p;
    for (int i = 0; i < v->nlevels; i++)
        cairo_surface_destroy(v->level[i]);
    if (v->overlay)
        cairo_surface_destroy(v->overlay);
    g_free(v->placeholder);
    g_free(v);
}

static void update_fit(ImgView *v, int w, int h)
{
    if (!v->fit || v->iw <= 0)
        return;
    v->scale = vu_fit_scale(v->iw, v->ih, w, h);
    v->ox = (w - v->iw * v->scale) / 2.0;
    v->oy = (h - v->ih * v->scale) / 2.0;
}

static void draw_cb(GtkDrawingArea *area, cairo_t *cr, int w, int h, gpointer data)
{
    ImgView *v = data;
    (void)area;
    cairo_set_source_rgb(cr, 0.16, 0.16, 0.17);
    cairo_paint(cr);
    if (!v->image) {
        if (v->placeholder) {
            PangoLayout *lay = gtk_widget_create_pango_layout(v->area, v->placeholder);
            int tw, th;
            pango_layout_get_pixel_size(lay, &tw, &th);
            cairo_set_source_rgb(cr, 0.8, 0.8, 0.8);
            cairo_move_to(cr, (w - tw) / 2.0, (h - th) / 2.0);
            pango_cairo_show_layout(cr, lay);
            g_object_unref(lay);
        }
        return;
    }
    update_fit(v, w, h);
    cairo_save(cr);
    cairo_translate(cr, v->ox, v->oy);
    cairo_scale(cr, v->scale, v->scale);
    {
        cairo_surface_t *ls = v->level[vu_pyramid_level(v->scale, v->nlevels)];
        int lw = cairo_image_surface_get_width(ls), lh = cairo_image_surface_get_height(ls);
        cairo_save(cr);
        cairo_rectangle(cr, 0, 0, v->iw, v->ih);
        cairo_clip(cr);
        cairo_scale(cr, (double)v->iw / lw, (double)v->ih / lh);
        cairo_set_source_surface(cr, ls, 0, 0);
        cairo_pattern_set_filter(cairo_get_source(cr),
                                 v->scale >= 2.0 ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_BILINEAR);
        cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
        cairo_paint(cr);
        cairo_restore(cr);
    }
    if (v->overlay && v->alpha > 0.0) {
        int ow = cairo_image_surface_get_width(v->overlay);
        int oh = cairo_image_surface_get_height(v->overlay);
        if (ow > 0 && oh > 0) {
            cairo_save(cr);
            cairo_rectangle(cr, 0, 0, v->iw, v->ih);
            cairo_clip(cr);
            cairo_scale(cr, (double)v->iw / ow, (double)v->ih / oh);
            cairo_set_source_surface(cr, v->overlay, 0, 0);
            cairo_pattern_set_filter(cairo_get_source(cr),
                                     v->smooth ? CAIRO_FILTER_BILINEAR : CAIRO_FILTER_NEAREST);
            cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
            cairo_paint_with_alpha(cr, v->alpha);
            cairo_restore(cr);
        }
    }
    if (v->draw)
        v->draw(v, cr, v->user);
    cairo_restore(cr);
}

static void to_image(ImgView *v, double x, double y, double *ix, double *iy)
{
    *ix = (x - v->ox) / v->scale;
    *iy = (y - v->oy) / v->scale;
}

static gboolean inside(ImgView *v, double ix, double iy)
{
    return v->image && ix >= 0 && iy >= 0 && ix < v->iw && iy < v->ih;
}

static void motion_cb(GtkEventControllerMotion *c, double x, double y, gpointer data)
{
    ImgView *v = data;
    (void)c;
    v->px = x;
    v->py = y;
    v->have_pointer = TRUE;
    if (v->hover && v->image) {
        double ix, iy;
        to_image(v, x, y, &ix, &iy);
        v->hover(v, ix, iy, inside(v, ix, iy), v->user);
    }
}

static void leave_cb(GtkEventControllerMotion *c, gpointer data)
{
    ImgView *v = data;
    (void)c;
    v->have_pointer = FALSE;
    if (v->hover)
        v->hover(v, -1, -1, FALSE, v->user);
}

static gboolean scroll_cb(GtkEventControllerScroll *c, double dx, double dy, gpointer data)
{
    ImgView *v = data;
    (void)c;
    (void)dx;
    if (!v->image || dy == 0)
        return FALSE;
    double px = v->have_pointer ? v->px : gtk_widget_get_width(v->area) / 2.0;
    double py = v->have_pointer ? v->py : gtk_widget_get_height(v->area) / 2.0;
    v->fit = FALSE;
    vu_zoom_at(&v->scale, &v->ox, &v->oy, pow(1.15, -dy), px, py);
    gtk_widget_queue_draw(v->area);
    return TRUE;
}

static void drag_begin_cb(GtkGestureDrag *g, double x, double y, gpointer data)
{
    ImgView *v = data;
    (void)g;
    (void)x;
    (void)y;
    v->drag_ox = v->ox;
    v->drag_oy = v->oy;
    v->dragged = FALSE;
}

static void drag_update_cb(GtkGestureDrag *g, double dx, double dy, gpointer data)
{
    ImgView *v = data;
    (void)g;
    if (!v->dragged && fabs(dx) < 4 && fabs(dy) < 4)
        return;
    v->dragged = TRUE;
    v->fit = FALSE;
    v->ox = v->drag_ox + dx;
    v->oy = v->drag_oy + dy;
    gtk_widget_queue_draw(v->area);
}

static void drag_end_cb(GtkGestureDrag *g, double dx, double dy, gpointer data)
{
    ImgView *v = data;
    (void)dx;
    (void)dy;
    if (v->dragged || !v->click || !v->image)
        return;
    double sx, sy, ix, iy;
    gtk_gesture_drag_get_start_point(g, &sx, &sy);
    to_image(v, sx, sy, &ix, &iy);
    v->click(v, ix, iy, inside(v, ix, iy), v->user);
    gtk_widget_grab_focus(v->area);
}

ImgView *imgview_attach(GtkWidget *area)
{
    ImgView *v = g_new0(ImgView, 1);
    v->area = area;
    v->fit = TRUE;
    v->scale = 1.0;
    v->alpha = 1.0;
    g_object_set_data_full(G_OBJECT(area), "imgview", v, imgview_free);
    gtk_drawing_area_set_draw_func(GTK_DRAWING_AREA(area), draw_cb, v, NULL);
    GtkEventController *m = gtk_event_controller_motion_new();
    g_signal_connect(m, "motion", G_CALLBACK(motion_cb), v);
    g_signal_connect(m, "leave", G_CALLBACK(leave_cb), v);
    gtk_widget_add_controller(area, m);
    GtkEventController *s = gtk_event_controller_scroll_new(GTK_EVENT_CONTROLLER_SCROLL_VERTICAL);
    g_signal_connect(s, "scroll", G_CALLBACK(scroll_cb), v);
    gtk_widget_add_controller(area, s);
    GtkGesture *d = gtk_gesture_drag_new();
    g_signal_connect(d, "drag-begin", G_CALLBACK(drag_begin_cb), v);
    g_signal_connect(d, "drag-update", G_CALLBACK(drag_update_cb), v);
    g_signal_connect(d, "drag-end", G_CALLBACK(drag_end_cb), v);
    gtk_widget_add_controller(area, GTK_EVENT_CONTROLLER(d));
    gtk_widget_set_focusable(area, TRUE);
    return v;
}

void imgview_set_callbacks(ImgView *v, ImgViewPointFn hover, ImgViewPointFn click,
                           ImgViewDrawFn draw, gpointer user)
{
    v->hover = hover;
    v->click = click;
    v->draw = draw;
    v->user = user;
}

void imgview_set_image_levels(ImgView *v, cairo_surface_t *const *levels, int n)
{
    if (n > IMGVIEW_MAX_LEVELS)
        n = IMGVIEW_MAX_LEVELS;
    if (!levels || !levels[0])
        n = 0;
    int w = n ? cairo_image_surface_get_width(levels[0]) : 0;
    int h = n ? cairo_image_surface_get_height(levels[0]) : 0;
    for (int i = 0; i < n; i++)
        cairo_surface_reference(levels[i]);
    for (int i = 0; i < v->nlevels; i++)
        cairo_surface_destroy(v->level[i]);
    for (int i = 0; i < n; i++)
        v->level[i] = levels[i];
    v->nlevels = n;
    v->image = n ? levels[0] : NULL;
    if (w != v->iw || h != v->ih)
        v->fit = TRUE;
    v->iw = w;
    v->ih = h;
    gtk_widget_queue_draw(v->area);
}

void imgview_set_image(ImgView *v, cairo_surface_t *image)
{
    imgview_set_image_levels(v, &image, image ? 1 : 0);
}

void imgview_set_overlay(ImgView *v, cairo_surface_t *overlay, double alpha, gboolean smooth)
{
    if (overlay)
        cairo_surface_reference(overlay);
    if (v->overlay)
        cairo_surface_destroy(v->overlay);
    v->overlay = overlay;
    v->alpha = alpha;
    v->smooth = smooth;
    gtk_widget_queue_draw(v->area);
}

void imgview_set_placeholder(ImgView *v, const char *text)
{
    g_free(v->placeholder);
    v->placeholder = g_strdup(text);
    gtk_widget_queue_draw(v->area);
}

void imgview_zoom_fit(ImgView *v)
{
    v->fit = TRUE;
    gtk_widget_queue_draw(v->area);
}

void imgview_zoom_one(ImgView *v)
{
    if (!v->image)
        return;
    int w = gtk_widget_get_width(v->area), h = gtk_widget_get_height(v->area);
    v->fit = FALSE;
    v->scale = 1.0;
    v->ox = (w - v->iw) / 2.0;
    v->oy = (h - v->ih) / 2.0;
    gtk_widget_queue_draw(v->area);
}

void imgview_zoom_by(ImgView *v, double factor)
{
    if (!v->image)
        return;
    v->fit = FALSE;
    vu_zoom_at(&v->scale, &v->ox, &v->oy, factor, gtk_widget_get_width(v->area) / 2.0,
               gtk_widget_get_height(v->area) / 2.0);
    gtk_widget_queue_draw(v->area);
}

GtkWidget *imgview_widget(ImgView *v) { return v->area; }

void imgview_to_image(ImgView *v, double x, double y, double *ix, double *iy)
{
    update_fit(v, gtk_widget_get_width(v->area), gtk_widget_get_height(v->area));
    to_image(v, x, y, ix, iy);
}

double imgview_scale(ImgView *v)
{
    return v->scale;
}
