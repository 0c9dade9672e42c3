/* app_config.c - loading the configuration for a command (defaults < file <
 * environment < --set), and the `config` and `version` commands.  Bad configuration is
 * refused here, at start, with exit code 3. */
#include "app/app_int.h"

#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <sodium.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

extern char **environ;

#define DEFAULT_CONF "configs/ragfeed.properties"

rf_conf_t *rf__app_conf_load(const rf_app_confargs_t *ca, int for_run, int *exit_code)
{
    rf_conf_t *cfg = rf_conf_new();
    rf_err_t err = {0};
    const char *file = ca->file;
    if (!file && access(DEFAULT_CONF, R_OK) == 0)
        file = DEFAULT_CONF;
    if (file && rf_conf_load_file(cfg, file, &err))
        goto fail;
    if (rf_conf_load_env(cfg, environ, &err))
        goto fail;
    for (size_t i = 0; i < ca->set_cnt; i++) {
        const char *eq = strchr(ca->sets[i], '=');
        char *key;
        int rc;
        if (!eq || eq == ca->sets[i]) {
            rf_err_set(&err, RF_ECONFIG, "--set %s: expected KEY=VALUE", ca->sets[i]);
            goto fail;
        }
        key = rf_xstrndup(ca->sets[i], (size_t)(eq - ca->sets[i]));
        rc = rf_conf_set(cfg, key, eq + 1, RF_CONF_ORIGIN_CLI, "--set", &err);
        free(key);
        if (rc)
            goto fail;
    }
    if (rf_conf_finalize(cfg, for_run, &err))
        goto fail;
    return cfg;
fail:
    fprintf(stderr, "ragfeed: configuration error: %s\n", err.msg);
    *exit_code = RF_EXIT_CONFIG;
    rf_conf_free(cfg);
    return NULL;
}

int rf__app_log_setup(const rf_conf_t *cfg, int *exit_code)
{
    rf_err_t err = {0};
    if (rf_log_setup((rf_log_level)cfg->log_level, (rf_log_format)cfg->log_format, cfg->log_debug,
                     &err)) {
        fprintf(stderr, "ragfeed: configuration error: %s\n", err.msg);
        *exit_code = RF_EXIT_CONFIG;
        return -1;
    }
    return 0;
}

enum { OPT_SET = 1000, OPT_EFFECTIVE, OPT_HELP };

typedef struct config_args {
    rf_app_confargs_t ca;
    const char *output;
    int effective;
} config_args_t;

/* Parses options up to the next non-option argument.  Returns -1 to go on, or the exit
 * code to return (help printed or usage error). */
static int config_opts(int argc, char **argv, config_args_t *a)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},        {"set", required_argument, NULL, OPT_SET},
        {"effective", no_argument, NULL, OPT_EFFECTIVE}, {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, OPT_HELP},           {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "+c:o:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            a->ca.file = optarg;
            break;
        case OPT_SET:
            a->ca.sets[a->ca.set_cnt++] = optarg;
            break;
        case OPT_EFFECTIVE:
            a->effective = 1;
            break;
        case 'o':
            a->output = optarg;
            break;
        case 'h':
        case OPT_HELP:
            return rf__app_cmd_help("config");
        default:
            return rf__app_usage_error("config", "unknown or incomplete option \"%s\"",
                                       argv[optind - 1]);
        }
    }
    return -1;
}

int rf__app_cmd_config(int argc, char **argv)
{
    config_args_t a = {0};
    rf_app_confargs_t ca;
    const char *output, *sub;
    int effective, code = RF_EXIT_OK;
    rf_conf_t *cfg = NULL;

    a.ca.sets = rf_xcalloc((size_t)argc, sizeof(char *));
    optind = 1;
    opterr = 0;
    if ((code = config_opts(argc, argv, &a)) >= 0)
        goto out;
    code = RF_EXIT_OK;
    if (optind >= argc) {
        code = rf__app_usage_error("config", "missing subcommand (check, dump or doc)");
        goto out;
    }
    sub = argv[optind++];
    /* Options may also follow the subcommand: `config dump --effective`. */
    if ((code = config_opts(argc, argv, &a)) >= 0)
        goto out;
    code = RF_EXIT_OK;
    ca = a.ca;
    output = a.output;
    effective = a.effective;

    if (!strcmp(sub, "check")) {
        if (optind < argc)
            ca.file = argv[optind++];
        if (optind < argc) {
            code = rf__app_usage_error("config", "unexpected argument \"%s\"", argv[optind]);
            goto out;
        }
        cfg = rf__app_conf_load(&ca, 0, &code);
        if (cfg)
            printf("%s: ok\n", ca.file ? ca.file : "configuration");
    } else if (!strcmp(sub, "dump")) {
        if (optind < argc) {
            code = rf__app_usage_error("config", "unexpected argument \"%s\"", argv[optind]);
            goto out;
        }
        cfg = rf__app_conf_load(&ca, 0, &code);
        if (cfg)
            rf_conf_dump(cfg, stdout, effective);
    } else if (!strcmp(sub, "doc")) {
        FILE *fp = stdout;
        if (optind < argc) {
            code = rf__app_usage_error("config", "unexpected argument \"%s\"", argv[optind]);
            goto out;
        }
        if (output && !(fp = fopen(output, "w"))) {
            fprintf(stderr, "ragfeed config: cannot write %s\n", output);
            code = RF_EXIT_FAILURE;
            goto out;
        }
        rf_conf_doc(fp);
        if (fp != stdout)
            fclose(fp);
    } else {
        code = rf__app_usage_error("config", "unknown subcommand \"%s\"", sub);
    }
out:
    rf_conf_free(cfg);
    free(a.ca.sets);
    return code;
}

int rf__app_cmd_version(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
        return rf__app_cmd_help("version");
    if (argc > 1)
        return rf__app_usage_error("version", "unexpected argument \"%s\"", argv[1]);
    printf("ragfeed %s\n", RF_VERSION);
    printf("librdkafka %s\n", rd_kafka_version_str());
    printf("sqlite %s\n", sqlite3_libversion());
    printf("jansson %s\n", JANSSON_VERSION);
    printf("libcurl %s\n", curl_version_info(CURLVERSION_NOW)->version);
    printf("libmicrohttpd %s\n", MHD_get_version());
    printf("libsodium %s\n", sodium_version_string());
    printf("zstd %s\n", ZSTD_versionString());
    return RF_EXIT_OK;
}
