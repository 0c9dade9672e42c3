/* test_conf.c - the configuration table: file parsing with file:line errors,
 * precedence default < file < env < cli, types and ranges, kafka.* pass-through,
 * environment mapping, dumps with secrets redacted, and cross-option checks. */
#include "core/core.h"
#include "rf_test.h"

#include <stdio.h>
#include <string.h>

static char *write_tmp(const char *dir, const char *name, const char *text)
{
    char *path = rf_xasprintf("%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    return path;
}

static void test_defaults(void)
{
    rf_conf_t *cfg = rf_conf_new();
    RF_CHECK_INT(cfg->embed_dim, 384);
    RF_CHECK_STR(cfg->serve_listen, "127.0.0.1:8080");
    RF_CHECK_INT(cfg->source_format, RF_SOURCE_FORMAT_DEBEZIUM);
    RF_CHECK(cfg->source_topics == NULL);
    rf_conf_free(cfg);
}

static void test_file_parse_and_errors(void)
{
    char *dir = rf_test_tmpdir("conf");
    rf_err_t err = {0};
    rf_conf_t *cfg = rf_conf_new();
    char *ok = write_tmp(dir, "ok.properties",
                         "# comment\n! also a comment\n\n"
                         "source.topics = a, b ,c\n"
                         "embed.dim=512\n"
                         "source.text = {title}\\n{body}\n"
                         "source.metadata.fields = x,\\\n    y\n"
                         "kafka.bootstrap.servers = 127.0.0.1:9092\n"
                         "kafka.sasl.password = hunter2\n");
    RF_REQUIRE(rf_conf_load_file(cfg, ok, &err) == RF_OK);
    RF_CHECK_INT(cfg->embed_dim, 512);
    RF_CHECK_STR(cfg->source_text, "{title}\n{body}");
    RF_CHECK_STR(cfg->source_metadata_fields, "x,y");
    RF_CHECK_STR(rf_conf_kafka_get(cfg, "bootstrap.servers"), "127.0.0.1:9092");
    {
        char **items;
        size_t n = rf_conf_list_split(cfg->source_topics, &items);
        RF_CHECK_INT(n, 3);
        if (n == 3) {
            RF_CHECK_STR(items[0], "a");
            RF_CHECK_STR(items[1], "b");
            RF_CHECK_STR(items[2], "c");
        }
        free(items);
    }
    rf_conf_free(cfg);

    cfg = rf_conf_new();
    char *bad = write_tmp(dir, "bad.properties", "state.dir = /x\n\nembed.dim = lots\n");
    RF_CHECK_INT(rf_conf_load_file(cfg, bad, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "bad.properties:3") != NULL);
    RF_CHECK(strstr(err.msg, "embed.dim=lots") != NULL);
    RF_CHECK(strstr(err.msg, "expected an integer") != NULL);
    rf_conf_free(cfg);

    cfg = rf_conf_new();
    char *range = write_tmp(dir, "range.properties", "embed.dim = 3\n");
    RF_CHECK_INT(rf_conf_load_file(cfg, range, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "range.properties:1: embed.dim=3: expected an integer in 8..8192") !=
             NULL);
    rf_conf_free(cfg);

    cfg = rf_conf_new();
    char *unk = write_tmp(dir, "unk.properties", "sauce.topics = a\n");
    RF_CHECK_INT(rf_conf_load_file(cfg, unk, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "unk.properties:1: sauce.topics=a: unknown key") != NULL);
    rf_conf_free(cfg);

    cfg = rf_conf_new();
    char *en = write_tmp(dir, "enum.properties", "source.format = avro\n");
    RF_CHECK_INT(rf_conf_load_file(cfg, en, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "source.format=avro: expected one of debezium, json") != NULL);
    rf_conf_free(cfg);

    cfg = rf_conf_new();
    RF_CHECK_INT(rf_conf_load_file(cfg, "/nonexistent/x.properties", &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "/nonexistent/x.properties") != NULL);
    rf_conf_free(cfg);

    free(ok);
    free(bad);
    free(range);
    free(unk);
    free(en);
    rf_test_rmtree(dir);
    free(dir);
}

static void test_precedence(void)
{
    char *dir = rf_test_tmpdir("conf");
    char *f = write_tmp(dir, "p.properties", "embed.dim = 100\nstate.dir = /from/file\n");
    char *env[] = {"RAGFEED_EMBED_DIM=200", "RAGFEED_STATE_DIR=/from/env",
                   "RAGFEED_KAFKA_BOOTSTRAP_SERVERS=1.2.3.4:9", "PATH=/bin", NULL};
    rf_err_t err = {0};
    rf_conf_t *cfg = rf_conf_new();
    /* CLI first, then env, then file: the order of application must not matter. */
    RF_REQUIRE(rf_conf_set(cfg, "embed.dim", "300", RF_CONF_ORIGIN_CLI, "--set", &err) == 0);
    RF_REQUIRE(rf_conf_load_env(cfg, env, &err) == 0);
    RF_REQUIRE(rf_conf_load_file(cfg, f, &err) == 0);
    RF_CHECK_INT(cfg->embed_dim, 300);
    RF_CHECK_STR(cfg->state_dir, "/from/env");
    RF_CHECK_STR(rf_conf_kafka_get(cfg, "bootstrap.servers"), "1.2.3.4:9");
    rf_conf_free(cfg);

    char *badenv[] = {"RAGFEED_NO_SUCH_THING=1", NULL};
    cfg = rf_conf_new();
    RF_CHECK_INT(rf_conf_load_env(cfg, badenv, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "RAGFEED_NO_SUCH_THING") != NULL);
    rf_conf_free(cfg);
    free(f);
    rf_test_rmtree(dir);
    free(dir);
}

static void test_finalize(void)
{
    rf_err_t err = {0};
    rf_conf_t *cfg = rf_conf_new();
    RF_CHECK_INT(rf_conf_finalize(cfg, 0, &err), RF_OK);
    RF_CHECK_INT(rf_conf_finalize(cfg, 1, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "source.topics") != NULL);
    rf_conf_set(cfg, "source.topics", "t", RF_CONF_ORIGIN_CLI, "--set", NULL);
    RF_CHECK_INT(rf_conf_finalize(cfg, 1, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "kafka.bootstrap.servers") != NULL);
    rf_conf_set(cfg, "kafka.bootstrap.servers", "127.0.0.1:1", RF_CONF_ORIGIN_CLI, "--set", NULL);
    RF_CHECK_INT(rf_conf_finalize(cfg, 1, &err), RF_OK);
    rf_conf_set(cfg, "source.dlq.topic", "t", RF_CONF_ORIGIN_CLI, "--set", NULL);
    RF_CHECK_INT(rf_conf_finalize(cfg, 1, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "source.dlq.topic=t") != NULL);
    rf_conf_set(cfg, "source.dlq.topic", "dlq", RF_CONF_ORIGIN_CLI, "--set", NULL);
    rf_conf_set(cfg, "serve.listen", "nohost", RF_CONF_ORIGIN_CLI, "--set", NULL);
    RF_CHECK_INT(rf_conf_finalize(cfg, 1, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "serve.listen=nohost: expected HOST:PORT") != NULL);
    rf_conf_set(cfg, "serve.listen", "127.0.0.1:0", RF_CONF_ORIGIN_CLI, "--set", NULL);
    /* CPU lists: refused with the key, the value and what was expected. */
    rf_conf_set(cfg, "ingest.cpus", "100000", RF_CONF_ORIGIN_CLI, "--set", NULL);
    RF_CHECK_INT(rf_conf_finalize(cfg, 1, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "ingest.cpus=100000: CPU 100000: expected CPUs this process may "
                             "run on") != NULL);
    rf_conf_set(cfg, "ingest.cpus", "0", RF_CONF_ORIGIN_CLI, "--set", NULL);
    rf_conf_set(cfg, "serve.cpus", "0,x", RF_CONF_ORIGIN_CLI, "--set", NULL);
    RF_CHECK_INT(rf_conf_finalize(cfg, 1, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "serve.cpus=0,x: at \"x\": expected a CPU number") != NULL);
    rf_conf_set(cfg, "serve.cpus", "0", RF_CONF_ORIGIN_CLI, "--set", NULL);
    RF_CHECK_INT(rf_conf_finalize(cfg, 1, &err), RF_OK);
    /* ...and kept parsed for the threads that take them. */
    RF_CHECK(cfg->ingest_cpu_set.cnt == 1 && rf_cpus_has(&cfg->ingest_cpu_set, 0));
    RF_CHECK(cfg->serve_cpu_set.cnt == 1 && rf_cpus_has(&cfg->serve_cpu_set, 0));
    rf_conf_set(cfg, "source.assignment", "group", RF_CONF_ORIGIN_CLI, "--set", NULL);
    RF_CHECK_INT(rf_conf_finalize(cfg, 1, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "kafka.group.id") != NULL);
    rf_conf_free(cfg);
}

static void test_dump_redacts_and_round_trips(void)
{
    char *dir = rf_test_tmpdir("conf");
    char *path = rf_xasprintf("%s/dump.properties", dir);
    rf_err_t err = {0};
    rf_conf_t *cfg = rf_conf_new(), *again = rf_conf_new();
    rf_conf_set(cfg, "kafka.sasl.password", "hunter2", RF_CONF_ORIGIN_FILE, "f:1", NULL);
    rf_conf_set(cfg, "source.text", "{a}\n{b}", RF_CONF_ORIGIN_FILE, "f:2", NULL);
    FILE *fp = fopen(path, "w");
    rf_conf_dump(cfg, fp, 0);
    fclose(fp);
    char *text = rf_test_read_file(path, NULL);
    RF_CHECK(strstr(text, "hunter2") == NULL);
    RF_CHECK(strstr(text, "kafka.sasl.password = [redacted]") != NULL);
    /* Everything but the redacted secret reads back to the same values. */
    RF_CHECK_INT(rf_conf_load_file(again, path, &err), RF_OK);
    RF_CHECK_STR(again->source_text, "{a}\n{b}");
    RF_CHECK_INT(again->embed_dim, cfg->embed_dim);
    free(text);
    fp = fopen(path, "w");
    rf_conf_dump(cfg, fp, 1);
    fclose(fp);
    text = rf_test_read_file(path, NULL);
    RF_CHECK(strstr(text, "# file f:2") != NULL);
    RF_CHECK(strstr(text, "embed.dim = 384    # default") != NULL);
    free(text);
    rf_conf_free(cfg);
    rf_conf_free(again);
    free(path);
    rf_test_rmtree(dir);
    free(dir);
}

static void test_every_option_documented(void)
{
    for (size_t i = 0; i < rf_conf_opts_cnt; i++) {
        const rf_conf_opt_t *o = &rf_conf_opts[i];
        RF_CHECK(o->desc && strlen(o->desc) > 10);
        RF_CHECK(rf_conf_opt_find(o->name) == o);
        if (o->type == RF_CONF_ENUM)
            RF_CHECK(o->choices && o->choices[0]);
    }
}

RF_TEST_MAIN(test_defaults, test_file_parse_and_errors, test_precedence, test_finalize,
             test_dump_redacts_and_round_trips, test_every_option_documented)
