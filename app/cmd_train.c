/* cmd_train: the 'alignseg train' sub-command: reads the options (their
 * limits are core's table, train_options.h), runs as_train_run (train_run.h:
 * the decoder and prototypes trained on a folder of images with the frozen
 * DINO encoder, METHOD.md section 5) and prints its progress. Ctrl-C stops at
 * the next batch and saves a resumable RUNDIR/interrupted.pth. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "train_run.h"

#define CMD "alignseg train"

static volatile sig_atomic_t g_stop = 0;

static void on_sigint(int sig)
{
    (void)sig;
    g_stop = 1;
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C ends at once */
}

typedef struct {
    AsTrainOptions t;
    int log_every;
} Opts;

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: " CMD " -b DINO_BACKBONE --images DIR -o RUNDIR [OPTIONS]\n"
            "       " CMD " --resume RUNDIR/epochN.pth --images DIR -o RUNDIR [OPTIONS]\n"
            "\n"
            "Train the AlignSeg decoder and prototypes on the CPU; the DINO encoder stays frozen.\n"
            "\n"
            "  -b, --backbone FILE       DINO backbone (.pth/.safetensors), ViT-S/B, patch 8/16\n"
            "  --images DIR              folder of JPEG/PNG images (unreadable ones are skipped)\n"
            "  -o, --output RUNDIR       checkpoints (epochN.pth), train_log.csv\n"
            "  --epochs N                (default 10)\n"
            "  --batch N                 images per step (default 32)\n"
            "  --queries Q               prototypes (default 5)\n"
            "  --hidden H                decoder FFN width (default 768)\n"
            "  --layers L                decoder layers (default 1)\n"
            "  --encoder-heads H         encoder heads (default D/64)\n"
            "  --decoder-heads H         decoder heads (default 3)\n"
            "  --lr X                    AdamW learning rate (default 5e-4)\n"
            "  --weight-decay X          on weights, not biases/1-D/prototypes (default 0.04)\n"
            "  --lr-step N, --lr-gamma G learning rate times G every N epochs (default 3, 0.5)\n"
            "  --negative-pressure B     of the correlation loss (default 0.11; COCO 0.10)\n"
            "  --pairing P               reference (default) or same-image\n"
            "  --init-prototypes P       random (default, N(0,1)) or kmeans (of image tokens)\n"
            "  --seed N                  (default 3407)\n"
            "  --resume FILE             continue from a checkpoint written by this command\n"
            "  --crop-size S             crop side in pixels (default 224)\n"
            "  --local-crops N           local crops per image (default 2)\n"
            "  --mass-threshold T        attention mass kept as foreground (default 0.6)\n"
            "  --threads N               CPU threads (default 2; --resume keeps the run's)\n"
            "  --max-steps N             stop after N steps (saves interrupted.pth)\n"
            "  --log-every N             progress line every N steps when not a terminal (10)\n"
            "  --keep-all                keep every epoch's checkpoint (default: the newest)\n"
            "  --random-backbone A       benchmark on a random encoder instead of -b: vit_small16,\n"
            "                            vit_small8, vit_base16 or vit_base8\n"
            "\n"
            "Ctrl-C saves RUNDIR/interrupted.pth; continue with --resume RUNDIR/interrupted.pth.\n");
}

static int parse(Opts *o, int argc, char **argv)
{
    as_train_options_default(&o->t);
    o->log_every = 10;
    AsTrainOptions *t = &o->t;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        const int lim = as_train_limit_find(a);
        double v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        } else if ((!strcmp(a, "-b") || !strcmp(a, "--backbone")) && val) {
            t->backbone = argv[++i];
        } else if (!strcmp(a, "--images") && val) {
            t->images = argv[++i];
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && val) {
            t->rundir = argv[++i];
        } else if (!strcmp(a, "--random-backbone") && val) {
            t->random_arch = argv[++i];
        } else if (!strcmp(a, "--resume") && val) {
            t->resume = argv[++i];
        } else if (lim >= 0 && val) {
            AsError err = { 0 };
            const AsTrainLimit *l = &as_train_limits[lim];
            if (!cli_parse_double("train", a, argv[++i], l->lo, l->hi, &v))
                return 2;
            if (as_train_option_set(t, lim, v, a, &err)) {
                fprintf(stderr, CMD ": %s\n", err.msg);
                return 2;
            }
            t->given |= 1u << lim;
        } else if (!strcmp(a, "--log-every") && val) {
            if (!cli_parse_int("train", a, argv[++i], 1, 1000000000, &o->log_every))
                return 2;
        } else if (!strcmp(a, "--pairing") && val) {
            const char *p = argv[++i];
            if (!as_pairing_parse(p, &t->pairing)) {
                fprintf(stderr, CMD ": --pairing: '%s' is not reference or same-image\n", p);
                return 2;
            }
            t->given |= AS_TRAIN_GIVEN_PAIRING;
        } else if (!strcmp(a, "--init-prototypes") && val) {
            const char *p = argv[++i];
            if (!strcmp(p, "random") || !strcmp(p, "kmeans")) {
                t->kmeans = !strcmp(p, "kmeans");
            } else {
                fprintf(stderr, CMD ": --init-prototypes: '%s' is not random or kmeans\n", p);
                return 2;
            }
        } else if (!strcmp(a, "--keep-all")) {
            t->keep_all = true;
        } else {
            fprintf(stderr, CMD ": unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!t->images || !t->rundir || (!t->backbone && !t->resume && !t->random_arch)) {
        fprintf(stderr, CMD ": need --images DIR, -o RUNDIR and -b BACKBONE (or --resume)\n");
        usage(stderr);
        return 2;
    }
    return 0;
}

