/* window-export.h: the export state that window-export.c (the dataset
 * export) and window-classes.c (the legend's named classes) share. Private to
 * the viewer's window. */
#ifndef ALIGNSEG_WINDOW_EXPORT_H
#define ALIGNSEG_WINDOW_EXPORT_H

#include "window-private.h"

#include "dataset.h"

typedef struct VwExport {
    char *names[AS_MAX_GROUPS];            /* class name of group g, NULL: prototype_<g> */
    AsClass classes[AS_DATASET_MAX_CLASS + 1]; /* the class table (by id, name[0] 0: free) */
    char *table_dir;                       /* the folder the table was read from */
    char *dir;                             /* destination chosen last */
    unsigned formats;
    gboolean hidden_ignore, replace_ok;
    guint job;                             /* the running export, 0: none */
    int32_t *labels;                       /* vw_export_labels' buffer */
    size_t labels_cap;
    GtkWidget *dialog;
} VwExport;

/* the window's export state, made on first use */
VwExport *vw_export_state(ViewerWindow *w);
/* where the export dialog starts: the last export folder, else home */
const char *vw_export_default_dir(ViewerWindow *w);
/* group g's class name ('' or NULL: prototype_<g>), checked and added to the table */
void vw_set_group_class(ViewerWindow *w, int g, const char *name);

#endif
