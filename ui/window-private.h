/* window-private: the ViewerWindow instance struct and the functions the
 * window's source files share. The window is split the way GNOME applications
 * split one:
 *   window.c           lifecycle (class, init, dispose), settings, messages,
 *                      jobs (worker events, model and image loading, files)
 *   window-actions.c   the win.* actions (gtk_widget_class_install_action),
 *                      file dialogs, export, input size, drag and drop
 *   window-views.c     the views: relabelling, legend, patch similarity,
 *                      hover read-outs
 *   window-tiles.c     the attention and prototype tiles, the mass curve,
 *                      colour bars
 *   window-edit.c      corrections before an export: brush, eraser, region,
 *                      undo/redo, the edit.* actions
 *   window-model.c     the Model… dialog (head counts, backbone, recent models)
 *   window-testhooks.c the scripted run: --action, --view, --export,
 *                      --screenshot and --timing
 *   window-export.c    the dataset export (dialog, task on the worker) and
 *                      the legend's class names
 * Only these files include this header. */
#ifndef ALIGNSEG_VIEWER_WINDOW_PRIVATE_H
#define ALIGNSEG_VIEWER_WINDOW_PRIVATE_H

#include "window.h"

#include <glib/gi18n.h>
#include <stdbool.h>
#include <stdint.h>

#include "imgview.h"
#include "labeledit.h"
#include "merge.h"
#include "segment.h"
#include "worker.h"

#ifndef ALIGNSEG_VERSION
#define ALIGNSEG_VERSION "unknown"
#endif

#define APP_ID "io.github.alignseg.Viewer"
#define TIMING_STEPS 24

struct _ViewerWindow {
    GtkApplicationWindow parent;

    /* template children */
    GtkWidget *banner_revealer, *banner_label;
    GtkWidget *progress_revealer, *progress_label, *progress_bar, *spinner;
    GtkWidget *content, *views, *untrained_label, *empty_text, *model_label;
    GtkWidget *seg_area, *attn_grid, *attn_scale, *proto_grid, *proto_scale;
    GtkWidget *sim_area, *sim_label, *sim_scale;
    GtkWidget *k_scale, *merge_scale, *mass_scale, *opacity_scale;
    GtkWidget *contours_check, *fg_check, *smooth_check, *head_dropdown, *legend;
    GtkWidget *size_row, *size_dropdown, *aspect_check;
    GtkWidget *notice_revealer, *notice_label, *notice_rerun, *nomodel_revealer;
    GtkWidget *fg_area; /* the attention view's foreground-mask tile */
    GtkWidget *mass_curve, *mass_label;
    float *mass_cum;    /* (n) cumulative attention-mass curve of the result */
    GtkWidget *switcher, *switcher_scroller, *bottom_switcher;
    guint narrow_idle;
    int size_choices[8], n_size_choices;
    GtkWidget *status_label, *hover_label, *side_panel;
    GtkAdjustment *k_adj, *merge_adj, *mass_adj, *opacity_adj;

    GSettings *settings; /* NULL when the schema is not installed */
    ViewerOptions opt;
    char *opt_model, *opt_backbone, *opt_screenshot, *opt_view, *opt_export, *opt_hold;
    gboolean holding; /* --hold: waiting for its file */
    char **opt_actions;    /* --action, run in order once the first result shows */
    int next_action;       /* index of the next one to run */
    guint action_tick_id;  /* the tick callback running them, 0 if none */
    gboolean view_applied; /* --view was applied */
    gboolean exported;
    gboolean filling_sizes; /* the size drop-down is being refilled: not a user choice */
    int input_size;
    gboolean keep_aspect; /* input keeps the photo's aspect, longer side input_size */
    gboolean cancelled;   /* the current image's job was cancelled */
    gboolean failed;      /* the current image could not be read or segmented */

    Worker *worker;
    ViewerModel *model;
    guint model_job, image_job, last_job, done_job;
    char *model_path, *backbone_path; /* of the model being loaded or loaded */
    ViewerImage *image;
    ViewerResult *result;

    GPtrArray *files; /* char* */
    int file_index;

