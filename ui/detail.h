/* detail: one map (a patch-grid heat map: attention, similarity,
 * cross-attention) read at leisure: drawn over the photo at the photo's
 * aspect ratio in a zoomable view, the value under the pointer, a colour bar
 * with numbered ticks and its own opacity. Also the numbered colour bars the
 * tiles draw. No ViewerWindow here: the window (window-tiles.c) hands it
 * what to show. */
#ifndef ALIGNSEG_VIEWER_DETAIL_H
#define ALIGNSEG_VIEWER_DETAIL_H

#include <gtk/gtk.h>

#include "worker.h"

typedef struct DetailView DetailView;

/* The widget (a vertical box) and its state, freed with the widget.
 * on_close is called by its Close button. */
DetailView *detail_new(GCallback on_close, gpointer user);
GtkWidget *detail_widget(DetailView *d);
/* Show values (gh x gw, copied) named title over image (may be NULL), the
 * colours spanning lo..hi, caption under the colour bar. */
void detail_set(DetailView *d, const char *title, ViewerImage *image, const float *values,
                int gw, int gh, float lo, float hi, const char *caption, gboolean smooth);
/* The value of patch (px, py) and the text the hover line shows for it. */
char *detail_hover_text(DetailView *d, double ix, double iy);

/* Tick values for a colour bar from lo to hi: at most max_ticks "nice"
 * numbers (1, 2 or 5 times a power of ten apart) inside [lo, hi], ascending,
 * into ticks; *decimals: the decimals that tell them apart. Returns the count
 * (1, the value lo, when hi - lo is not positive). Pure; unit-tested. */
int detail_ticks(double lo, double hi, int max_ticks, double *ticks, int *decimals);

/* Draw a viridis colour bar from lo to hi at (x, y), width x bar_h, with
 * tick marks and their numbers under it, and caption (may be NULL) centred
 * below the numbers. Text in the widget's colour and font. */
void detail_colourbar_draw(GtkWidget *widget, cairo_t *cr, double x, double y, double width,
                           double bar_h, double lo, double hi, const char *caption);

#endif
