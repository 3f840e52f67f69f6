/* api_export: alignseg/export.h over the exporter of core/output/export.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "export.h"

_Static_assert((int)ALIGNSEG_EXPORT_VOC == (int)AS_EXPORT_VOC &&
                   (int)ALIGNSEG_EXPORT_MASKS == (int)AS_EXPORT_MASKS &&
                   (int)ALIGNSEG_EXPORT_COCO == (int)AS_EXPORT_COCO &&
                   (int)ALIGNSEG_EXPORT_LABELME == (int)AS_EXPORT_LABELME &&
                   (int)ALIGNSEG_EXPORT_ALL == (int)AS_EXPORT_ALL,
               "the public export flags are the core's");

struct AlignsegExporter {
    AsExporter *x;
};

void alignseg_export_options_init(AlignsegExportOptions *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->formats = ALIGNSEG_EXPORT_ALL;
    o->polygon_epsilon = AS_EXPORT_POLYGON_EPSILON;
}

int alignseg_exporter_open(const char *outdir, const AlignsegModel *model,
                           const AlignsegExportOptions *o, AlignsegExporter **out, AsError *err)
{
    if (!out)
        return as_error_set(err, AS_ERR_ARG, "alignseg_exporter_open: out is NULL");
    *out = NULL;
    if (!outdir)
        return as_error_set(err, AS_ERR_ARG, "alignseg_exporter_open: no folder");
    AlignsegExportOptions d;
    alignseg_export_options_init(&d);
    if (!o)
        o = &d;
    if (!o->formats || (o->formats & ~(unsigned)ALIGNSEG_EXPORT_ALL) ||
        !(o->polygon_epsilon >= 0.0 && o->polygon_epsilon <= 1e6))
        return as_error_set(err, AS_ERR_ARG, "alignseg_exporter_open: bad options");
    char gen[64];
    snprintf(gen, sizeof gen, "libalignseg %s", alignseg_version());
    AsExportOptions eo;
    as_export_options_default(&eo);
    eo.formats = o->formats;
    eo.polygon_epsilon = o->polygon_epsilon;
    eo.generator = o->generator ? o->generator : gen;
    if (model && model->m) {
        eo.model = model->m->source;
        eo.untrained = model->m->untrained;
    }
    AlignsegExporter *x = calloc(1, sizeof *x);
    if (!x)
        return as_error_set(err, AS_ERR_NOMEM, "out of memory");
    int rc = as_exporter_open(outdir, &eo, &x->x, err);
    if (rc) {
        free(x);
        return rc;
    }
    *out = x;
    return 0;
}

int alignseg_exporter_add(AlignsegExporter *x, const char *name, const char *image_path,
                          const AlignsegResult *r, AsError *err)
{
    if (!x || !name || !image_path || !r)
        return as_error_set(err, AS_ERR_ARG, "alignseg_exporter_add: missing argument");
    int rc = as_exporter_add(x->x, name, image_path, r->labels, r->img.w, r->img.h, r->ngroups,
                             err);
    if (!rc) /* recorded for the image just added */
        as_exporter_set_input_size(x->x, r->r.in_w, r->r.in_h);
    return rc;
}

int alignseg_exporter_finish(AlignsegExporter *x, AsError *err)
{
    if (!x)
        return as_error_set(err, AS_ERR_ARG, "alignseg_exporter_finish: no exporter");
    return as_exporter_finish(x->x, err);
}

void alignseg_exporter_free(AlignsegExporter *x)
{
    if (!x)
        return;
    as_exporter_free(x->x);
    free(x);
}
