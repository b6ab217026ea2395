/*
 * scheduler.c - see scheduler.h. One mutex guards the queue, the counters
 * and every job's shared fields; the driver never holds it while the model
 * runs (add, step), so HTTP threads queue and stream meanwhile.
 */
#include "scheduler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct slot {
    int64_t id;          /* the batch's run id, -1 when free */
    serve_job *job;
    int32_t page_index;  /* document jobs: which of job->pages */
} slot;

struct serve_sched {
    pthread_mutex_t mu;
    pthread_cond_t wake;      /* the driver: work arrived, or drain */
    pthread_cond_t idle;      /* drainers: the last job finished */
    pthread_t thread;
    bool thread_started, stop;
    dots_ctx *ctx;            /* the driver's */
    dots_state *st;
    dots_batch *b;
    int32_t batch, max_queue;
    slot *slots;
    serve_job *head, *tail;   /* the queue */
    int32_t n_queued, n_running, n_active; /* jobs queued, runs in the batch, jobs not yet done */
    bool draining;
    int64_t completed, cancelled, failed, rejected, tokens;
};

static void job_free(serve_job *j) {
    dots_image_free(&j->img);
    serve_chat_request_free(&j->req);
    dots_document_close(j->doc);
    free(j->opt_prompt);
    free(j->opt_system);
    free(j->pages);
    dots_run_result_free(&j->res);
    free(j->text);
    if (j->page_res)
        for (int32_t i = 0; i < j->n_pages; i++) dots_page_result_free(&j->page_res[i]);
    free(j->page_res);
    free(j->page_status);
    free(j->page_error);
    pthread_cond_destroy(&j->cond);
    free(j);
}

serve_job *serve_job_new(serve_job_kind kind) {
    serve_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    if (pthread_cond_init(&j->cond, NULL) != 0) {
        free(j);
        return NULL;
    }
    j->kind = kind;
    j->refs = 1;
    return j;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void serve_sched_lock(serve_sched *s) { pthread_mutex_lock(&s->mu); }
void serve_sched_unlock(serve_sched *s) { pthread_mutex_unlock(&s->mu); }

void serve_job_release(serve_sched *s, serve_job *j) {
    if (!j) return;
    pthread_mutex_lock(&s->mu);
    const bool last = --j->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (last) job_free(j);
}

void serve_job_wait(serve_sched *s, serve_job *j, int ms) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += (long)ms * 1000000L;
    t.tv_sec += t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&j->cond, &s->mu, &t);
}

/* lock held */
static void queue_remove(serve_sched *s, serve_job *j) {
    serve_job **pp = &s->head, *prev = NULL;
    while (*pp && *pp != j) prev = *pp, pp = &(*pp)->next;
    if (!*pp) return;
    *pp = j->next;
    if (s->tail == j) s->tail = prev;
    j->next = NULL;
    j->queued = false;
    s->n_queued--;
}

static void queue_push(serve_sched *s, serve_job *j) {
    j->next = NULL;
    if (s->tail) s->tail->next = j;
    else s->head = j;
    s->tail = j;
    j->queued = true;
    s->n_queued++;
}

/* lock held: the job is over for the scheduler */
static void job_finish(serve_sched *s, serve_job *j) {
    j->done = true;
    j->started = true;
    bool ok = j->kind == SERVE_JOB_CHAT && j->status == DOTS_OK;
    for (int32_t i = 0; j->kind == SERVE_JOB_DOCUMENT && i < j->n_pages; i++) ok |= j->page_status[i] == DOTS_OK;
    if (j->cancelled) s->cancelled++;
    else if (!ok) s->failed++;
    else s->completed++;
    pthread_cond_broadcast(&j->cond);
    s->n_active--;
    if (s->n_active == 0) pthread_cond_broadcast(&s->idle);
    if (--j->refs == 0) job_free(j);
}

void serve_job_cancel(serve_sched *s, serve_job *j) {
    if (j->done || j->cancelled) return;
    j->cancelled = true;
    if (j->queued && (j->kind == SERVE_JOB_CHAT || j->next_page == 0)) { /* nothing of it runs yet */
        queue_remove(s, j);
        j->status = DOTS_ERR_CANCELLED;
        job_finish(s, j);
    } else if (j->queued) {
        /* pages in the batch end at their next token; the rest never start */
        queue_remove(s, j);
        for (int32_t i = j->next_page; i < j->n_pages; i++) j->page_status[i] = DOTS_ERR_CANCELLED;
        j->pages_done += j->n_pages - j->next_page;
        j->next_page = j->n_pages;
        if (j->pages_done == j->n_pages) job_finish(s, j);
    }
}