    /* derived from result + sliders */
    int ngroups;
    int32_t *group;   /* (q) */
    bool *visible;    /* (q) per prototype */
    int isolate;      /* prototype, or -1 */
    uint8_t *fg;      /* (n) */
    int32_t *labels;  /* (in_h * in_w) */
    double *share;    /* (q) */
    cairo_surface_t *label_surface;
    guint relabel_idle;
    gint64 relabel_us;
    gboolean legend_building;
    int legend_groups;          /* groups shown in the legend (-1: rebuild) */
    int32_t *legend_sig;        /* group of each prototype when the legend was built */
    GtkWidget *legend_share[AS_MAX_GROUPS], *legend_check[AS_MAX_GROUPS];
    GtkWidget *legend_name[AS_MAX_GROUPS];

    /* similarity view */
    int sim_patch;
    gboolean sim_pinned;
    float *sim_values;
    float sim_lo, sim_hi;

    ImgView *seg_view, *sim_view;

    /* tiles (window-tiles.c) */
    gboolean tiles_shared;          /* one colour scale for all maps of a view */
    GtkWidget *shared_check[2];
    struct DetailView *detail;      /* the map page */
    char *detail_id, *detail_from;  /* the map it shows, the view it came from */

    /* corrections (window-edit.c) */
    LabelEdit *edit;                /* at the photo's size, NULL until the first one */
    char *edit_path;                /* the photo they belong to */
    GHashTable *edit_kept;          /* path -> LabelEdit of the other photos corrected */
    guint edit_scroll_tick;         /* scrolling the tools into view, 0 if not */
    int edit_scroll_frames;
    cairo_surface_t *edit_surface;  /* the corrections' colours, photo size (ARGB32) */
    cairo_surface_t *edit_mask;     /* where there are corrections (A8) */
    GBytes *edit_base_key;          /* what the editor's base was computed for */
    char *edit_look;                /* groups shown and contours when last painted */
    int edit_tool;
    gboolean edit_stroke, edit_pointer;
    double edit_lx, edit_ly;        /* last stroke point, photo pixels */
    double edit_px, edit_py;        /* pointer, widget coordinates */
    char *edit_class_names;         /* the class chooser's entries, "\n"-separated */
    GtkWidget *edit_tool_buttons[4], *edit_class_dropdown, *edit_size_spin;
    GtkWidget *edit_undo_button, *edit_redo_button, *edit_label, *edit_expander;

    /* screenshot / timing */
    gboolean shot_started;
    int shot_frames;
    int exit_status;
    int timing_step;
    gint64 timing_t0;
    double timing_frame_ms[TIMING_STEPS], timing_relabel_ms[TIMING_STEPS];
    gulong after_paint_id;
};

/* window.c */
void vw_set_exit(ViewerWindow *w, int status);
void vw_show_error(ViewerWindow *w, const char *msg);
void vw_hide_error(ViewerWindow *w);
/* an information strip (e.g. where an export went) until dismissed or
 * replaced; offer_rerun adds a Segment Again button */
void vw_show_notice(ViewerWindow *w, const char *msg, gboolean offer_rerun);
const char *vw_stage_name(const char *stage);
void vw_progress_show(ViewerWindow *w, const char *text, double fraction);
void vw_progress_hide(ViewerWindow *w);
void vw_update_status(ViewerWindow *w);
void vw_update_model_ui(ViewerWindow *w);
void vw_segment_current(ViewerWindow *w);
void vw_load_model(ViewerWindow *w, const char *path, const char *backbone, gboolean random);
void vw_step_image(ViewerWindow *w, int step);
/* the photo shown is not the current file (a job for another one was
 * cancelled before it read its file): forget its picture and result */
void vw_drop_other_image(ViewerWindow *w);
/* a non-empty string setting, newly allocated, or NULL */
char *vw_settings_get_path(ViewerWindow *w, const char *key);

/* window-actions.c */
void vw_actions_class_init(GtkWidgetClass *wc);
void vw_actions_init(ViewerWindow *w);
void vw_export_to(ViewerWindow *w, const char *dir);
void vw_size_dropdown_fill(ViewerWindow *w);

