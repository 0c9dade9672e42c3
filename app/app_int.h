/* app_int.h - private to app/: the command table, exit codes, and the shared
 * configuration loading used by every command that reads a configuration.
 * Nothing outside app/ includes this file. */
#ifndef RF_APP_INT_H
#define RF_APP_INT_H

#include "core/core.h"

/* Exit codes, one table; append only.  docs/EXIT-CODES.md is generated from it. */
#define RF_EXIT_MAP(XX)                                                                            \
    XX(OK, 0, "success, including a graceful stop on SIGTERM or SIGINT")                           \
    XX(FAILURE, 1, "runtime failure")                                                              \
    XX(USAGE, 2,                                                                                   \
       "usage error: unknown command or option, missing argument, or a command "                   \
       "that is not available in this version")                                                    \
    XX(CONFIG, 3,                                                                                  \
       "invalid configuration: the message names the key, the value and what "                     \
       "was expected")                                                                             \
    XX(UNAVAILABLE, 4, "a dependency was unavailable at startup (Kafka, catalog, provider)")       \
    XX(CORRUPT, 5, "corrupt state that needs an operator (store or checkpoint)")

enum {
#define RF__EXIT_ENUM(name, code, desc) RF_EXIT_##name = code,
    RF_EXIT_MAP(RF__EXIT_ENUM)
#undef RF__EXIT_ENUM
};

/* Maps an error code to the exit code a command returns for it. */
int rf__app_exit_for(rf_rc rc);

/* A command: name, usage line, one-line summary, longer help, handler.
 * Handlers get argv with argv[0] = the command name and return an exit code. */
typedef struct rf_app_cmd {
    const char *name;
    const char *usage;
    const char *summary;
    const char *help;
    int (*fn)(int argc, char **argv);
} rf_app_cmd_t;

extern const rf_app_cmd_t rf__app_cmds[];
extern const size_t rf__app_cmds_cnt;

/* Prints "ragfeed <cmd>: <message>" and the usage line to stderr; returns RF_EXIT_USAGE. */
int rf__app_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints a command's help to stdout; returns RF_EXIT_OK. */
int rf__app_cmd_help(const char *cmd);

/* Common configuration options shared by run, config, keys, reembed, history:
 * -c/--config FILE and --set KEY=VALUE (repeatable). */
typedef struct rf_app_confargs {
    const char *file; /* NULL: configs/ragfeed.properties when it exists */
    const char **sets;
    size_t set_cnt;
} rf_app_confargs_t;

/* Loads defaults < file < environment < --set into a new rf_conf_t and finalises it.
 * On error prints the message to stderr and returns NULL with *exit_code set. */
rf_conf_t *rf__app_conf_load(const rf_app_confargs_t *ca, int for_run, int *exit_code);
/* Applies the configured logging options. */
int rf__app_log_setup(const rf_conf_t *cfg, int *exit_code);

/* Command handlers. */
int rf__app_cmd_run(int argc, char **argv);
int rf__app_cmd_demo(int argc, char **argv);
int rf__app_cmd_broker(int argc, char **argv);
int rf__app_cmd_reembed(int argc, char **argv);
int rf__app_cmd_history(int argc, char **argv);
int rf__app_cmd_keys(int argc, char **argv);
int rf__app_cmd_config(int argc, char **argv);
int rf__app_cmd_version(int argc, char **argv);
int rf__app_cmd_help_cmd(int argc, char **argv);

/* Runs every stage with cfg until SIGTERM/SIGINT (rf__app_stop); returns the exit code.
 * on_ready (may be NULL) is called once the pipeline consumes, with the HTTP port. */
int rf__app_run_pipeline(rf_conf_t *cfg, void (*on_ready)(void *opaque, int port), void *opaque);

/* The program's entry point (app_main.c calls it). */
int rf_app_main(int argc, char **argv);

/* Signals: the first SIGTERM/SIGINT sets rf__app_stop; handlers are installed by
 * rf__app_signals_install. */
extern volatile int rf__app_stop;
void rf__app_signals_install(void);

#endif /* RF_APP_INT_H */
