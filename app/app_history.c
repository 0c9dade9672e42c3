/* app_history.c - `ragfeed history`: audit queries over the Iceberg history table
 * (snapshots, one record's versions, a snapshot's rows), its maintenance (expire, gc,
 * compact) and a one-shot export.  It takes the same -c/--set options as `run`; queries
 * print JSON lines on stdout.  INVARIANT(history-exported-once) is the exporter's; this
 * command only reads the table or rewrites it without changing its rows.
 */
#include "app/app_int.h"
#include "iceberg/iceberg.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <strings.h>

enum {
    OPT_SET = 1000,
    OPT_VECTORS,
    OPT_AS_OF,
    OPT_SNAPSHOT,
    OPT_OLDER_THAN,
    OPT_RETAIN_LAST,
    OPT_GRACE,
    OPT_DRY_RUN,
    OPT_TARGET_SIZE,
};

typedef struct hist_args {
    rf_app_confargs_t ca;
    const char *sub;
    const char *arg; /* record ID */
    int vectors, dry_run;
    const char *as_of, *snapshot, *older_than, *retain_last, *grace, *target_size;
} hist_args_t;

static rf_rc print_line(void *opaque, const char *line, size_t len)
{
    FILE *fp = opaque;
    if (fwrite(line, 1, len, fp) != len || fputc('\n', fp) == EOF)
        return RF_EIO;
    return RF_OK;
}

/* Exit code for a failure: a missing catalog or table is an unavailable dependency. */
static int fail(const char *sub, rf_rc rc, const rf_err_t *err, int open_phase)
{
    fprintf(stderr, "ragfeed history %s: %s\n", sub, err->msg[0] ? err->msg : rf_rc_msg(rc));
    if (open_phase && (rc == RF_ENOTFOUND || rc == RF_EUNAVAIL))
        return RF_EXIT_UNAVAILABLE;
    return rf__app_exit_for(rc);
}

static int parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end = NULL;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* Sizes like 134217728, 128MiB, 64M, 512k. */
static int parse_size(const char *s, int64_t *out)
{
    char *end = NULL;
    double v;
    double mul = 1;
    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno || !(v > 0))
        return -1;
    if (!strcasecmp(end, "k") || !strcasecmp(end, "kib") || !strcasecmp(end, "kb"))
        mul = 1024;
    else if (!strcasecmp(end, "m") || !strcasecmp(end, "mib") || !strcasecmp(end, "mb"))
        mul = 1024.0 * 1024;
    else if (!strcasecmp(end, "g") || !strcasecmp(end, "gib") || !strcasecmp(end, "gb"))
        mul = 1024.0 * 1024 * 1024;
    else if (*end)
        return -1;
    if (v * mul < 65536 || v * mul > 17179869184.0)
        return -1;
    *out = (int64_t)(v * mul);
    return 0;
}

static int run_export(const rf_conf_t *cfg)
{
    rf_err_t err = {0};
    int64_t rows = 0, commits = 0;
    rf_rc rc = rf_iceberg_export_run(cfg, &rows, &commits, &err);
    if (rc)
        return fail("export", rc, &err, rc == RF_EUNAVAIL || rc == RF_ENOTFOUND);
    printf("{\"rows\":%" PRId64 ",\"commits\":%" PRId64 "}\n", rows, commits);
    return RF_EXIT_OK;
}

static void print_result(const rf_iceberg_maint_result_t *res)
{
    printf("{\"snapshot_id\":");
    if (res->snapshot_id >= 0)
        printf("%" PRId64, res->snapshot_id);
    else
        printf("null");
    printf(",\"snapshots_expired\":%" PRId64 ",\"files_deleted\":%" PRId64
           ",\"bytes_deleted\":%" PRId64 ",\"files_rewritten\":%" PRId64 ",\"files_added\":%" PRId64
           ",\"rows_rewritten\":%" PRId64 "}\n",
           res->snapshots_expired, res->files_deleted, res->bytes_deleted, res->files_rewritten,
           res->files_added, res->rows_rewritten);
}