/* window-model.c */
void vw_model_dialog_show(ViewerWindow *w);
/* put path first in the recent-models setting */
void vw_recent_models_add(ViewerWindow *w, const char *path);

/* window-views.c */
void vw_views_class_init(GtkWidgetClass *wc);
void vw_views_init(ViewerWindow *w);
void vw_relabel(ViewerWindow *w);
void vw_schedule_relabel(ViewerWindow *w);
void vw_rebuild_tiles(ViewerWindow *w);
void vw_update_similarity(ViewerWindow *w);
/* a new result: per-result arrays, K range, head chooser, views */
void vw_views_set_result(ViewerWindow *w, ViewerResult *r);
void vw_free_result_arrays(ViewerWindow *w);
/* group g is shown (legend toggles, isolation) */
bool vw_group_visible(ViewerWindow *w, int g);
/* a colour swatch of group g, size px square */
GtkWidget *vw_swatch_new(int g, int size);

/* window-tiles.c */
void vw_tiles_init(ViewerWindow *w);
void vw_tiles_rebuild_protos(ViewerWindow *w);
/* after a relabel: swatches follow the groups, the mass read-out the slider */
void vw_tiles_follow_groups(ViewerWindow *w);
/* the smoothing choice changed */
void vw_tiles_redraw(ViewerWindow *w);
void vw_update_mass(ViewerWindow *w);
/* a gw x gh viridis surface of v from its minimum to its maximum (returned) */
cairo_surface_t *vw_heat_surface(const float *v, int gw, int gh, float *lo, float *hi);
gboolean vw_smooth(ViewerWindow *w);
/* a colour bar numbered from lo to hi (NaN: no common numbers) with caption */
void vw_scale_set(GtkWidget *a, double lo, double hi, const char *caption);
void vw_tiles_class_init(GtkWidgetClass *wc);
void vw_tiles_free(ViewerWindow *w);
/* the map page shows map id (see window-tiles.c: "attention:mean", ...) */
void vw_tiles_show_detail(ViewerWindow *w, const char *id);

/* window-edit.c */
void vw_edit_class_init(GtkWidgetClass *wc);
void vw_edit_init(ViewerWindow *w);
void vw_edit_free(ViewerWindow *w);
/* after every relabel: corrections follow the sliders (keep rule), overlay */
void vw_edit_relabel(ViewerWindow *w);
/* the correction of photo pixel (x, y), or LE_NONE */
int32_t vw_edit_correction_at(ViewerWindow *w, int x, int y);
/* imgview drawing hook of the segmentation view (corrections, the brush) */
void vw_edit_draw(ImgView *v, cairo_t *cr, gpointer data);
/* The corrected label map of the current photo (width x height, group numbers
 * as the relabelled map, AS_LABEL_BACKGROUND for background), or NULL when it
 * has no corrections or another size. Owned by the window; valid until the
 * next relabel or edit. Computes the model's labels at that size once per
 * slider setting (as the export does). */
const int32_t *vw_edit_export_labels(ViewerWindow *w, int width, int height);

/* window-export.c */
void vw_export_class_init(GtkWidgetClass *wc);
/* The label map the export writes for the current image (image size, values
 * 0..ngroups-1 or AS_LABEL_BACKGROUND), NULL if none; owned by the window,
 * valid until the next call. */
const int32_t *vw_export_labels(ViewerWindow *w, int *width, int *height);
/* The class name given to group g (NULL: none, exported as prototype_<g>). */
const char *vw_group_class(ViewerWindow *w, int g);
/* The legend's text for group g, members e.g. "0+2" (newly allocated). */
char *vw_group_label(ViewerWindow *w, int g, const char *members);
/* The legend's pencil button: a menu naming group g's class. */
GtkWidget *vw_class_button_new(ViewerWindow *w, int g);

/* window-testhooks.c */
void vw_testhooks_start(ViewerWindow *w);
/* a job ended (or none was started): run what the command line asked for */
void vw_maybe_finish_startup(ViewerWindow *w);

#endif
