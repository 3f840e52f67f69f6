/* pipeline: see pipeline.h */
#include "pipeline.h"

#include <pthread.h>
#include <stdbool.h>

/* A one-slot hand-over between two stages: the index of the item ready for
 * the next stage, -1 when empty. */
typedef struct {
    pthread_mutex_t m;
    pthread_cond_t c;
    int ready; /* items handed over so far */
    int taken; /* items the next stage took */
} Slot;

typedef struct {
    int n;
    PipelineFn read, write;
    void *ctx;
    Slot a, b; /* read -> work, work -> write */
} Pipe;

static void slot_init(Slot *s)
{
    pthread_mutex_init(&s->m, NULL);
    pthread_cond_init(&s->c, NULL);
    s->ready = s->taken = 0;
}

static void slot_destroy(Slot *s)
{
    pthread_mutex_destroy(&s->m);
    pthread_cond_destroy(&s->c);
}

/* hand item over; waits while the previous one was not taken */
static void slot_put(Slot *s)
{
    pthread_mutex_lock(&s->m);
    while (s->ready > s->taken)
        pthread_cond_wait(&s->c, &s->m);
    s->ready++;
    pthread_cond_broadcast(&s->c);
    pthread_mutex_unlock(&s->m);
}

/* take the next item; waits until it is there */
static void slot_take(Slot *s)
{
    pthread_mutex_lock(&s->m);
    while (s->ready == s->taken)
        pthread_cond_wait(&s->c, &s->m);
    s->taken++;
    pthread_cond_broadcast(&s->c);
    pthread_mutex_unlock(&s->m);
}

static void *reader(void *arg)
{
    Pipe *p = arg;
    for (int i = 0; i < p->n; i++) {
        p->read(i, p->ctx);
        slot_put(&p->a);
    }
    return NULL;
}

static void *writer(void *arg)
{
    Pipe *p = arg;
    for (int i = 0; i < p->n; i++) {
        slot_take(&p->b);
        p->write(i, p->ctx);
    }
    return NULL;
}

int pipeline_run(int n, PipelineFn read, PipelineFn work, PipelineFn write, void *ctx)
{
    Pipe p;
    p.n = n;
    p.read = read;
    p.write = write;
    p.ctx = ctx;
    slot_init(&p.a);
    slot_init(&p.b);
    pthread_t tr, tw;
    bool have_r = pthread_create(&tr, NULL, reader, &p) == 0;
    bool have_w = have_r && pthread_create(&tw, NULL, writer, &p) == 0;
    int rc = 0;
    if (!have_w) {
        if (have_r) { /* let the reader run alone; consume its hand-overs */
            for (int i = 0; i < n; i++) {
                slot_take(&p.a);
                work(i, ctx);
                write(i, ctx);
            }
            pthread_join(tr, NULL);
        } else {
            for (int i = 0; i < n; i++) {
                read(i, ctx);
                work(i, ctx);
                write(i, ctx);
            }
        }
        rc = -1;
    } else {
        for (int i = 0; i < n; i++) {
            slot_take(&p.a);
            work(i, ctx);
            slot_put(&p.b);
        }
        pthread_join(tr, NULL);
        pthread_join(tw, NULL);
    }
    slot_destroy(&p.a);
    slot_destroy(&p.b);
    return rc;
}