static int run_sub(const hist_args_t *a, const rf_conf_t *cfg)
{
    rf_iceberg_history_t *h = NULL;
    rf_iceberg_maint_result_t res;
    rf_err_t err = {0};
    int64_t v = -1, as_of = -1, snapshot = -1;
    rf_rc rc;
    int code = RF_EXIT_OK;

    if (!strcmp(a->sub, "export"))
        return run_export(cfg);
    if ((rc = rf_iceberg_history_open(cfg, &h, &err)))
        return fail(a->sub, rc, &err, 1);
    if (!strcmp(a->sub, "snapshots")) {
        rc = rf_iceberg_history_snapshots(h, print_line, stdout, &err);
    } else if (!strcmp(a->sub, "record")) {
        rc = rf_iceberg_history_record(h, a->arg, a->vectors, print_line, stdout, &err);
    } else if (!strcmp(a->sub, "scan")) {
        if (a->snapshot)
            (void)parse_int(a->snapshot, 0, INT64_MAX, &snapshot);
        if (a->as_of)
            (void)rf_iceberg_time_parse(a->as_of, &as_of);
        rc = rf_iceberg_history_scan(h, snapshot, as_of, a->vectors, print_line, stdout, &err);
    } else if (!strcmp(a->sub, "expire")) {
        int64_t older = 0, retain = 1;
        if (!rf_iceberg_duration_parse(a->older_than, &v))
            older = rf_now_ms() - v;
        else
            (void)rf_iceberg_time_parse(a->older_than, &older);
        if (a->retain_last)
            (void)parse_int(a->retain_last, 1, 1000000, &retain);
        rc = rf_iceberg_history_expire(h, older, (int)retain, &res, &err);
        if (!rc)
            print_result(&res);
    } else if (!strcmp(a->sub, "gc")) {
        int64_t grace = 86400000;
        if (a->grace)
            (void)rf_iceberg_duration_parse(a->grace, &grace);
        rc = rf_iceberg_history_gc(h, grace, a->dry_run, &res, &err);
        if (!rc)
            print_result(&res);
    } else {
        int64_t target = 0;
        if (a->target_size)
            (void)parse_size(a->target_size, &target);
        rc = rf_iceberg_history_compact(h, target, &res, &err);
        if (!rc)
            print_result(&res);
    }
    if (rc)
        code = fail(a->sub, rc, &err, 0);
    if (fflush(stdout) != 0 && code == RF_EXIT_OK)
        code = RF_EXIT_FAILURE;
    rf_iceberg_history_close(h);
    return code;
}

/* Checks that the options given fit the subcommand and their values parse. */
static int check_args(const hist_args_t *a, int npos)
{
    const char *s = a->sub;
    int64_t v;
    static const char *const subs[] = {"snapshots", "record",  "scan",   "expire",
                                       "gc",        "compact", "export", NULL};
    int known = 0;
    for (int i = 0; subs[i]; i++)
        known |= !strcmp(s, subs[i]);
    if (!known)
        return rf__app_usage_error("history", "unknown subcommand \"%s\"", s);
    if (!strcmp(s, "record") ? npos != 2 : npos != 1)
        return rf__app_usage_error("history", "%s takes %s", s,
                                   !strcmp(s, "record") ? "one record ID" : "no arguments");
    if (a->vectors && strcmp(s, "record") && strcmp(s, "scan"))
        return rf__app_usage_error("history", "--vectors applies to record and scan");
    if ((a->as_of || a->snapshot) && strcmp(s, "scan"))
        return rf__app_usage_error("history", "--as-of and --snapshot apply to scan");
    if (a->as_of && a->snapshot)
        return rf__app_usage_error("history", "give --as-of or --snapshot, not both");
    if (a->snapshot && parse_int(a->snapshot, 0, INT64_MAX, &v))
        return rf__app_usage_error("history", "--snapshot %s: expected a snapshot id", a->snapshot);
    if (a->as_of && rf_iceberg_time_parse(a->as_of, &v))
        return rf__app_usage_error(
            "history", "--as-of %s: expected an ISO-8601 time or epoch milliseconds", a->as_of);
    if ((a->older_than || a->retain_last) && strcmp(s, "expire"))
        return rf__app_usage_error("history", "--older-than and --retain-last apply to expire");
    if (!strcmp(s, "expire") && !a->older_than)
        return rf__app_usage_error("history", "expire needs --older-than DURATION|TIME");
    if (a->older_than && rf_iceberg_duration_parse(a->older_than, &v) &&
        rf_iceberg_time_parse(a->older_than, &v))
        return rf__app_usage_error("history",
                                   "--older-than %s: expected a duration (7d, 12h, 30m) or a time",
                                   a->older_than);
    if (a->retain_last && parse_int(a->retain_last, 1, 1000000, &v))
        return rf__app_usage_error("history", "--retain-last %s: expected 1..1000000",
                                   a->retain_last);
    if ((a->grace || a->dry_run) && strcmp(s, "gc"))
        return rf__app_usage_error("history", "--grace and --dry-run apply to gc");
    if (a->grace && rf_iceberg_duration_parse(a->grace, &v))
        return rf__app_usage_error("history", "--grace %s: expected a duration (1h, 2d)", a->grace);
    if (a->target_size && strcmp(s, "compact"))
        return rf__app_usage_error("history", "--target-size applies to compact");
    if (a->target_size && parse_size(a->target_size, &v))
        return rf__app_usage_error(
            "history", "--target-size %s: expected 64KiB..16GiB (e.g. 128MiB)", a->target_size);
    return -1;
}

