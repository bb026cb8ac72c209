/*  bf_verbs — the catalogue of commands and queries.  */

#include <string.h>

#include "bf_verbs.h"

static const bf_verb_t s_verbs[] = {
    { "settle", "run.start", false, "period=YYYY-MM", "Start (or find) the period's run." },
    { "settle", "run.stop", false, "period=YYYY-MM",
      "Stop the period's run after the chunks in hand." },
    { "settle", "run.resume", false, "period=YYYY-MM", "Resume a stopped run." },
    { "notify", "dispatch.pause", false, "", "Stop sending notices (kept across restarts)." },
    { "notify", "dispatch.resume", false, "", "Send notices again." },
    { "notify", "deliveries.retry", false, "run_id=N | ids=1,2,3",
      "Send failed deliveries again: all of a run's, or the listed ones." },
    { "notify", "template.publish", false,
      "channel=C subject=S body=S [body_html=S] [short_body=S]",
      "Check a template and make it the channel's next, active version." },
    { "notify", "run.schedule", false, "period=YYYY-MM | run_id=N, at=YYYY-MM-DDTHH:MM",
      "Send the run's notices from a local time on (quiet hours still apply)." },
    { "notify", "run.unschedule", false, "period=YYYY-MM | run_id=N",
      "Remove a run's release time: its notices go out as usual." },
    { "control", "runs.list", true, "[period=YYYY-MM] [limit=N]", "Runs, newest first." },
    { "control", "run.show", true, "period=YYYY-MM | run_id=N",
      "One run: progress, counts, amounts, duration, rating errors, and its notices." },
    { "control", "run.report", true, "period=YYYY-MM [wait=0|1]",
      "The period's reconciliation report: bills, runs, notices, fallbacks, held notices,"
      " attempts, and the bills without a final notice (wait=0: control's newest at once).",
      true },
    { "control", "run.rates", true, "run_id=N",
      "A run's bills per second and notices per second over its life (at most 600 points)." },
    { "control", "deliveries.summary", true, "[period=YYYY-MM]",
      "Notices by channel and state, and whether dispatch is paused." },
    { "control", "deliveries.failures", true, "[period=YYYY-MM] [channel=C] [limit=N]",
      "Failed notices with masked contacts and their last error." },
    { "control", "services.list", true, "", "Registered service instances, up or down." },
    { "control", "commands.list", true,
      "[command_id=ID] [actor=NAME] [verb=V] [state=S] [target=T] [since=T] [until=T]"
      " [before_id=ID] [limit=N]",
      "Stored commands, newest first; filters combine (since/until: YYYY-MM-DD or RFC 3339)." },
    { "control", "audit.list", true,
      "[actor=NAME] [command_id=ID] [verb=V] [state=OUTCOME] [since=T] [until=T]"
      " [before_id=N] [limit=N]",
      "The audit log, newest first; filters combine (since/until: YYYY-MM-DD or RFC 3339)." },
    { "control", "templates.list", true, "[channel=C]",
      "Template versions by channel: which is active, who published it and when." },
    { "control", "template.show", true, "channel=C version=N",
      "One template version: subject, body, HTML and short body." },
    { "control", "template.preview", true,
      "channel=C (version=N | body=S [subject=S] [body_html=S] [short_body=S]) bill_id=N",
      "A template rendered for a bill, with the contact masked." },
    { "control", "control.status", true, "", "This control process: role, counters, keys." },
    { "control", "subscriber.find", true, "subscriber_id=N | email=ADDRESS | phone=NUMBER",
      "Subscribers by id, or by an exact email or phone through its keyed hash; masked"
      " contacts." },
    { "control", "subscriber.timeline", true, "subscriber_id=N [limit=N]",
      "A subscriber's bills, newest first, each with its notices and their attempts." },
    { "control", "bill.show", true, "bill_id=N | period=YYYY-MM subscriber_id=N",
      "One bill as its statement shows it: lines with labels, total, due date; its notices." },
};

const bf_verb_t *
bf_verb_at (size_t index)
{
    return index < sizeof s_verbs / sizeof s_verbs[0] ? &s_verbs[index] : NULL;
}

const bf_verb_t *
bf_verb_find (const char *verb)
{
    for (size_t i = 0; verb && i < sizeof s_verbs / sizeof s_verbs[0]; i++)
        if (!strcmp (s_verbs[i].verb, verb))
            return &s_verbs[i];
    return NULL;
}

bool
bf_verb_allowed (const bf_verb_t *verb, const char *role)
{
    if (!verb || !role)
        return false;
    if (!strcmp (role, "operator"))
        return true;
    if (!strcmp (role, "viewer"))
        return verb->query;
    return false;
}