/* ---- printing ---- */

typedef struct {
    bool tty;       /* stderr is a terminal: one progress line rewritten in place */
    bool line_open; /* a progress line without its newline is on screen */
    int log_every, steps;
} Printer;

static void close_line(Printer *p)
{
    if (p->line_open)
        fputc('\n', stderr);
    p->line_open = false;
}

static void on_note(void *user, const char *line)
{
    Printer *p = user;
    close_line(p);
    fprintf(stderr, CMD ": %s\n", line);
}

static void fmt_duration(double s, char *buf, size_t len)
{
    if (!(s >= 0) || s > 1e8)
        snprintf(buf, len, "?");
    else if (s >= 3600)
        snprintf(buf, len, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else
        snprintf(buf, len, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

static void on_step(void *user, const AsTrainProgress *s)
{
    Printer *p = user;
    p->steps++;
    if (!p->tty && p->steps % p->log_every != 0 && p->steps != 1)
        return;
    char eta[32];
    fmt_duration(s->eta_s, eta, sizeof eta);
    fprintf(stderr,
            "%sepoch %d/%d step %d/%d | %.2f img/s | ETA %s | loss %.4f (query ce %.4f, "
            "correlation %.4f)%s",
            p->tty ? "\r" : "", s->epoch, s->epochs, s->step, s->steps, s->images_per_s, eta,
            s->loss.loss, s->loss.loss_ce, s->loss.loss_corr, p->tty ? "   " : "\n");
    p->line_open = p->tty;
}

int cmd_train(int argc, char **argv)
{
    Opts o;
    int pr = parse(&o, argc, argv);
    if (pr)
        return pr == 1 ? 0 : 2;
    Printer pt = { isatty(2) != 0, false, o.log_every, 0 };
    const AsTrainEvents ev = { on_note, on_step, &pt, 0, 1, NULL };
    const AsHooks hooks = { (const volatile int *)&g_stop, NULL, NULL };
    AsTrainSummary s;
    AsError err = { 0 };
    signal(SIGINT, on_sigint);
    int rc = as_train_run(&o.t, &hooks, &ev, &s, &err);
    signal(SIGINT, SIG_DFL);
    close_line(&pt);
    if (rc && (rc != AS_ERR_CANCELLED || !s.stopped)) {
        fprintf(stderr, CMD ": %s\n", err.msg);
        return rc == AS_ERR_CANCELLED && g_stop ? 130 : 1;
    }
    if (s.stopped)
        fprintf(stderr, CMD ": %s: saved %s/interrupted.pth (epoch %d, image %d of %d); "
                        "continue with --resume %s/interrupted.pth\n",
                rc == AS_ERR_CANCELLED ? "interrupted (Ctrl-C)" : s.stopped, o.t.rundir,
                s.epoch, s.cursor, s.nimages, o.t.rundir);
    const double total = s.seconds;
    const double step_t = s.time_forward + s.time_backward + s.time_optim + s.time_encoder;
    if (s.steps)
        fprintf(stderr,
                CMD ": %d steps, %ld images in %.1f s: %.2f images/s; time in encoder %.1f%%, "
                    "decoder forward+losses %.1f%%, backward %.1f%%, AdamW %.1f%%, data %.1f%%"
                    "%s\n",
                s.steps, s.images, total, s.images / (total > 0 ? total : 1e-9),
                100 * s.time_encoder / total, 100 * s.time_forward / total,
                100 * s.time_backward / total, 100 * s.time_optim / total,
                100 * s.time_data / total, step_t > total ? " (overlapping)" : "");
    if (s.bad_images)
        fprintf(stderr, CMD ": %d unreadable images were skipped\n", s.bad_images);
    return rc == AS_ERR_CANCELLED && g_stop ? 130 : 0;
}
