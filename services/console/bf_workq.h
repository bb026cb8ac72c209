/*  bf_workq — a few threads that run jobs from a bounded queue, each with
    a context of its own that lives on that thread (the console gives each
    a bf_client: a ZeroMQ socket is never shared between threads).

    The console's HTTP thread hands slow work here (a request to control,
    a password check) and goes on serving other clients; the job resumes
    its connection when it is done. A full queue refuses a job at once
    (the client gets 503), so a flood cannot queue without bound.  */

#ifndef BF_WORKQ_H_INCLUDED
#define BF_WORKQ_H_INCLUDED

#include <stddef.h>

typedef struct bf_workq_t bf_workq_t;

/*  Runs one job on a worker thread with that thread's context.  */
typedef void (bf_workq_fn) (void *job, void *context);

typedef struct {
    const char *name; /* for log lines: "control", "login" */
    int threads;      /* at least 1 */
    size_t queue_max; /* jobs waiting at most (at least 1) */
    /*  Makes a thread's context on that thread (NULL: no context); a NULL
        result is logged and the thread runs its jobs with a NULL context.  */
    void *(*context_new) (void *arg);
    void (*context_destroy) (void *context);
    void *arg;
} bf_workq_args_t;

/*  Starts the threads. NULL when none could be started.  */
bf_workq_t *bf_workq_new (const bf_workq_args_t *args);

/*  Queues fn (job). Returns 0, or -1 when the queue is full or stopping
    (the job is not run; the caller answers for it).  */
int bf_workq_submit (bf_workq_t *self, bf_workq_fn *fn, void *job);

/*  Jobs waiting (not yet running).  */
size_t bf_workq_waiting (bf_workq_t *self);

/*  Runs every queued job, stops the threads, destroys their contexts,
    frees. Safe on NULL and twice.  */
void bf_workq_destroy (bf_workq_t **self_p);

#endif
