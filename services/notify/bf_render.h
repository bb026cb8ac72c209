/*  bf_render — from a delivery's database rows to a message for the sender.

    Holds the active template of each channel (checked with
    bf_template_check_set when loaded: a broken row is reported and its
    channel sends nothing rather than garbage). Line labels come with the
    lines (bill_line.label, written by settle): no name cache. Used by the dispatcher only; not thread-safe.  */

#ifndef BF_RENDER_H_INCLUDED
#define BF_RENDER_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>

#include "bf_sender.h"

typedef struct bf_render_t bf_render_t;

bf_render_t *bf_render_new (void);
void bf_render_destroy (bf_render_t **self_p);

/*  Replaces the templates with rows of (channel, version, subject, body,
    body_html, short_body). Returns 0, or -1 when no channel has a usable
    template (logged).  */
int bf_render_load (bf_render_t *self, const PGresult *templates);

/*  The version of channel's loaded template (0 EMAIL, 1 SMS, 2 PUSH), or 0
    when it has no usable one. bf_render_message renders with it.  */
int bf_render_version (const bf_render_t *self, int channel);

/*  True when a loaded template loops over the bill lines.  */
bool bf_render_needs_lines (const bf_render_t *self);

/*  Renders the delivery in row `row` of ctx (the dispatcher's d_context
    columns) for channel (0 EMAIL, 1 SMS, 2 PUSH) to the decrypted contact
    `to`. lines: rows of (period, subscriber_id, code, amount, label), one set
    per bill, ordered by (period, subscriber_id, line_no) (NULL when no
    template needs them). Fills request's kind and strings
    (malloc'd; the caller frees them). Returns 0, or -1 with a reason.  */
int bf_render_message (bf_render_t *self, int channel, const PGresult *ctx, int row,
                       const PGresult *lines, const char *to, bf_send_request_t *request, char *err,
                       size_t errsize);

#endif
