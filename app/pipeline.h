/* pipeline: run n items through three stages in order, each stage on its own
 * thread, so that reading item i+1 and writing item i-1 overlap the work on
 * item i (segment/export: decode, network, encode + write). The middle stage
 * runs on the calling thread (the network keeps the core thread pool); the
 * others on one thread each. Every stage sees the items in order 0..n-1; one
 * item waits between stages, so at most 5 are alive at once. */
#ifndef ALIGNSEG_PIPELINE_H
#define ALIGNSEG_PIPELINE_H

/* Each stage gets the item index and the context. */
typedef void (*PipelineFn)(int i, void *ctx);

/* Returns 0, or -1 when a thread could not be started (then the stages ran
 * one after the other on the calling thread). */
int pipeline_run(int n, PipelineFn read, PipelineFn work, PipelineFn write, void *ctx);

#endif