int rf__app_cmd_history(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, OPT_SET},
        {"help", no_argument, NULL, 'h'},
        {"vectors", no_argument, NULL, OPT_VECTORS},
        {"as-of", required_argument, NULL, OPT_AS_OF},
        {"snapshot", required_argument, NULL, OPT_SNAPSHOT},
        {"older-than", required_argument, NULL, OPT_OLDER_THAN},
        {"retain-last", required_argument, NULL, OPT_RETAIN_LAST},
        {"grace", required_argument, NULL, OPT_GRACE},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"target-size", required_argument, NULL, OPT_TARGET_SIZE},
        {NULL, 0, NULL, 0}};
    hist_args_t a;
    rf_conf_t *cfg;
    const char *pos[3] = {NULL, NULL, NULL};
    int npos = 0, opt, code = RF_EXIT_OK;

    memset(&a, 0, sizeof a);
    a.ca.sets = rf_xcalloc((size_t)argc, sizeof(char *));
    optind = 1;
    opterr = 0;
    /* Options may come before or after the subcommand ("-" first in optstring: every
     * non-option argument is returned in order, as 1). */
    while ((opt = getopt_long(argc, argv, "-c:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 1:
            if (npos < 3)
                pos[npos] = optarg;
            npos++;
            break;
        case 'c':
            a.ca.file = optarg;
            break;
        case OPT_SET:
            a.ca.sets[a.ca.set_cnt++] = optarg;
            break;
        case 'h':
            free(a.ca.sets);
            return rf__app_cmd_help("history");
        case OPT_VECTORS:
            a.vectors = 1;
            break;
        case OPT_AS_OF:
            a.as_of = optarg;
            break;
        case OPT_SNAPSHOT:
            a.snapshot = optarg;
            break;
        case OPT_OLDER_THAN:
            a.older_than = optarg;
            break;
        case OPT_RETAIN_LAST:
            a.retain_last = optarg;
            break;
        case OPT_GRACE:
            a.grace = optarg;
            break;
        case OPT_DRY_RUN:
            a.dry_run = 1;
            break;
        case OPT_TARGET_SIZE:
            a.target_size = optarg;
            break;
        default:
            free(a.ca.sets);
            return rf__app_usage_error("history", "unknown or incomplete option \"%s\"",
                                       argv[optind - 1]);
        }
    }
    if (npos == 0) {
        free(a.ca.sets);
        return rf__app_usage_error("history", "missing subcommand");
    }
    a.sub = pos[0];
    a.arg = pos[1];
    if ((code = check_args(&a, npos)) >= 0) {
        free(a.ca.sets);
        return code;
    }
    code = RF_EXIT_OK;
    cfg = rf__app_conf_load(&a.ca, 0, &code);
    free(a.ca.sets);
    if (!cfg)
        return code;
    if (rf__app_log_setup(cfg, &code) == 0)
        code = run_sub(&a, cfg);
    rf_conf_free(cfg);
    return code;
}
