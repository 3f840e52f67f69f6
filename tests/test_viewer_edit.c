/* test_viewer_edit: ui/labeledit, the label-map corrections of the viewer.
 * Every expected map below is written out by hand from the rules in
 * labeledit.h (disc membership by pixel centres, 4-connected regions, undo
 * steps, the keep rule), not produced by the code. */
#include "check.h"

#include "labeledit.h"

#define W 5
#define H 4

/* the model's labels: three groups */
static const int32_t BASE[W * H] = {
    0, 0, 1, 1, 1, /* */
    0, 0, 1, 1, 1, /* */
    2, 2, 2, 1, 1, /* */
    2, 2, 2, 2, 1,
};

static int same_map(const LabelEdit *e, const int32_t *want, const char *what)
{
    const int32_t *got = le_labels(e);
    for (int i = 0; i < W * H; i++)
        if (got[i] != want[i]) {
            fprintf(stderr, "%s: pixel (%d, %d) is %d, expected %d\n", what, i % W, i / W,
                    (int)got[i], (int)want[i]);
            return 0;
        }
    return 1;
}

static LabelEdit *fresh(size_t limit)
{
    LabelEdit *e = le_new(W, H, 0, limit);
    if (e)
        le_set_base(e, BASE);
    return e;
}

static void test_brush_eraser(void)
{
    LabelEdit *e = fresh(1 << 20);
    CHECK(e != NULL, "le_new");
    if (!e)
        return;
    CHECK(same_map(e, BASE, "no corrections"), "base shown");
    CHECK(!le_can_undo(e) && !le_can_redo(e), "nothing to undo");
    /* radius 1 around the centre of pixel (2,1): the centres at distance 1
     * (4-neighbours) are in, the diagonals (1.41) are not */
    CHECK(le_dab(e, 2.5, 1.5, 1.0, 3) == 5, "a plus of 5 pixels");
    static const int32_t plus[W * H] = {
        0, 0, 3, 1, 1, /* */
        0, 3, 3, 3, 1, /* */
        2, 2, 3, 1, 1, /* */
        2, 2, 2, 2, 1,
    };
    CHECK(same_map(e, plus, "after the plus"), "plus painted");
    /* the changed rectangle: columns 1..3, rows 0..2 */
    int x0, y0, x1, y1;
    CHECK(le_take_dirty(e, &x0, &y0, &x1, &y1) && x0 == 1 && y0 == 0 && x1 == 4 && y1 == 3,
          "dirty [%d,%d) x [%d,%d), expected [1,4) x [0,3)", x0, x1, y0, y1);
    CHECK(!le_take_dirty(e, &x0, &y0, &x1, &y1), "taken: nothing more");
    CHECK(le_correction_count(e) == 5, "5 corrections, got %zu", le_correction_count(e));
    /* radius 1.5: the diagonals (1.41) are in too: a 3x3 block, clipped at the edge */
    CHECK(le_dab(e, 0.5, 0.5, 1.5, 4) == 4, "a 2x2 corner");
    static const int32_t corner[W * H] = {
        4, 4, 3, 1, 1, /* */
        4, 4, 3, 3, 1, /* */
        2, 2, 3, 1, 1, /* */
        2, 2, 2, 2, 1,
    };
    CHECK(same_map(e, corner, "after the corner"), "corner painted");
    /* radius 0: only the pixel under the centre */
    CHECK(le_dab(e, 0.2, 3.7, 0.0, 1) == 1, "one pixel");
    /* the eraser gives the model's label back: (1,1) base 0, (2,1) base 1 */
    le_stroke_begin(e);
    le_dab(e, 1.5, 1.5, 0.0, LE_NONE);
    le_dab(e, 2.5, 1.5, 0.0, LE_NONE);
    CHECK(le_stroke_end(e), "the eraser stroke is a step");
    static const int32_t erased[W * H] = {
        4, 4, 3, 1, 1, /* */
        4, 0, 1, 3, 1, /* */
        2, 2, 3, 1, 1, /* */
        1, 2, 2, 2, 1,
    };
    CHECK(same_map(e, erased, "after erasing"), "erased");
    CHECK(le_correction_count(e) == 7, "7 corrections, got %zu", le_correction_count(e));
    /* a slider move changes the model's labels: corrections stay on top */
    int32_t moved[W * H];
    for (int i = 0; i < W * H; i++)
        moved[i] = 255; /* all background */
    le_set_base(e, moved);
    static const int32_t over_bg[W * H] = {
        4, 4, 3, 255, 255, /* */
        4, 255, 255, 3, 255, /* */
        255, 255, 3, 255, 255, /* */
        1, 255, 255, 255, 255,
    };
    CHECK(same_map(e, over_bg, "over a new base"), "corrections over a new base");
    le_set_base(e, BASE);
    /* undo the eraser stroke (one step for both dabs), then the one pixel */
    CHECK(le_undo(e), "undo 1");
    static const int32_t undo1[W * H] = {
        4, 4, 3, 1, 1, /* */
        4, 4, 3, 3, 1, /* */
        2, 2, 3, 1, 1, /* */
        1, 2, 2, 2, 1,
    };
    CHECK(same_map(e, undo1, "undo the eraser"), "eraser undone");
    le_take_dirty(e, &x0, &y0, &x1, &y1);
    CHECK(le_undo(e), "undo 2");
    /* undoing the one pixel (0,3) dirties just it */
    CHECK(le_take_dirty(e, &x0, &y0, &x1, &y1) && x0 == 0 && y0 == 3 && x1 == 1 && y1 == 4,
          "undo dirty [%d,%d) x [%d,%d), expected [0,1) x [3,4)", x0, x1, y0, y1);
    CHECK(same_map(e, corner, "undo the pixel"), "pixel undone");
    CHECK(le_can_redo(e), "redo possible");
    CHECK(le_redo(e), "redo 1");
    CHECK(same_map(e, undo1, "redo the pixel"), "pixel redone");
    CHECK(le_redo(e), "redo 2");
    CHECK(same_map(e, erased, "redo the eraser"), "eraser redone");
    CHECK(!le_redo(e), "nothing more to redo");
    /* a new edit after an undo forgets the redo steps */
    CHECK(le_undo(e), "undo again");
    CHECK(le_dab(e, 4.5, 3.5, 0.0, 0) == 1, "a new pixel");
    CHECK(!le_can_redo(e), "redo forgotten after a new edit");
    /* a dab that changes nothing makes no step */
    size_t before = le_undo_bytes(e);
    CHECK(le_dab(e, 4.5, 3.5, 0.0, 0) == 0, "same label again");
    CHECK(le_undo_bytes(e) == before, "no step for no change");
    /* all the way back */
    while (le_undo(e))
        ;
    CHECK(same_map(e, BASE, "undo everything"), "all undone");
    CHECK(le_correction_count(e) == 0, "no corrections left");
    le_free(e);
}

