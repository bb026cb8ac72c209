/*  bf_render — from a delivery's database rows to a message for the sender.

    Holds the active template of each channel (checked with
    bf_template_check_set when loaded: a broken row is reported and its
    channel sends nothing rather than garbage). Line labels come with the
    lines (bill_line.label, written by settle): no name cache. Used by the dispatcher only; not
   thread-safe.  */

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

/*  The columns of the dispatcher's delivery-context query (d_context in
    bf_dispatch.c), in its SELECT order: the dispatcher and the renderer
    read the same result by these names.  */
typedef enum {
    BF_RENDER_CTX_ID,
    BF_RENDER_CTX_NAME,
    BF_RENDER_CTX_EMAIL_ENC,
    BF_RENDER_CTX_PHONE_ENC,
    BF_RENDER_CTX_PUSH_TOKEN_ENC,
    BF_RENDER_CTX_QUIET_START,
    BF_RENDER_CTX_QUIET_END,
    BF_RENDER_CTX_TOTAL,
    BF_RENDER_CTX_DUE_DATE,
    BF_RENDER_CTX_LINE_COUNT,
    BF_RENDER_CTX_PERIOD,
    BF_RENDER_CTX_BILL_ID,
    BF_RENDER_CTX_SUBSCRIBER_ID,
    BF_RENDER_CTX_ORD, /* the id's place in the claimed rows, from 1 */
    BF_RENDER_CTX_SENT_AS,
    BF_RENDER_CTX_TITLE,
    BF_RENDER_CTX_BODY,
    BF_RENDER_CTX_BODY_HTML,
    BF_RENDER_CTX_DATE_S,
} bf_render_ctx_column_t;

/*  The columns of the active-templates query (d_templates), in its SELECT
    order: what bf_render_load reads.  */
typedef enum {
    BF_RENDER_TPL_CHANNEL,
    BF_RENDER_TPL_VERSION,
    BF_RENDER_TPL_SUBJECT,
    BF_RENDER_TPL_BODY,
    BF_RENDER_TPL_BODY_HTML,
    BF_RENDER_TPL_SHORT_BODY,
} bf_render_template_column_t;

/*  The columns of the bill-lines query (d_lines), in its SELECT order.  */
typedef enum {
    BF_RENDER_LINE_PERIOD,
    BF_RENDER_LINE_SUBSCRIBER_ID,
    BF_RENDER_LINE_CODE,
    BF_RENDER_LINE_AMOUNT,
    BF_RENDER_LINE_LABEL,
} bf_render_line_column_t;

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
