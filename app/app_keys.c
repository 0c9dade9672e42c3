/* app_keys.c - `ragfeed keys create|list|revoke`: API keys for the HTTP API, kept hashed
 * in <state.dir>/keys.db through serve/'s key store.  `create` prints the new key alone
 * on the first line of stdout (the only time it is ever shown); `list` never shows keys.
 * A running server picks changes up within a second.
 */
#include "app/app_int.h"
#include "serve/serve.h"

#include <getopt.h>
#include <string.h>
#include <time.h>

enum { OPT_SET = 1000, OPT_TENANT, OPT_ADMIN, OPT_HELP };

typedef struct keys_args {
    rf_app_confargs_t ca;
    const char *tenant;
    int admin;
} keys_args_t;

/* Parses options up to the next non-option argument.  Returns -1 to go on, or the exit
 * code to return (help printed or usage error). */
static int keys_opts(int argc, char **argv, keys_args_t *a)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},        {"set", required_argument, NULL, OPT_SET},
        {"tenant", required_argument, NULL, OPT_TENANT}, {"admin", no_argument, NULL, OPT_ADMIN},
        {"help", no_argument, NULL, OPT_HELP},           {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            a->ca.file = optarg;
            break;
        case OPT_SET:
            a->ca.sets[a->ca.set_cnt++] = optarg;
            break;
        case OPT_TENANT:
            a->tenant = optarg;
            break;
        case OPT_ADMIN:
            a->admin = 1;
            break;
        case 'h':
        case OPT_HELP:
            return rf__app_cmd_help("keys");
        default:
            return rf__app_usage_error("keys", "unknown or incomplete option \"%s\"",
                                       argv[optind - 1]);
        }
    }
    return -1;
}

/* UTC time as 2024-05-01T12:00:00Z, or "-" for 0. */
static void iso_time(int64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&t, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, n, "-");
}

static int keys_create(rf_serve_keys_t *ks, const keys_args_t *a)
{
    rf_serve_key_info_t info;
    rf_err_t err = {0};
    char *key = NULL;

    if (rf_serve_keys_create(ks, a->tenant, a->admin, &key, &info, &err)) {
        fprintf(stderr, "ragfeed keys: %s\n", err.msg);
        return rf__app_exit_for(err.code);
    }
    /* The key alone on the first line, for scripts; the description goes to stderr. */
    printf("%s\n", key);
    fflush(stdout);
    fprintf(stderr, "created key id=%s tenant=%s rights=%s; it is shown only now\n", info.id,
            info.tenant ? info.tenant : "*", info.admin ? "admin" : "read");
    free(key);
    rf_serve_key_info_fini(&info);
    return RF_EXIT_OK;
}

static int keys_list(rf_serve_keys_t *ks)
{
    rf_serve_key_info_t *infos = NULL;
    rf_err_t err = {0};
    size_t cnt = 0;

    if (rf_serve_keys_list(ks, &infos, &cnt, &err)) {
        fprintf(stderr, "ragfeed keys: %s\n", err.msg);
        return rf__app_exit_for(err.code);
    }
    printf("%-18s %-23s %-16s %-6s %-21s %s\n", "ID", "PREFIX", "TENANT", "RIGHTS", "CREATED",
           "REVOKED");
    for (size_t i = 0; i < cnt; i++) {
        char created[32], revoked[32];
        iso_time(infos[i].created_ms, created, sizeof(created));
        iso_time(infos[i].revoked_ms, revoked, sizeof(revoked));
        printf("%-18s %-23s %-16s %-6s %-21s %s\n", infos[i].id, infos[i].prefix,
               infos[i].tenant ? infos[i].tenant : "*", infos[i].admin ? "admin" : "read", created,
               revoked);
    }
    rf_serve_key_infos_free(infos, cnt);
    return RF_EXIT_OK;
}

static int keys_revoke(rf_serve_keys_t *ks, const char *id)
{
    rf_err_t err = {0};
    if (rf_serve_keys_revoke(ks, id, &err)) {
        fprintf(stderr, "ragfeed keys: %s\n", err.msg);
        return err.code == RF_ENOTFOUND ? RF_EXIT_FAILURE : rf__app_exit_for(err.code);
    }
    printf("revoked %s\n", id);
    return RF_EXIT_OK;
}

int rf__app_cmd_keys(int argc, char **argv)
{
    keys_args_t a;
    rf_conf_t *cfg = NULL;
    rf_serve_keys_t *ks = NULL;
    rf_err_t err = {0};
    const char *sub, *id = NULL;
    char *path = NULL;
    int code;

    memset(&a, 0, sizeof(a));
    a.ca.sets = rf_xcalloc((size_t)argc + 1, sizeof(char *));
    optind = 1;
    opterr = 0;
    if ((code = keys_opts(argc, argv, &a)) >= 0)
        goto out;
    if (optind >= argc) {
        code = rf__app_usage_error("keys", "missing subcommand (create, list or revoke)");
        goto out;
    }
    sub = argv[optind++];
    /* Options may also follow the subcommand: `keys create --tenant acme`. */
    if ((code = keys_opts(argc, argv, &a)) >= 0)
        goto out;
    if (!strcmp(sub, "revoke")) {
        if (optind >= argc) {
            code = rf__app_usage_error("keys", "revoke needs the key's ID (see `keys list`)");
            goto out;
        }
        id = argv[optind++];
        if ((code = keys_opts(argc, argv, &a)) >= 0)
            goto out;
    } else if (strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0) {
        code = rf__app_usage_error("keys", "unknown subcommand \"%s\"", sub);
        goto out;
    }
    if (optind < argc) {
        code = rf__app_usage_error("keys", "unexpected argument \"%s\"", argv[optind]);
        goto out;
    }
    if (strcmp(sub, "create") != 0 && (a.tenant || a.admin)) {
        code = rf__app_usage_error("keys", "--tenant and --admin go with create");
        goto out;
    }

    cfg = rf__app_conf_load(&a.ca, 0, &code);
    if (!cfg)
        goto out;
    if (rf_mkdirs(cfg->state_dir, &err) ||
        rf_serve_keys_open((path = rf_xasprintf("%s/keys.db", cfg->state_dir)), &ks, &err)) {
        fprintf(stderr, "ragfeed keys: %s\n", err.msg);
        code = rf__app_exit_for(err.code);
        goto out;
    }
    if (!strcmp(sub, "create"))
        code = keys_create(ks, &a);
    else if (!strcmp(sub, "list"))
        code = keys_list(ks);
    else
        code = keys_revoke(ks, id);
out:
    rf_serve_keys_close(ks);
    free(path);
    rf_conf_free(cfg);
    free(a.ca.sets);
    return code;
}
