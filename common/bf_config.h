/*  bf_config — every setting of every billflow program, in one table.

    Values come, later overriding earlier, from: the built-in default, the
    config file (--config FILE, or $BILLFLOW_CONFIG), the environment
    (BILLFLOW_<KEY> with dots as underscores, upper case: db.conninfo ->
    BILLFLOW_DB_CONNINFO), then command-line overrides (bf_config_set).
    A bad value or an unknown key stops start-up with a message that names
    the key and where the value came from. docs/configuration.md lists every
    setting; a unit test keeps the two in step.

    File syntax: `key = value` per line, `#` comments, blank lines, optional
    `[section]` lines that prefix the keys below them ("[db]" + "conninfo").
    Values may be wrapped in double quotes; surrounding spaces are dropped.

    Database connection: db.conninfo is a libpq conninfo string or URI; when
    empty, libpq's own PG* environment variables apply.  */

#ifndef BF_CONFIG_H_INCLUDED
#define BF_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    BF_CFG_STRING,
    BF_CFG_INT,  /* decimal, within [min, max] */
    BF_CFG_BOOL, /* true/false/yes/no/on/off/1/0 */
    BF_CFG_ENUM, /* one of the '|'-separated choices */
} bf_cfg_type_t;

typedef struct {
    const char *key;
    bf_cfg_type_t type;
    const char *default_value;
    int64_t min, max;    /* BF_CFG_INT only */
    const char *choices; /* BF_CFG_ENUM only: "plain|json" */
    bool secret;         /* never printed; bf_config_dump shows "(set)" */
    const char *help;
} bf_setting_t;

typedef struct bf_config_t bf_config_t;

/*  A config holding every default.  */
bf_config_t *bf_config_new (void);
void bf_config_destroy (bf_config_t **self_p);

/*  Convenience for programs: defaults, then path (or $BILLFLOW_CONFIG when
    path is NULL; no file when both are unset), then the process environment.
    NULL with the reason in err on any bad key or value.  */
bf_config_t *bf_config_load (const char *path, char *err, size_t errsize);

/*  Each returns 0, or -1 with a reason in err (file:line, key and value
    problem). load_env reads BILLFLOW_* entries of envp (NULL-terminated) and
    rejects BILLFLOW_* names that match no setting (except BILLFLOW_CONFIG).  */
int bf_config_load_file (bf_config_t *self, const char *path, char *err, size_t errsize);
int bf_config_load_env (bf_config_t *self, const char *const *envp, char *err, size_t errsize);

/*  Sets key to value after validating it; source names where it came from
    ("--workers", "env BILLFLOW_X") for messages and bf_config_source.  */
int bf_config_set (bf_config_t *self, const char *key, const char *value, const char *source,
                   char *err, size_t errsize);

/*  Getters. Asking for a key that is not in the table, or with the wrong
    type, is a programmer error (assert).  */
const char *bf_config_str (const bf_config_t *self, const char *key);
int64_t bf_config_int (const bf_config_t *self, const char *key);
bool bf_config_bool (const bf_config_t *self, const char *key);
const char *bf_config_source (const bf_config_t *self, const char *key);

/*  Writes every setting as `key = value  # source`, secrets as "(set)" or
    "(unset)".  */
void bf_config_dump (const bf_config_t *self, FILE *out);

/*  A command-line option that sets a setting: value NULL when the option
    was not given.  */
typedef struct {
    const char *key;    /* "db.conninfo" */
    const char *value;  /* the option's argument, or NULL */
    const char *option; /* "--db", for messages */
} bf_config_override_t;

/*  Sets every given override (bf_config_set, the option as the source).
    Returns 0, or -1 with the first bad one's reason in err.  */
int bf_config_override (bf_config_t *self, const bf_config_override_t *overrides, size_t count,
                        char *err, size_t errsize);

/*  Starts logging for program with log.level and log.format.  */
void bf_config_log_init (const bf_config_t *self, const char *program);

/*  This process's instance name: service.instance, or "hostname:pid" when
    that is empty. Returns out.  */
char *bf_config_instance (const bf_config_t *self, char *out, size_t outsize);

/*  The settings table.  */
size_t bf_settings_count (void);
const bf_setting_t *bf_settings_get (size_t index);
const bf_setting_t *bf_settings_find (const char *key);

/*  Writes the environment variable name for key into out.  */
char *bf_setting_env_name (const char *key, char *out, size_t outsize);

/*  The strict value parsers behind BF_CFG_INT and BF_CFG_BOOL, for programs
    that read the same kinds of value elsewhere (command-line arguments).
    parse_int: optional '-', decimal digits only, no spaces, no trailing text,
    no overflow. parse_bool: true/false/yes/no/on/off/1/0, case-insensitive.
    Each returns 0 and sets *value, or -1 and leaves *value alone.  */
int bf_config_parse_int (const char *text, int64_t *value);
int bf_config_parse_bool (const char *text, bool *value);

#endif
