/*  test_behalf — who a request to control acts as (common/bf_behalf.c):
    a console key acts for a person with that person's role, a console key
    alone is a viewer, and the on_behalf_ fields are refused from any other
    key and when malformed (docs/control.md "On behalf of a person").  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "bf_behalf.h"
#include "bf_verbs.h"

/*  Resolves and asserts success; returns the result.  */
static bf_behalf_t
s_ok (const char *key, const char *role, const char *name, const char *as)
{
    bf_behalf_t who;
    char err[256] = "";
    if (bf_behalf_resolve (key, role, name, as, &who, err, sizeof err) != 0)
        fail_msg ("%s (%s) for %s as %s: refused: %s", key, role, name ? name : "-", as ? as : "-",
                  err);
    return who;
}

/*  Resolves and asserts a refusal whose reason holds part.  */
static void
s_refused (const char *key, const char *role, const char *name, const char *as, const char *part)
{
    bf_behalf_t who;
    char err[256] = "";
    assert_int_equal (bf_behalf_resolve (key, role, name, as, &who, err, sizeof err), -1);
    if (!strstr (err, part))
        fail_msg ("reason '%s' lacks '%s'", err, part);
    assert_string_equal (who.actor, "");
    assert_string_equal (who.role, "");
    assert_false (who.person);
}

static void
test_keys_act_as_themselves (void **state)
{
    (void)state;
    const char *roles[] = { "operator", "viewer", "service", "", NULL };
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        bf_behalf_t who = s_ok ("ops-kim", roles[i], NULL, "");
        assert_string_equal (who.actor, "ops-kim");
        assert_string_equal (who.role, roles[i] ? roles[i] : "");
        assert_false (who.person);
    }
}

static void
test_console_acts_for_a_person (void **state)
{
    (void)state;
    bf_behalf_t who = s_ok ("console-1", "console", "kim", "operator");
    assert_string_equal (who.actor, "console/kim");
    assert_string_equal (who.role, "operator");
    assert_true (who.person);
    assert_true (bf_verb_allowed (bf_verb_find ("run.start"), who.role));

    who = s_ok ("console-1", "console", "lee.j_2-x", "viewer");
    assert_string_equal (who.actor, "console/lee.j_2-x");
    assert_string_equal (who.role, "viewer");
    assert_false (bf_verb_allowed (bf_verb_find ("run.start"), who.role));
    assert_true (bf_verb_allowed (bf_verb_find ("runs.list"), who.role));

    //  The longest name fits whole.
    char longest[65];
    memset (longest, 'a', 64);
    longest[64] = 0;
    who = s_ok ("console-1", "console", longest, "viewer");
    assert_int_equal (strlen (who.actor), strlen ("console/") + 64);
}

static void
test_console_alone_is_a_viewer (void **state)
{
    (void)state;
    bf_behalf_t who = s_ok ("console-1", "console", NULL, NULL);
    assert_string_equal (who.actor, "console-1");
    assert_string_equal (who.role, "viewer");
    assert_false (who.person);
    who = s_ok ("console-1", "console", "", "");
    assert_string_equal (who.role, "viewer");
    assert_false (bf_verb_allowed (bf_verb_find ("dispatch.pause"), who.role));
}

static void
test_other_keys_refused (void **state)
{
    (void)state;
    s_refused ("ops-a", "operator", "kim", "operator", "only a console key");
    s_refused ("ops-a", "operator", "kim", NULL, "only a console key");
    s_refused ("ops-a", "operator", "", "viewer", "only a console key");
    s_refused ("viewer", "viewer", "kim", "operator", "'viewer'");
    s_refused ("settle", "service", "kim", "operator", "'service'");
    s_refused ("x", NULL, "kim", "operator", "'none'");
}

static void
test_malformed_refused (void **state)
{
    (void)state;
    char too_long[66];
    memset (too_long, 'a', 65);
    too_long[65] = 0;
    s_refused ("c", "console", too_long, "operator", "1-64");
    s_refused ("c", "console", "kim park", "operator", "1-64");
    s_refused ("c", "console", "kim\n", "operator", "1-64");
    s_refused ("c", "console", "k\x1b[2Jim", "operator", "1-64");
    s_refused ("c", "console", "\xed\x95\x9c\xea\xb8\x80", "operator", "1-64"); /* valid UTF-8 */
    s_refused ("c", "console", "k\xff\xfeim", "operator", "1-64");              /* invalid */
    s_refused ("c", "console", "console/kim", "operator", "1-64");
    s_refused ("c", "console", "", "operator", "needs on_behalf_of");
    s_refused ("c", "console", NULL, "viewer", "needs on_behalf_of");
    s_refused ("c", "console", "kim", "", "needs on_behalf_role");
    s_refused ("c", "console", "kim", "console", "operator or viewer");
    s_refused ("c", "console", "kim", "service", "operator or viewer");
    s_refused ("c", "console", "kim", "Operator", "operator or viewer");
    //  The reason never quotes the name.
    bf_behalf_t who;
    char err[256];
    assert_int_equal (bf_behalf_resolve ("c", "console", "k\nim", "viewer", &who, err, sizeof err),
                      -1);
    assert_null (strchr (err, '\n'));
}

static void
test_actor_valid (void **state)
{
    (void)state;
    assert_true (bf_behalf_actor_valid ("ops-kim"));
    assert_true (bf_behalf_actor_valid ("unknown"));
    assert_true (bf_behalf_actor_valid ("console/kim"));
    assert_false (bf_behalf_actor_valid ("console/"));
    assert_false (bf_behalf_actor_valid ("console/kim/x"));
    assert_false (bf_behalf_actor_valid ("other/kim"));
    assert_false (bf_behalf_actor_valid (""));
    assert_false (bf_behalf_actor_valid (NULL));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_keys_act_as_themselves),
        cmocka_unit_test (test_console_acts_for_a_person),
        cmocka_unit_test (test_console_alone_is_a_viewer),
        cmocka_unit_test (test_other_keys_refused),
        cmocka_unit_test (test_malformed_refused),
        cmocka_unit_test (test_actor_valid),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
