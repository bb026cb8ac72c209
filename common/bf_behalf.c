/*  bf_behalf — who a request to control acts as.  */

#include <stdio.h>
#include <string.h>

#include "bf_behalf.h"
#include "bf_curve.h"
#include "bf_log.h"

static bool
s_given (const char *text)
{
    return text && *text;
}

int
bf_behalf_resolve (const char *key_name, const char *key_role, const char *on_behalf_of,
                   const char *on_behalf_role, bf_behalf_t *out, char *err, size_t errsize)
{
    memset (out, 0, sizeof *out);
    const char *role = key_role ? key_role : "";
    bool console = !strcmp (role, BF_BEHALF_KEY_ROLE);
    bool named = s_given (on_behalf_of), roled = s_given (on_behalf_role);
    if (!console && (named || roled))
        return bf_err_set (err, errsize,
                           "only a console key may act on behalf of a person; this key's role is"
                           " '%s'",
                           *role ? role : "none");
    if (!named && !roled) {
        //  A console key on its own is a viewer: nothing runs in nobody's name.
        snprintf (out->actor, sizeof out->actor, "%s", key_name ? key_name : "");
        snprintf (out->role, sizeof out->role, "%s", console ? "viewer" : role);
        return 0;
    }
    if (!named)
        return bf_err_set (err, errsize, "on_behalf_role needs on_behalf_of (the person's name)");
    if (!bf_curve_name_valid (on_behalf_of))
        return bf_err_set (err, errsize,
                           "on_behalf_of must be 1-64 of A-Z a-z 0-9 . _ - (%zu bytes given)",
                           strlen (on_behalf_of));
    if (!roled)
        return bf_err_set (err, errsize, "on_behalf_of needs on_behalf_role (operator or viewer)");
    if (strcmp (on_behalf_role, "operator") && strcmp (on_behalf_role, "viewer"))
        return bf_err_set (err, errsize, "on_behalf_role must be operator or viewer");
    snprintf (out->actor, sizeof out->actor, "%s%s", BF_BEHALF_PREFIX, on_behalf_of);
    snprintf (out->role, sizeof out->role, "%s", on_behalf_role);
    out->person = true;
    return 0;
}

bool
bf_behalf_actor_valid (const char *actor)
{
    if (!actor)
        return false;
    size_t prefix = strlen (BF_BEHALF_PREFIX);
    if (!strncmp (actor, BF_BEHALF_PREFIX, prefix))
        return bf_curve_name_valid (actor + prefix);
    return bf_curve_name_valid (actor);
}
