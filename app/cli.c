/* cli: see cli.h */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pool.h"

void cli_model_args_init(CliModelArgs *a)
{
    memset(a, 0, sizeof *a);
    as_segment_options_default(&a->sopt);
    a->merge_threshold = 2.0f;
}

const char cli_model_help[] =
    "Model:\n"
    "  -m, --model FILE       AlignSeg checkpoint (.pth/.safetensors), a decoder-only file\n"
    "                         (then also give -b), or a DINO backbone alone (prototypes are\n"
    "                         then found per image by spherical k-means)\n"
    "  -b, --backbone FILE    DINO ViT backbone supplying the encoder\n"
    "      --encoder-heads H  encoder attention heads (default: width/64, as DINO's models)\n"
    "      --decoder-heads H  decoder attention heads (default 3, as the published models)\n"
    "Input and segmentation:\n"
    "      --size S           square model input SxS (default 448, as the reference evaluation)\n"
    "      --long-side S      keep the aspect ratio; longer side about S, both sides multiples\n"
    "                         of the patch size (overrides --size)\n"
    "      --prototypes K     backbone-only mode: number of k-means prototypes (default 5)\n"
    "      --threshold T      fraction of CLS attention mass kept as foreground (default 0.6)\n"
    "      --merge-to K       merge adapted prototypes (average-linkage, cosine) until K remain\n"
    "      --merge-threshold T  merge prototypes whose cosine similarity is at least T\n"
    "      --threads N        CPU threads for the matrix products (default: all cores)\n";

bool cli_parse_int(const char *cmd, const char *opt, const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "alignseg %s: %s needs a whole number from %d to %d (got '%s')\n", cmd,
                opt, lo, hi, s ? s : "");
        return false;
    }
    *out = (int)v;
    return true;
}

bool cli_parse_double(const char *cmd, const char *opt, const char *s, double lo, double hi,
                      double *out)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || errno || *end || end == s || !(v >= lo && v <= hi)) {
        fprintf(stderr, "alignseg %s: %s needs a number from %g to %g (got '%s')\n", cmd, opt, lo,
                hi, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_float(const char *cmd, const char *opt, const char *s, double lo, double hi,
                     float *out)
{
    double v;
    if (!cli_parse_double(cmd, opt, s, lo, hi, &v))
        return false;
    *out = (float)v;
    return true;
}

bool cli_parse_string(const char *cmd, const char *opt, const char *s, const char **out)
{
    if (!s) {
        fprintf(stderr, "alignseg %s: %s needs a value\n", cmd, opt);
        return false;
    }
    *out = s;
    return true;
}

bool cli_parse_choice(const char *cmd, const char *opt, const char *s, const char *const *names,
                      int n, int *out)
{
    for (int k = 0; s && k < n; k++)
        if (!strcmp(s, names[k])) {
            *out = k;
            return true;
        }
    fprintf(stderr, "alignseg %s: %s is one of", cmd, opt);
    for (int k = 0; k < n; k++)
        fprintf(stderr, "%s %s", k == 0 ? "" : k == n - 1 ? " or" : ",", names[k]);
    fprintf(stderr, " (got '%s')\n", s ? s : "");
    return false;
}

int cli_model_option(CliModelArgs *a, const char *cmd, int argc, char **argv, int *i)
{
    const char *o = argv[*i];
    const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    bool ok = true;
#define IS(x) (!strcmp(o, x))
    if (IS("-m") || IS("--model")) {
        a->model = v;
    } else if (IS("-b") || IS("--backbone")) {
        a->backbone = v;
    } else if (IS("--encoder-heads")) {
        ok = cli_parse_int(cmd, o, v, 1, 1024, &a->mopt.encoder_heads);
    } else if (IS("--decoder-heads")) {
        ok = cli_parse_int(cmd, o, v, 1, 1024, &a->mopt.decoder_heads);
    } else if (IS("--size")) {
        ok = cli_parse_int(cmd, o, v, 8, 8192, &a->sopt.size);
    } else if (IS("--long-side")) {
        ok = cli_parse_int(cmd, o, v, 8, 8192, &a->sopt.long_side);
    } else if (IS("--prototypes")) {
        ok = cli_parse_int(cmd, o, v, 1, 256, &a->sopt.prototypes);
    } else if (IS("--threshold")) {
        ok = cli_parse_float(cmd, o, v, 0.0, 1.0, &a->sopt.mass_threshold);
    } else if (IS("--merge-to")) {
        ok = cli_parse_int(cmd, o, v, 1, 4096, &a->merge_to);
    } else if (IS("--merge-threshold")) {
        ok = cli_parse_float(cmd, o, v, -1.0, 2.0, &a->merge_threshold);
    } else if (IS("--threads")) {
        ok = cli_parse_int(cmd, o, v, 0, 1024, &a->threads);
    } else {
        return 0;
    }
#undef IS
    if (!v) {
        fprintf(stderr, "alignseg %s: %s needs a value\n", cmd, o);
        return -1;
    }
    if (!ok)
        return -1;
    *i += 1;
    return 1;
}

void cli_set_threads(int threads)
{
    as_pool_set_threads(threads);
}

int cli_load_model(const CliModelArgs *a, const char *cmd, AsModel **out)
{
    if (!a->model) {
        fprintf(stderr, "alignseg %s: no model: give -m FILE (see 'alignseg %s --help')\n", cmd,
                cmd);
        return -1;
    }
    cli_set_threads(a->threads);
    AsError err;
    as_error_clear(&err);
    if (as_model_load(a->model, a->backbone, &a->mopt, out, &err) != 0) {
        fprintf(stderr, "alignseg %s: %s\n", cmd, err.msg);
        return -1;
    }
    return 0;
}

const char *cli_stem(const char *path, char *buf, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(buf, len, "%s", base);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf)
        *dot = '\0';
    return buf;
}

int cli_mkdirs(const char *cmd, const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
        fprintf(stderr, "alignseg %s: path too long: %s\n", cmd, path);
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "alignseg %s: cannot create %s: %s\n", cmd, tmp, strerror(errno));
                return -1;
            }
            *p = '/';
        }
    }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "alignseg %s: cannot create %s: %s\n", cmd, tmp, strerror(errno));
        return -1;
    }
    return 0;
}
