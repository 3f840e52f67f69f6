/* labeledit: corrections to a label map at the photo's full resolution (no
 * GTK; unit-tested in tests/test_viewer_edit.c).
 *
 * The map shown and exported is the model's labels (the "base", recomputed
 * whenever a slider moves) with a layer of corrections on top: a pixel with a
 * correction shows the corrected label, every other pixel the model's.
 *  - brush: a disc of pixels gets a label (a pixel belongs to the disc when
 *    its centre (x + 0.5, y + 0.5) is within the radius of the disc's centre;
 *    the pixel under the centre always does);
 *  - eraser: a disc of pixels loses its corrections (back to the model's label);
 *  - region: the 4-connected region of equal shown labels around a pixel gets
 *    another label.
 * Every stroke, fill or drop is one step of an undo stack; redo replays
 * undone steps until the next edit. The steps are bounded in memory: when
 * they hold more than the limit, the oldest are forgotten (the newest one is
 * always kept, so an edit can be undone once however large it is).
 *
 * The keep rule (le_regroup): labels are group numbers of the current
 * prototype grouping. Corrections survive a slider move that keeps the
 * grouping (the same partition of the prototypes; renumbered groups are
 * followed) and are dropped when the grouping changes: the drop is itself a
 * step, and undoing it brings the corrections back, each group's label
 * following its smallest prototype into the new grouping. */
#ifndef ALIGNSEG_LABELEDIT_H
#define ALIGNSEG_LABELEDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "no correction" in the correction layer */
#define LE_NONE INT32_MIN

typedef struct LabelEdit LabelEdit;

typedef enum {
    LE_KEPT,    /* the grouping is the same partition: corrections kept */
    LE_DROPPED, /* the grouping changed and there were corrections: dropped (undoable) */
    LE_NEW      /* the grouping changed, there was nothing to drop */
} LeRegroup;

/* A w x h map whose base is all `fill`, no corrections; undo steps limited to
 * undo_limit bytes. NULL when w or h < 1 or memory runs out. */
LabelEdit *le_new(int w, int h, int32_t fill, size_t undo_limit);
void le_free(LabelEdit *e);
int le_width(const LabelEdit *e);
int le_height(const LabelEdit *e);

/* The model's labels (w*h, copied). */
void le_set_base(LabelEdit *e, const int32_t *base);
/* The map shown: corrections over the base (w*h). */
const int32_t *le_labels(const LabelEdit *e);
/* The correction layer (w*h, LE_NONE where there is none). */
const int32_t *le_corrections(const LabelEdit *e);
/* Number of pixels with a correction. */
size_t le_correction_count(const LabelEdit *e);

/* A stroke: any number of dabs and segments between begin and end is one
 * undo step. label LE_NONE erases. Returns the pixels changed by the call. */
void le_stroke_begin(LabelEdit *e);
size_t le_dab(LabelEdit *e, double cx, double cy, double radius, int32_t label);
/* Dabs from (x0,y0) to (x1,y1), at most radius/2 (and 0.5) pixels apart. */
size_t le_segment(LabelEdit *e, double x0, double y0, double x1, double y1, double radius,
                  int32_t label);
/* Ends the stroke; true when it changed something (an undo step was made).
 * Returns false (and records nothing) when memory runs out. */
bool le_stroke_end(LabelEdit *e);

/* Region reassignment: the 4-connected pixels around (x, y) showing the same
 * label as (x, y) get corrections to `label`; one undo step. Returns the
 * pixels changed (0 outside the map, when the region already shows label, or
 * when memory runs out). */
size_t le_fill(LabelEdit *e, int x, int y, int32_t label);

/* Drop every correction as one undo step; false if there were none. */
bool le_clear(LabelEdit *e);

bool le_can_undo(const LabelEdit *e);
bool le_can_redo(const LabelEdit *e);
bool le_undo(LabelEdit *e);
bool le_redo(LabelEdit *e);
/* The rectangle [x0,x1) x [y0,y1) of the corrections changed since the last
 * call (by edits, undo, redo, drops or renumbering); false (and an empty
 * rectangle) when none changed. Resets it. */
bool le_take_dirty(LabelEdit *e, int *x0, int *y0, int *x1, int *y1);

/* Bytes held by the undo and redo steps. */
size_t le_undo_bytes(const LabelEdit *e);

/* The keep rule for a new grouping (group[k] in 0..ngroups-1 for each of the
 * q prototypes). The first call only records the grouping (LE_NEW). */
LeRegroup le_regroup(LabelEdit *e, const int32_t *group, int q);

#endif