static void test_segment(void)
{
    LabelEdit *e = fresh(1 << 20);
    if (!e)
        return;
    /* along row 0, radius 0: dabs every 0.5 pixel hit every pixel of the row */
    CHECK(le_segment(e, 0.5, 0.5, 4.5, 0.5, 0.0, 7) == 5, "a row");
    static const int32_t row[W * H] = {
        7, 7, 7, 7, 7, /* */
        0, 0, 1, 1, 1, /* */
        2, 2, 2, 1, 1, /* */
        2, 2, 2, 2, 1,
    };
    CHECK(same_map(e, row, "segment"), "segment painted");
    CHECK(le_undo(e) && same_map(e, BASE, "segment undone"), "one step");
    CHECK(!le_can_undo(e), "a segment is one step");
    le_free(e);
}

static void test_fill(void)
{
    LabelEdit *e = fresh(1 << 20);
    if (!e)
        return;
    /* the 0-region (2x2 top left) becomes 1 */
    CHECK(le_fill(e, 0, 0, 1) == 4, "4 pixels");
    static const int32_t f1[W * H] = {
        1, 1, 1, 1, 1, /* */
        1, 1, 1, 1, 1, /* */
        2, 2, 2, 1, 1, /* */
        2, 2, 2, 2, 1,
    };
    CHECK(same_map(e, f1, "fill 1"), "fill 1");
    /* now the 1-region is connected to them: 13 pixels become 2 */
    CHECK(le_fill(e, 4, 0, 2) == 13, "13 pixels");
    int32_t all2[W * H];
    for (int i = 0; i < W * H; i++)
        all2[i] = 2;
    CHECK(same_map(e, all2, "fill 2"), "fill 2");
    CHECK(le_correction_count(e) == 13, "13 corrections");
    CHECK(le_fill(e, 2, 2, 2) == 0, "filling with the same label changes nothing");
    CHECK(le_fill(e, 5, 0, 1) == 0 && le_fill(e, -1, 0, 1) == 0, "outside the map");
    CHECK(le_undo(e) && same_map(e, f1, "undo fill 2"), "fill undone");
    /* a diagonal does not connect: the 2-region (bottom left) stops at (3,3) */
    le_free(e);
    e = fresh(1 << 20);
    if (!e)
        return;
    static const int32_t diag[W * H] = {
        0, 1, 1, 1, 1, /* */
        1, 0, 1, 1, 1, /* */
        1, 1, 0, 1, 1, /* */
        1, 1, 1, 0, 1,
    };
    le_set_base(e, diag);
    CHECK(le_fill(e, 0, 0, 5) == 1, "a single pixel region (4-connectivity)");
    le_free(e);
}

