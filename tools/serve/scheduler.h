/*
 * scheduler.h - the server's queue and the one thread that runs the model.
 *
 *   HTTP threads ─submit─► queue (bounded: 429 when full) ─► driver thread:
 *       dots_batch_add (preprocess, vision, prefill) ─► dots_batch_step
 *       (one token for every running sequence) ─► dots_batch_take ─► job done
 *
 * Requests join the decode batch as their prefill finishes and leave at EOS
 * (continuous batching). A document job feeds its pages one at a time and
 * goes back to the end of the queue after each, so a long PDF does not hold
 * up the pages behind it. A job whose client went away stops at its next
 * token (its per-token callback says stop) or is dropped from the queue.
 */
#ifndef DOTS_SERVE_SCHEDULER_H
#define DOTS_SERVE_SCHEDULER_H

#include "chat_request.h"

#include <pthread.h>

typedef enum serve_job_kind { SERVE_JOB_CHAT, SERVE_JOB_DOCUMENT } serve_job_kind;

typedef struct serve_job {
    serve_job_kind kind;
    /* set by the submitter, read-only once submitted */
    dots_image img;               /* chat: the decoded image */
    dots_run_params rp;           /* chat: its strings point into req */
    serve_chat_request req;
    dots_document *doc;           /* document: its pages, in order */
    dots_page_options po;         /* its strings point into the job's opt_* */
    char *opt_prompt, *opt_system;
    int32_t *pages;
    int32_t n_pages;
    double t_submit;              /* monotonic seconds: queued */
    double t_begin;               /* its (first) run handed to the batch */

    /* under the scheduler's lock; cond is signalled on every change */
    pthread_cond_t cond;
    int refs;
    bool cancelled;               /* the client went away */
    bool started;                 /* chat: generation under way (or over) */
    bool done;
    dots_status status;           /* chat: how the run ended */
    char error[512];
    dots_run_result res;          /* chat: the result, once done */
    char *text;                   /* chat: the answer so far, for streaming */
    size_t text_len, text_cap;
    bool text_oom;
    int32_t next_page, pages_done;   /* document: pages handed to the batch, finished */
    dots_page_result *page_res;      /* document: [n_pages] */
    dots_status *page_status;
    char (*page_error)[512];
    bool queued;                  /* in the queue (work not yet handed to the batch) */
    struct serve_job *next;
    struct serve_sched *sched;    /* set at submit: the per-token callback locks it */
} serve_job;

typedef struct serve_sched serve_sched;

typedef struct serve_stats {
    int32_t queued, running, batch;  /* waiting jobs, sequences decoding, batch size */
    int32_t active;                  /* jobs accepted and not yet done */
    int32_t max_queue;
    int64_t completed, cancelled, failed, rejected;
    int64_t tokens;                  /* generated since start */
    bool draining;
} serve_stats;

/* Starts the driver thread on a state of model (threads, precision) with a
 * batch of `batch` runs and a queue of max_queue jobs. NULL with the reason
 * in errbuf. */
serve_sched *serve_sched_create(const dots_model *model, int32_t threads, dots_precision precision, int32_t batch,
                                int32_t max_queue, char *errbuf, size_t errlen);
/* Drains (see serve_sched_drain), stops the thread, frees everything. */
void serve_sched_free(serve_sched *s);

/* A new job with one reference (the caller's), or NULL on OOM. */
serve_job *serve_job_new(serve_job_kind kind);
/* Queues job (the scheduler takes its own reference). False with 429 when
 * the queue is full, 503 when draining. */
bool serve_sched_submit(serve_sched *s, serve_job *job, serve_error *err);
/* Drops a reference; the last one frees the job. */
void serve_job_release(serve_sched *s, serve_job *job);

/* The lock that guards every job's shared fields, and a wait on one job's
 * cond for at most ms milliseconds (lock held). */
void serve_sched_lock(serve_sched *s);
void serve_sched_unlock(serve_sched *s);
void serve_job_wait(serve_sched *s, serve_job *job, int ms);
/* The client of job is gone: drop it from the queue or stop its run at the
 * next token (lock held). */
void serve_job_cancel(serve_sched *s, serve_job *job);

void serve_sched_stats(serve_sched *s, serve_stats *out);
/* The per-token callback to put in a job's rp / po (user: the job): it
 * collects the text for streaming and stops the run of a cancelled job. */
dots_token_fn serve_job_token_fn(void);
/* Refuses new jobs (503) from now on. */
void serve_sched_close(serve_sched *s);
/* Refuses new jobs and returns once every accepted one is done. */
void serve_sched_drain(serve_sched *s);
/* Ends every run at its next step (a second Ctrl-C). */
void serve_sched_abort(serve_sched *s);

#endif
