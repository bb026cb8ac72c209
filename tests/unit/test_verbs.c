/*  test_verbs — the verb catalogue (common/bf_verbs.c) and the services'
    verb tables agree, and roles allow what docs/control.md says.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "bf_notify_cmd.h"
#include "bf_settle_cmd.h"
#include "bf_verbs.h"

static void
s_check_table (const bf_link_verb_t *table, const char *service)
{
    size_t in_table = 0;
    for (const bf_link_verb_t *v = table; v->verb; v++, in_table++) {
        const bf_verb_t *entry = bf_verb_find (v->verb);
        if (!entry)
            fail_msg ("%s applies '%s', which the catalogue does not list", service, v->verb);
        assert_string_equal (entry->target, service);
        assert_false (entry->query);
        assert_false (v->query);
    }
    size_t in_catalogue = 0;
    for (size_t i = 0; bf_verb_at (i); i++) {
        const bf_verb_t *entry = bf_verb_at (i);
        if (strcmp (entry->target, service) != 0)
            continue;
        in_catalogue++;
        bool found = false;
        for (const bf_link_verb_t *v = table; v->verb; v++)
            found |= !strcmp (v->verb, entry->verb);
        if (!found)
            fail_msg ("the catalogue sends '%s' to %s, which does not apply it", entry->verb,
                      service);
    }
    assert_int_equal (in_table, in_catalogue);
}

static void
test_services_match_the_catalogue (void **state)
{
    (void)state;
    s_check_table (bf_settle_cmd_verbs, "settle");
    s_check_table (bf_notify_cmd_verbs, "notify");
}

static void
test_catalogue_is_sound (void **state)
{
    (void)state;
    size_t n = 0;
    for (; bf_verb_at (n); n++) {
        const bf_verb_t *entry = bf_verb_at (n);
        assert_true (!strcmp (entry->target, "settle") || !strcmp (entry->target, "notify")
                     || !strcmp (entry->target, "control"));
        /*  control applies nothing: everything it answers itself is a query.  */
        assert_true (strcmp (entry->target, "control") != 0 || entry->query);
        assert_ptr_equal (bf_verb_find (entry->verb), entry);
        assert_non_null (entry->summary);
    }
    assert_true (n >= 14);
    assert_null (bf_verb_find ("run.explode"));
    assert_null (bf_verb_find (NULL));
}

static void
test_roles (void **state)
{
    (void)state;
    const bf_verb_t *start = bf_verb_find ("run.start");
    const bf_verb_t *runs = bf_verb_find ("runs.list");
    assert_true (bf_verb_allowed (start, "operator"));
    assert_true (bf_verb_allowed (runs, "operator"));
    assert_false (bf_verb_allowed (start, "viewer"));
    assert_true (bf_verb_allowed (runs, "viewer"));
    assert_false (bf_verb_allowed (start, "service"));
    assert_false (bf_verb_allowed (runs, "service"));
    assert_false (bf_verb_allowed (runs, "root"));
    assert_false (bf_verb_allowed (runs, NULL));
    assert_false (bf_verb_allowed (NULL, "operator"));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_services_match_the_catalogue),
        cmocka_unit_test (test_catalogue_is_sound),
        cmocka_unit_test (test_roles),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
