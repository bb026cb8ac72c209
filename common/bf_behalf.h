/*  bf_behalf — who a request to control acts as: its key, or a person the
    console acts for (issue 15; docs/control.md "On behalf of a person").

    A Command (proto/billflow.proto) may carry on_behalf_of, a person's
    name, and on_behalf_role, that person's role. Only a key whose role in
    the allowed-keys list is "console" may send them; the request then
    acts as the person: its audit actor and the issued_by forwarded to a
    service are "console/NAME", and the person's role (operator or viewer)
    is applied instead of the key's. A console key that names nobody has
    a viewer's rights only, so no command goes through the console
    anonymously. Pure rules: no clock, no socket, no database; control and
    billctl call them.  */

#ifndef BF_BEHALF_H_INCLUDED
#define BF_BEHALF_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

/*  The role a console key has in the allowed-keys list, and the prefix of
    the actor of a request made on behalf of a person.  */
#define BF_BEHALF_KEY_ROLE "console"
#define BF_BEHALF_PREFIX   "console/"

/*  Longest actor: the prefix and a 64-character name, and the NUL.  */
#define BF_BEHALF_ACTOR_SIZE (sizeof BF_BEHALF_PREFIX + 64)

typedef struct {
    char actor[BF_BEHALF_ACTOR_SIZE]; /* the key's name, or "console/NAME" */
    char role[16];                    /* the role applied to the request */
    bool person;                      /* true: acting on behalf of a person */
} bf_behalf_t;

/*  Resolves who a request from the key key_name (whose role in the list
    is key_role; "" or NULL when it has none) acts as, given the request's
    on_behalf_of and on_behalf_role (NULL and "" both mean absent):

    - any key but a console key, with neither field: itself (actor
      key_name, role key_role);
    - a console key with neither field: actor key_name, role "viewer";
    - a console key with both: actor "console/" on_behalf_of, role
      on_behalf_role, person true.

    Returns 0 with *out filled, or -1 with the reason in err (and *out
    zeroed) when the request must be refused: either field from a key that
    is not a console key; one field without the other; a name that is not
    1-64 of A-Z a-z 0-9 . _ - (so no empty name, control character or
    invalid UTF-8); a role other than operator or viewer. The reason never
    quotes the name (it may be anything).  */
int bf_behalf_resolve (const char *key_name, const char *key_role, const char *on_behalf_of,
                       const char *on_behalf_role, bf_behalf_t *out, char *err, size_t errsize);

/*  True when actor can be an audit row's actor written for a listed key:
    a key name (bf_curve_name_valid) or "console/" and a key name
    (audit.list actor=, billctl audit --actor).  */
bool bf_behalf_actor_valid (const char *actor);

#endif
