/*  bf_workq — worker threads and their bounded queue (bf_workq.h).  */

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bf_log.h"
#include "bf_workq.h"

typedef struct {
    bf_workq_fn *fn;
    void *job;
} s_item_t;

struct bf_workq_t {
    bf_workq_args_t args;
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    s_item_t *ring;
    size_t head, count;
    bool stopping;
    pthread_t *threads;
    int started;
};

static void *
s_worker (void *arg)
{
    bf_workq_t *self = arg;
    void *context = NULL;
    if (self->args.context_new) {
        context = self->args.context_new (self->args.arg);
        if (!context)
            bf_error ("%s worker: no context; its jobs run without one", self->args.name);
    }
    pthread_mutex_lock (&self->mutex);
    for (;;) {
        while (self->count == 0 && !self->stopping)
            pthread_cond_wait (&self->wake, &self->mutex);
        if (self->count == 0)
            break; /* stopping, and every job has run */
        s_item_t item = self->ring[self->head];
        self->head = (self->head + 1) % self->args.queue_max;
        self->count--;
        pthread_mutex_unlock (&self->mutex);
        item.fn (item.job, context);
        pthread_mutex_lock (&self->mutex);
    }
    pthread_mutex_unlock (&self->mutex);
    if (context && self->args.context_destroy)
        self->args.context_destroy (context);
    return NULL;
}

bf_workq_t *
bf_workq_new (const bf_workq_args_t *args)
{
    bf_workq_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->args = *args;
    if (self->args.threads < 1)
        self->args.threads = 1;
    if (self->args.queue_max < 1)
        self->args.queue_max = 1;
    if (!self->args.name)
        self->args.name = "work";
    self->ring = calloc (self->args.queue_max, sizeof *self->ring);
    self->threads = calloc ((size_t)self->args.threads, sizeof *self->threads);
    pthread_mutex_init (&self->mutex, NULL);
    pthread_cond_init (&self->wake, NULL);
    for (int i = 0; self->ring && self->threads && i < self->args.threads; i++)
        if (pthread_create (&self->threads[i], NULL, s_worker, self) == 0)
            self->started++;
    if (self->started == 0) {
        bf_error ("%s workers: cannot start a thread", self->args.name);
        bf_workq_destroy (&self);
        return NULL;
    }
    return self;
}

int
bf_workq_submit (bf_workq_t *self, bf_workq_fn *fn, void *job)
{
    int rc = -1;
    pthread_mutex_lock (&self->mutex);
    if (!self->stopping && self->count < self->args.queue_max) {
        self->ring[(self->head + self->count) % self->args.queue_max] = (s_item_t){ fn, job };
        self->count++;
        pthread_cond_signal (&self->wake);
        rc = 0;
    }
    pthread_mutex_unlock (&self->mutex);
    return rc;
}

size_t
bf_workq_waiting (bf_workq_t *self)
{
    pthread_mutex_lock (&self->mutex);
    size_t count = self->count;
    pthread_mutex_unlock (&self->mutex);
    return count;
}

void
bf_workq_destroy (bf_workq_t **self_p)
{
    if (self_p && *self_p) {
        bf_workq_t *self = *self_p;
        pthread_mutex_lock (&self->mutex);
        self->stopping = true;
        pthread_cond_broadcast (&self->wake);
        pthread_mutex_unlock (&self->mutex);
        for (int i = 0; i < self->started; i++)
            pthread_join (self->threads[i], NULL);
        pthread_cond_destroy (&self->wake);
        pthread_mutex_destroy (&self->mutex);
        free (self->threads);
        free (self->ring);
        free (self);
        *self_p = NULL;
    }
}
