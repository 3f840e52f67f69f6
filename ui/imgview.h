/* imgview: a zoomable, pannable picture on a GtkDrawingArea: a base image,
 * an optional overlay stretched over it (labels or a patch-grid heat map,
 * drawn crisp or smooth) and a hook for extra drawing. Fit, 1:1, zoom by
 * scroll around the pointer, pan by dragging; reports hover and clicks in
 * image pixel coordinates. */
#ifndef ALIGNSEG_VIEWER_IMGVIEW_H
#define ALIGNSEG_VIEWER_IMGVIEW_H

#include <gtk/gtk.h>

typedef struct ImgView ImgView;

/* ix, iy: image pixel coordinates; inside: the point is on the image. */
typedef void (*ImgViewPointFn)(ImgView *v, double ix, double iy, gboolean inside,
                               gpointer user);
/* Extra drawing in image pixel coordinates (after the overlay). */
typedef void (*ImgViewDrawFn)(ImgView *v, cairo_t *cr, gpointer user);

/* Attach to a GtkDrawingArea; freed with it. */
ImgView *imgview_attach(GtkWidget *area);
void imgview_set_callbacks(ImgView *v, ImgViewPointFn hover, ImgViewPointFn click,
                           ImgViewDrawFn draw, gpointer user);
/* Takes a reference; NULL clears. Resets to fit when the size changes. */
void imgview_set_image(ImgView *v, cairo_surface_t *image);
/* The same with a pyramid: levels[0] full size, each next one half the size
 * of the previous; the level nearest above the display scale is drawn. */
void imgview_set_image_levels(ImgView *v, cairo_surface_t *const *levels, int n);
/* Overlay (any size, stretched over the image); takes a reference; NULL clears. */
void imgview_set_overlay(ImgView *v, cairo_surface_t *overlay, double alpha, gboolean smooth);
void imgview_set_placeholder(ImgView *v, const char *text);
void imgview_zoom_fit(ImgView *v);
void imgview_zoom_one(ImgView *v);
void imgview_zoom_by(ImgView *v, double factor);
GtkWidget *imgview_widget(ImgView *v);
/* Widget coordinates to image pixel coordinates (as the callbacks get them),
 * and the display scale (screen pixels per image pixel). */
void imgview_to_image(ImgView *v, double x, double y, double *ix, double *iy);
double imgview_scale(ImgView *v);

#endif
