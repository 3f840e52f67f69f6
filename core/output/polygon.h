/* polygon: label map -> polygons for annotation tools (labelme), and the
 * even-odd rasteriser that turns polygons back into masks.
 *
 * Coordinates are those of pixel corners: pixel (x, y) covers the square
 * [x, x+1] x [y, y+1] (how labelme's canvas draws images), so a traced
 * boundary runs along pixel edges and every vertex is an integer point.
 * Tracing: every 4-connected component of each label value in 0..nlabels-1
 * gets its boundary cycles followed along pixel edges with the region on the
 * right; at a corner where two pixels of the region touch only diagonally the
 * walk turns right, which keeps 4-connected components apart. A component's
 * outer cycle (clockwise on screen) and its hole cycles (counter-clockwise)
 * are simplified one by one (collinear points always removed, then
 * Douglas-Peucker with tolerance epsilon in pixels if epsilon > 0, keeping at
 * least 3 points), then every hole is joined to the outer ring by a doubled
 * "bridge" segment from its top-left vertex to the nearest vertex of the ring
 * built so far. The result is one closed polygon per component whose
 * even-odd interior is the component (exactly so for epsilon = 0): labelme,
 * which has no holes, then shows the hole as a slit polygon. */
#ifndef ALIGNSEG_POLYGON_H
#define ALIGNSEG_POLYGON_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct {
    int32_t label;   /* the label value of the component */
    size_t n;        /* number of points (closed implicitly: last joins first) */
    int32_t *xy;     /* 2n values x0, y0, x1, y1, ... (pixel-corner coordinates) */
    int nholes;      /* holes bridged into the polygon */
    int64_t area;    /* pixels of the component */
} AsPolygon;

typedef struct {
    AsPolygon *items;
    size_t count, cap;
} AsPolygonSet;

/* Trace all components of a row-major w x h label map whose value is in
 * 0..nlabels-1 (other values, e.g. background 255, are not traced).
 * Polygons come sorted by label, then by the raster position of the
 * component's first pixel. */
int as_trace_polygons(const int32_t *labels, int w, int h, int nlabels, double epsilon,
                      AsPolygonSet *out, AsError *err);
void as_polygon_set_free(AsPolygonSet *s);

/* Even-odd fill of one closed polygon (n points, xy as above but double)
 * sampled at pixel centres (x+0.5, y+0.5): pixels inside are set to 1
 * (others are left unchanged, so several polygons make a union). */
void as_polygon_fill(const double *xy, size_t n, int w, int h, uint8_t *mask);

#endif