static void test_undo_limit(void)
{
    /* a limit of 0 bytes keeps only the newest step */
    LabelEdit *e = fresh(0);
    if (!e)
        return;
    le_dab(e, 0.5, 0.5, 0.0, 9);
    le_dab(e, 1.5, 0.5, 0.0, 9);
    le_dab(e, 2.5, 0.5, 0.0, 9);
    CHECK(le_undo(e), "the newest step is kept");
    CHECK(!le_can_undo(e), "the older ones are forgotten");
    static const int32_t two[W * H] = {
        9, 9, 1, 1, 1, /* */
        0, 0, 1, 1, 1, /* */
        2, 2, 2, 1, 1, /* */
        2, 2, 2, 2, 1,
    };
    CHECK(same_map(e, two, "after the one undo"), "older steps stay applied");
    le_free(e);
    /* a limit that holds two one-pixel steps but not three (a step is its
     * struct plus 8 bytes per pixel; measure one) */
    e = fresh(1 << 20);
    if (!e)
        return;
    le_dab(e, 0.5, 0.5, 0.0, 9);
    size_t one = le_undo_bytes(e);
    le_free(e);
    e = fresh(2 * one);
    if (!e)
        return;
    le_dab(e, 0.5, 0.5, 0.0, 9);
    le_dab(e, 1.5, 0.5, 0.0, 9);
    le_dab(e, 2.5, 0.5, 0.0, 9);
    CHECK(le_undo_bytes(e) <= 2 * one, "bytes %zu within the limit %zu", le_undo_bytes(e),
          2 * one);
    CHECK(le_undo(e) && le_undo(e) && !le_undo(e), "two steps kept");
    le_free(e);
}

