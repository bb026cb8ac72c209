/*  bf_notify_cmd — the commands notify applies through its control link:
      dispatch.pause                       stop claiming deliveries (in flight ones finish)
      dispatch.resume                      claim again
      deliveries.retry   run_id=N | ids=1,2,3
                                           failed deliveries of a run, or by id, are PENDING
                                           again with fresh attempts (due at once whatever
                                           the clock); delivered ones are never touched
      template.publish   channel=C subject=S body=S [body_html=S] [short_body=S]
                                           checks the row with bf_template_check_set and, when it
                                           passes, inserts the channel's next version and makes it
                                           the active one (the dispatchers load it within a minute);
                                           a refused row stores nothing and fails with the checker's
                                           message
      run.schedule       (period=YYYY-MM | run_id=N) at=YYYY-MM-DDTHH:MM
                                           the run's notices are not claimed before `at` (local
                                           time, notify.utc_offset_min); a later run.schedule moves it;
                                           `at` more than a day before notify's clock or more than
                                           366 days after it is refused
      run.unschedule     period=YYYY-MM | run_id=N
                                           removes the run's release time
    Results are JSON objects. Delivery figures are control's queries.
    The verbs' context is notify's bf_dispatch_args_t (utc_offset_min,
    clock_offset_ms: notify.utc_offset_min and its clock), or NULL.  */

#ifndef BF_NOTIFY_CMD_H_INCLUDED
#define BF_NOTIFY_CMD_H_INCLUDED

#include "bf_link.h"

extern const bf_link_verb_t bf_notify_cmd_verbs[];

#endif
