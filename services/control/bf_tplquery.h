/*  bf_tplquery — control's template queries (bf_verbs.h lists them;
    docs/control.md and docs/templates.md describe them). Like every query
    they change nothing and are answered from PostgreSQL, while notify is
    down too. template.publish is a command notify applies (bf_notify_cmd.h).

    Arguments: channel EMAIL | SMS | PUSH; version and bill_id positive
    integers; subject, body, body_html, short_body a draft's parts (UTF-8,
    checked by bf_template_check_set). A bad value, an unknown key, a key
    given twice or a missing one is BF_QUERY_BAD with err naming it.

    templates.list    [channel]
                      {"templates":[{"channel","purpose","version","active","subject",
                       "created_at","published_by","client"}...]}
                      (EMAIL, SMS, PUSH; newest version first; published_by: the
                       template.publish command_id, client: the key that sent it,
                       both null for a version that shipped as a migration)
    template.show     channel version
                      {"channel","purpose","version","active","subject","body","body_html",
                       "short_body","created_at","published_by","client"}
    template.preview  channel bill_id (version | body [subject] [body_html] [short_body])
                      {"channel","version"|null,"draft","bill_id","period","subscriber_id",
                       "to","sent_as","subject","body","body_html","lines","preview"}
                      The stored version, or the draft, rendered for the bill by notify's
                      own renderer (bf_render_load and bf_render_message, linked from
                      services/notify), with the bill's stored lines, exactly as the
                      dispatcher would send it; sent_as EMAIL, SMS, LMS or PUSH. "to" is
                      the masked contact (bf_query.h's rules); subject, body and body_html
                      are masked again (an address in a name field), and preview is
                      bf_template_preview's text. A draft that fails the checker is
                      BF_QUERY_BAD with the checker's message.  */

#ifndef BF_TPLQUERY_H_INCLUDED
#define BF_TPLQUERY_H_INCLUDED

#include <stdbool.h>

#include "bf_query.h"

/*  True when verb is one of this module's queries.  */
bool bf_tplquery_handles (const char *verb);

/*  Answers the template query cmd (see above): BF_QUERY_OK with the
    document in *doc (the caller owns it; bf_query encodes it), or
    BF_QUERY_BAD / BF_QUERY_RETRY with err.  */
int bf_tplquery (PGconn *conn, const bf_query_ctx_t *ctx, const Billflow__Command *cmd,
                 json_t **doc, char *err, size_t errsize);

#endif
