/*  bf_settle_cmd — the commands settle applies through its control link:
      run.start  period=YYYY-MM   start (or find) the period's run
      run.stop   period=YYYY-MM   let in-flight chunks finish, claim no more
      run.resume period=YYYY-MM   continue a stopped run
    Each result is a JSON object {"outcome": ..., "run": {...}}. A run's
    status is a query control answers itself (run.show, runs.list).  */

#ifndef BF_SETTLE_CMD_H_INCLUDED
#define BF_SETTLE_CMD_H_INCLUDED

#include "bf_link.h"

typedef struct {
    int chunk_size; /* for runs started by command */
} bf_settle_cmd_t;

/*  The verb table for bf_link_args_t.verbs (context: a bf_settle_cmd_t).  */
extern const bf_link_verb_t bf_settle_cmd_verbs[];

#endif