static void test_keep_rule(void)
{
    LabelEdit *e = fresh(1 << 20);
    if (!e)
        return;
    const int32_t a[4] = { 0, 1, 1, 2 }; /* prototypes 1 and 2 merged */
    CHECK(le_regroup(e, a, 4) == LE_NEW, "first grouping recorded");
    le_dab(e, 0.5, 0.5, 0.0, 2); /* (0,0): group 2 = prototype 3 */
    le_dab(e, 4.5, 3.5, 0.0, 1); /* (4,3): group 1 = prototypes 1+2 */
    int32_t want[W * H];
    memcpy(want, BASE, sizeof want);
    want[0] = 2;
    want[19] = 1;
    CHECK(le_regroup(e, a, 4) == LE_KEPT && same_map(e, want, "same grouping"), "kept");
    /* a slider move that changes the grouping: dropped */
    const int32_t c[4] = { 0, 0, 1, 2 }; /* prototypes 0 and 1 merged */
    CHECK(le_regroup(e, c, 4) == LE_DROPPED, "dropped");
    CHECK(same_map(e, BASE, "dropped") && le_correction_count(e) == 0, "model labels back");
    /* undoing the drop: each old group follows its smallest prototype,
     * group 2 (prototype 3) -> c[3] = 2, group 1 (prototypes 1, 2) -> c[1] = 0 */
    CHECK(le_undo(e), "the drop can be undone");
    want[0] = 2;
    want[19] = 0;
    CHECK(same_map(e, want, "drop undone"), "corrections back in the new grouping");
    /* the same partition numbered differently: labels follow */
    const int32_t d[4] = { 1, 1, 0, 2 };
    CHECK(le_regroup(e, d, 4) == LE_KEPT, "renumbered partition kept");
    want[19] = 1;
    CHECK(same_map(e, want, "renumbered"), "labels renumbered");
    /* the older steps were renumbered too: undo the drop's undo, redo it */
    CHECK(le_redo(e) && same_map(e, BASE, "drop redone"), "drop redone");
    CHECK(le_undo(e) && same_map(e, want, "drop undone again"), "drop undone in d's numbers");
    /* a different prototype count is a new grouping */
    const int32_t three[3] = { 0, 1, 2 };
    CHECK(le_regroup(e, three, 3) == LE_DROPPED, "q changed: dropped");
    CHECK(le_regroup(e, three, 3) == LE_KEPT, "then kept");
    /* nothing to drop */
    LabelEdit *f = fresh(1 << 20);
    if (f) {
        le_regroup(f, a, 4);
        CHECK(le_regroup(f, c, 4) == LE_NEW && !le_can_undo(f), "no corrections: no step");
        le_free(f);
    }
    /* le_clear drops everything as one step */
    CHECK(le_clear(e) == false || le_correction_count(e) == 0, "cleared");
    le_dab(e, 2.5, 2.5, 0.0, 0);
    CHECK(le_clear(e) && le_correction_count(e) == 0, "clear");
    CHECK(le_undo(e) && le_labels(e)[12] == 0, "clear undone");
    le_free(e);
    /* a drop keeps only the layer before it: a one-pixel dab costs a step plus
     * 2 x 4 bytes, clearing the 20-pixel map a step plus 20 x 4 (not 2 x 80) */
    e = fresh(1 << 20);
    if (!e)
        return;
    le_dab(e, 0.5, 0.5, 0.0, 1);
    size_t dab = le_undo_bytes(e);
    CHECK(le_clear(e), "cleared");
    CHECK(le_undo_bytes(e) - dab == dab - 8 + 80, "a drop step holds %zu bytes, expected %zu",
          le_undo_bytes(e) - dab, dab - 8 + 80);
    le_free(e);
}

static void test_bad_sizes(void)
{
    CHECK(le_new(0, 4, 0, 0) == NULL && le_new(4, -1, 0, 0) == NULL, "empty maps refused");
    LabelEdit *e = le_new(2, 2, 255, 0);
    CHECK(e && le_labels(e)[3] == 255, "filled with the given label");
    if (e) {
        CHECK(le_dab(e, -10, -10, 2, 1) == 0 && le_dab(e, 1, 1, NAN, 1) == 0,
              "outside or NaN: nothing");
        CHECK(le_dab(e, 1.0, 1.0, 0.8, 1) == 4, "a disc over the 4 centres (0.71 away)");
        le_free(e);
    }
}

int main(void)
{
    test_brush_eraser();
    test_segment();
    test_fill();
    test_undo_limit();
    test_keep_rule();
    test_bad_sizes();
    printf("test_viewer_edit: %d passed, %d failed\n", check_passed_, check_failed_);
    return check_failed_ != 0;
}