bool serve_sched_submit(serve_sched *s, serve_job *j, serve_error *err) {
    pthread_mutex_lock(&s->mu);
    bool ok = false;
    if (s->draining) {
        serve_error_set(err, 503, NULL, "the server is shutting down");
    } else if (s->n_queued >= s->max_queue) {
        s->rejected++;
        serve_error_set(err, 429, NULL, "the queue is full (%d requests wait); retry later", s->n_queued);
    } else {
        j->refs++;
        j->sched = s;
        j->t_submit = now_s();
        s->n_active++;
        queue_push(s, j);
        pthread_cond_signal(&s->wake);
        ok = true;
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

/* Runs in the driver thread inside dots_batch_step: the text goes to the
 * job for streaming; returning false ends the run (the client left). */
static bool on_token(void *user, int32_t token, const char *text, size_t len) {
    (void)token;
    serve_job *j = user;
    serve_sched *s = j->sched;
    pthread_mutex_lock(&s->mu);
    s->tokens++;
    if (j->kind == SERVE_JOB_CHAT && len && !j->text_oom) {
        if (j->text_len + len + 1 > j->text_cap) {
            size_t cap = j->text_cap ? j->text_cap : 4096;
            while (cap < j->text_len + len + 1) cap *= 2;
            char *p = realloc(j->text, cap);
            if (p) {
                j->text = p;
                j->text_cap = cap;
            } else {
                j->text_oom = true; /* the final result still has the whole text */
            }
        }
        if (!j->text_oom) {
            memcpy(j->text + j->text_len, text, len);
            j->text_len += len;
            j->text[j->text_len] = '\0';
        }
        pthread_cond_broadcast(&j->cond);
    }
    const bool go_on = !j->cancelled;
    pthread_mutex_unlock(&s->mu);
    return go_on;
}

static slot *free_slot(serve_sched *s) {
    for (int32_t i = 0; i < s->batch; i++)
        if (s->slots[i].id == -1) return &s->slots[i];
    return NULL;
}

/* lock held on entry and exit; released while the model works */
static void add_one(serve_sched *s, serve_job *j, slot *sl) {
    int32_t page_index = -1;
    if (j->kind == SERVE_JOB_CHAT) {
        queue_remove(s, j);
    } else {
        page_index = j->next_page++;
        queue_remove(s, j);
        if (j->next_page < j->n_pages) queue_push(s, j); /* to the back: the others get a turn */
    }
    sl->id = -2; /* taken while the lock is down */
    if (!j->t_begin) j->t_begin = now_s();
    s->n_running++;
    pthread_mutex_unlock(&s->mu);
    int64_t id = -1;
    dots_status st;
    if (j->kind == SERVE_JOB_CHAT) {
        st = dots_batch_add(s->ctx, s->b, &j->img, &j->rp, &id);
    } else {
        st = dots_batch_add_page(s->ctx, s->b, j->doc, j->pages[page_index], &j->po, &id);
    }
    char msg[512];
    if (st != DOTS_OK) snprintf(msg, sizeof msg, "%s", dots_errmsg(s->ctx));
    pthread_mutex_lock(&s->mu);
    if (st == DOTS_OK) {
        sl->id = id;
        sl->job = j;
        sl->page_index = page_index;
        if (j->kind == SERVE_JOB_CHAT) {
            j->started = true;
            pthread_cond_broadcast(&j->cond);
        }
        return;
    }
    sl->id = -1;
    s->n_running--;
    if (j->kind == SERVE_JOB_CHAT) {
        j->status = st;
        snprintf(j->error, sizeof j->error, "%s", msg);
        job_finish(s, j);
        return;
    }
    j->page_status[page_index] = st;
    snprintf(j->page_error[page_index], sizeof j->page_error[0], "%s", msg);
    if (++j->pages_done == j->n_pages) job_finish(s, j);
}

/* lock held on entry and exit */
static void take_finished(serve_sched *s) {
    int64_t id;
    while ((id = dots_batch_finished_id(s->b)) >= 0) {
        slot *sl = NULL;
        for (int32_t i = 0; i < s->batch && !sl; i++)
            if (s->slots[i].id == id) sl = &s->slots[i];
        if (!sl) { /* cannot happen: every run the batch holds has a slot */
            pthread_mutex_unlock(&s->mu);
            dots_run_result r = {0};
            dots_batch_take(s->ctx, s->b, id, &r);
            dots_run_result_free(&r);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        serve_job *j = sl->job;
        const int32_t pi = sl->page_index;
        pthread_mutex_unlock(&s->mu);
        dots_status st;
        dots_run_result r = {0};
        dots_page_result pr = {0};
        if (j->kind == SERVE_JOB_CHAT) st = dots_batch_take(s->ctx, s->b, id, &r);
        else st = dots_batch_take_page(s->ctx, s->b, id, &pr);
        char msg[512] = "";
        if (st != DOTS_OK) snprintf(msg, sizeof msg, "%s", dots_errmsg(s->ctx));
        pthread_mutex_lock(&s->mu);
        sl->id = -1;
        sl->job = NULL;
        s->n_running--;
        if (j->kind == SERVE_JOB_CHAT) {
            j->status = st;
            j->res = r;
            snprintf(j->error, sizeof j->error, "%s", msg);
            job_finish(s, j);
        } else {
            j->page_status[pi] = st;
            j->page_res[pi] = pr;
            snprintf(j->page_error[pi], sizeof j->page_error[0], "%s", msg);
            if (++j->pages_done == j->n_pages) job_finish(s, j);
        }
    }
}

static void *driver(void *arg) {
    serve_sched *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        /* admit: the queue's head while the batch has room */
        slot *sl;
        while (s->head && (sl = free_slot(s))) add_one(s, s->head, sl);
        take_finished(s);
        if (s->n_running == 0) {
            if (s->stop && !s->head) break;
            if (!s->head) pthread_cond_wait(&s->wake, &s->mu);
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        const dots_status st = dots_batch_step(s->ctx, s->b);
        char msg[512] = "";
        if (st != DOTS_OK) snprintf(msg, sizeof msg, "%s", dots_errmsg(s->ctx));
        pthread_mutex_lock(&s->mu);
        if (st != DOTS_OK) {
            /* a step that fails (out of memory) cannot say which run it was:
             * every running one ends with that error */
            for (int32_t i = 0; i < s->batch; i++) {
                slot *x = &s->slots[i];
                if (x->id < 0) continue;
                pthread_mutex_unlock(&s->mu);
                dots_batch_cancel(s->ctx, s->b, x->id);
                pthread_mutex_lock(&s->mu);
            }
            fprintf(stderr, "dotsocr serve: error: decode step: %s\n", msg);
            pthread_mutex_unlock(&s->mu);
            nanosleep(&(struct timespec){0, 100000000L}, NULL); /* no hot loop if it persists */
            pthread_mutex_lock(&s->mu);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

serve_sched *serve_sched_create(const dots_model *model, int32_t threads, dots_precision precision, int32_t batch,
                                int32_t max_queue, char *errbuf, size_t errlen) {
    serve_sched *s = calloc(1, sizeof *s);
    if (!s || batch < 1 || max_queue < 0) {
        snprintf(errbuf, errlen, "%s", s ? "bad batch or queue size" : "out of memory");
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->wake, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->batch = batch;
    s->max_queue = max_queue;
    s->slots = calloc((size_t)batch, sizeof *s->slots);
    if (!s->slots || dots_ctx_create(&s->ctx) != DOTS_OK) {
        snprintf(errbuf, errlen, "out of memory");
        serve_sched_free(s);
        return NULL;
    }
    for (int32_t i = 0; i < batch; i++) s->slots[i].id = -1;
    if (dots_state_create(s->ctx, model, threads, &s->st) != DOTS_OK ||
        dots_state_set_precision(s->ctx, s->st, precision) != DOTS_OK ||
        dots_batch_create(s->ctx, s->st, batch, &s->b) != DOTS_OK) {
        snprintf(errbuf, errlen, "%s", dots_errmsg(s->ctx));
        serve_sched_free(s);
        return NULL;
    }
    if (pthread_create(&s->thread, NULL, driver, s) != 0) {
        snprintf(errbuf, errlen, "cannot start the model thread");
        serve_sched_free(s);
        return NULL;
    }
    s->thread_started = true;
    return s;
}

void serve_sched_close(serve_sched *s) {
    pthread_mutex_lock(&s->mu);
    s->draining = true;
    pthread_mutex_unlock(&s->mu);
}

void serve_sched_drain(serve_sched *s) {
    pthread_mutex_lock(&s->mu);
    s->draining = true;
    while (s->n_active > 0) pthread_cond_wait(&s->idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

void serve_sched_abort(serve_sched *s) { dots_state_cancel(s->st); }

void serve_sched_free(serve_sched *s) {
    if (!s) return;
    if (s->thread_started) {
        serve_sched_drain(s);
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    dots_batch_free(s->b);
    dots_state_free(s->st);
    dots_ctx_free(s->ctx);
    free(s->slots);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void serve_sched_stats(serve_sched *s, serve_stats *o) {
    pthread_mutex_lock(&s->mu);
    o->queued = s->n_queued;
    o->running = s->n_running;
    o->active = s->n_active;
    o->batch = s->batch;
    o->max_queue = s->max_queue;
    o->completed = s->completed;
    o->cancelled = s->cancelled;
    o->failed = s->failed;
    o->rejected = s->rejected;
    o->tokens = s->tokens;
    o->draining = s->draining;
    pthread_mutex_unlock(&s->mu);
}

/* The per-token callback for job (the submitter sets it in rp / po). */
dots_token_fn serve_job_token_fn(void) { return on_token; }
