/* core_conf.c - parsing and validating configuration from the option table.
 *
 * Precedence is enforced by origin: a value is replaced only by one from the same or a
 * higher origin (default < file < env < cli), so sources can be applied in any order.
 * Every refusal names where the value came from, the key, the value and what was
 * expected. */
#include "core.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KAFKA_PREFIX "kafka."

static const char *const origin_names[] = {"default", "file", "env", "cli"};

static void *field(rf_conf_t *cfg, const rf_conf_opt_t *opt)
{
    return (char *)cfg + opt->offset;
}

static const void *cfield(const rf_conf_t *cfg, const rf_conf_opt_t *opt)
{
    return (const char *)cfg + opt->offset;
}

const rf_conf_opt_t *rf_conf_opt_find(const char *name)
{
    for (size_t i = 0; i < rf_conf_opts_cnt; i++)
        if (!strcmp(rf_conf_opts[i].name, name))
            return &rf_conf_opts[i];
    return NULL;
}

size_t rf_conf_list_split(const char *list, char ***items)
{
    size_t n = 0, len = list ? strlen(list) : 0, k = 0;
    char **arr, *store;
    const char *p;
    *items = NULL;
    if (!list)
        return 0;
    for (p = list; *p; p++)
        if (*p == ',')
            n++;
    n++;
    /* One block: the pointer array followed by a copy of the text. */
    arr = rf_xmalloc(n * sizeof(char *) + len + 1);
    store = (char *)(arr + n);
    memcpy(store, list, len + 1);
    for (char *s = store;;) {
        char *e = strchr(s, ',');
        char *b = s, *t;
        if (e)
            *e = '\0';
        while (isspace((unsigned char)*b))
            b++;
        t = b + strlen(b);
        while (t > b && isspace((unsigned char)t[-1]))
            *--t = '\0';
        if (*b)
            arr[k++] = b;
        if (!e)
            break;
        s = e + 1;
    }
    if (k == 0) {
        free(arr);
        return 0;
    }
    *items = arr;
    return k;
}

/* Parses text for opt into the field, or explains what was expected. */
static int parse_value(rf_conf_t *cfg, const rf_conf_opt_t *opt, const char *value,
                       const char *where, rf_err_t *err)
{
    char *end;
    switch (opt->type) {
    case RF_CONF_STR:
    case RF_CONF_LIST: {
        char **p = field(cfg, opt);
        free(*p);
        *p = rf_xstrdup(value);
        return RF_OK;
    }
    case RF_CONF_INT: {
        long long v;
        errno = 0;
        v = strtoll(value, &end, 10);
        while (end && isspace((unsigned char)*end))
            end++;
        if (errno || end == value || *end) {
            return rf_err_set(err, RF_ECONFIG, "%s: %s=%s: expected an integer", where, opt->name,
                              value);
        }
        if (v < opt->imin || v > opt->imax) {
            return rf_err_set(err, RF_ECONFIG, "%s: %s=%s: expected an integer in %lld..%lld",
                              where, opt->name, value, (long long)opt->imin, (long long)opt->imax);
        }
        *(int64_t *)field(cfg, opt) = v;
        return RF_OK;
    }
    case RF_CONF_DBL: {
        double v;
        errno = 0;
        v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v) || v < opt->dmin || v > opt->dmax)
            return rf_err_set(err, RF_ECONFIG, "%s: %s=%s: expected a number in %g..%g", where,
                              opt->name, value, opt->dmin, opt->dmax);
        *(double *)field(cfg, opt) = v;
        return RF_OK;
    }
    case RF_CONF_BOOL: {
        static const char *const t[] = {"true", "1", "yes", "on"};
        static const char *const f[] = {"false", "0", "no", "off"};
        for (size_t i = 0; i < 4; i++) {
            if (!strcasecmp(value, t[i])) {
                *(int *)field(cfg, opt) = 1;
                return RF_OK;
            }
            if (!strcasecmp(value, f[i])) {
                *(int *)field(cfg, opt) = 0;
                return RF_OK;
            }
        }
        return rf_err_set(err, RF_ECONFIG, "%s: %s=%s: expected true or false", where, opt->name,
                          value);
    }
    case RF_CONF_ENUM: {
        rf_buf_t b;
        int rc;
        for (int i = 0; opt->choices[i]; i++)
            if (!strcmp(value, opt->choices[i])) {
                *(int *)field(cfg, opt) = i;
                return RF_OK;
            }
        rf_buf_init(&b, 0);
        for (int i = 0; opt->choices[i]; i++)
            rf_buf_printf(&b, "%s%s", i ? ", " : "", opt->choices[i]);
        rc = rf_err_set(err, RF_ECONFIG, "%s: %s=%s: expected one of %s", where, opt->name, value,
                        b.ptr);
        rf_buf_fini(&b);
        return rc;
    }
    }
    return rf_err_set(err, RF_ECONFIG, "%s: %s: unsupported option type", where, opt->name);
}

rf_conf_t *rf_conf_new(void)
{
    rf_conf_t *cfg = rf_xcalloc(1, sizeof(*cfg));
    cfg->origin = rf_xcalloc(rf_conf_opts_cnt, sizeof(*cfg->origin));
    cfg->where = rf_xcalloc(rf_conf_opts_cnt, sizeof(*cfg->where));
    for (size_t i = 0; i < rf_conf_opts_cnt; i++) {
        const rf_conf_opt_t *opt = &rf_conf_opts[i];
        if (opt->def) {
            int rc = parse_value(cfg, opt, opt->def, "default", NULL);
            assert(rc == RF_OK); /* the table's defaults are valid by construction */
            (void)rc;
        }
    }
    return cfg;
}

void rf_conf_free(rf_conf_t *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < rf_conf_opts_cnt; i++) {
        const rf_conf_opt_t *opt = &rf_conf_opts[i];
        if (opt->type == RF_CONF_STR || opt->type == RF_CONF_LIST)
            free(*(char **)field(cfg, opt));
        free(cfg->where[i]);
    }
    for (size_t i = 0; i < cfg->kafka_cnt; i++) {
        free(cfg->kafka[i].key);
        free(cfg->kafka[i].value);
        free(cfg->kafka[i].where);
    }
    free(cfg->kafka);
    free(cfg->origin);
    free(cfg->where);
    free(cfg);
}

static int set_kafka(rf_conf_t *cfg, const char *prop, const char *value, rf_conf_origin origin,
                     const char *where, rf_err_t *err)
{
    struct rf_conf_kv *kv = NULL;
    if (!*prop)
        return rf_err_set(err, RF_ECONFIG, "%s: kafka.=%s: expected kafka.<librdkafka property>",
                          where, value);
    for (size_t i = 0; i < cfg->kafka_cnt; i++)
        if (!strcmp(cfg->kafka[i].key, prop))
            kv = &cfg->kafka[i];
    if (kv) {
        if (kv->origin > origin)
            return RF_OK;
        free(kv->value);
        free(kv->where);
    } else {
        cfg->kafka = rf_xrealloc(cfg->kafka, (cfg->kafka_cnt + 1) * sizeof(*cfg->kafka));
        kv = &cfg->kafka[cfg->kafka_cnt++];
        kv->key = rf_xstrdup(prop);
    }
    kv->value = rf_xstrdup(value);
    kv->origin = origin;
    kv->where = rf_xstrdup(where);
    return RF_OK;
}

int rf_conf_set(rf_conf_t *cfg, const char *key, const char *value, rf_conf_origin origin,
                const char *where, rf_err_t *err)
{
    const rf_conf_opt_t *opt;
    size_t idx;
    int rc;
    if (!strncmp(key, KAFKA_PREFIX, strlen(KAFKA_PREFIX)))
        return set_kafka(cfg, key + strlen(KAFKA_PREFIX), value, origin, where, err);
    opt = rf_conf_opt_find(key);
    if (!opt)
        return rf_err_set(err, RF_ECONFIG,
                          "%s: %s=%s: unknown key (see `ragfeed config doc` for the list)", where,
                          key, value);
    idx = (size_t)(opt - rf_conf_opts);
    if (cfg->origin[idx] > origin)
        return RF_OK; /* a higher-precedence source already set it */
    rc = parse_value(cfg, opt, value, where, err);
    if (rc)
        return rc;
    cfg->origin[idx] = origin;
    free(cfg->where[idx]);
    cfg->where[idx] = rf_xstrdup(where);
    return RF_OK;
}

static char *trim(char *s)
{
    char *e;
    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Java-properties-style escapes that matter in values: \n \t \\ and \=. */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '\\' && r[1]) {
            r++;
            *w++ = *r == 'n' ? '\n' : *r == 't' ? '\t' : *r;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

int rf_conf_load_file(rf_conf_t *cfg, const char *path, rf_err_t *err)
{
    char *data = NULL, *line, *save;
    size_t len, lineno = 0;
    int rc = rf_file_read(path, 16 << 20, &data, &len, err);
    rf_buf_t logical;
    if (rc)
        return rf_err_set(err, RF_ECONFIG, "%s: cannot read configuration file (%s)", path,
                          err ? err->msg : rf_rc_msg(rc));
    rf_buf_init(&logical, 0);
    line = data;
    while (line && *line) {
        size_t start_line;
        char *nl, *kv, *sep, *key, *value, where[4096];
        rf_buf_reset(&logical);
        start_line = lineno + 1;
        /* Gather one logical line, joining lines that end in an odd run of '\'. */
        for (;;) {
            size_t n, bs = 0;
            nl = strchr(line, '\n');
            n = nl ? (size_t)(nl - line) : strlen(line);
            lineno++;
            if (n && line[n - 1] == '\r')
                n--;
            while (bs < n && line[n - 1 - bs] == '\\')
                bs++;
            save = nl ? nl + 1 : NULL;
            if (bs % 2 == 1) {
                char *piece = line;
                if (logical.len) {
                    while (*piece == ' ' || *piece == '\t')
                        piece++;
                    n -= (size_t)(piece - line);
                }
                rf_buf_append(&logical, piece, n - 1);
                line = save;
                if (!line)
                    break;
                continue;
            }
            {
                char *piece = line;
                if (logical.len)
                    while (*piece == ' ' || *piece == '\t') {
                        piece++;
                        n--;
                    }
                rf_buf_append(&logical, piece, n);
            }
            line = save;
            break;
        }
        kv = trim(logical.ptr ? logical.ptr : (char *)"");
        if (!*kv || *kv == '#' || *kv == '!')
            continue;
        snprintf(where, sizeof(where), "%s:%zu", path, start_line);
        sep = strpbrk(kv, "=:");
        if (!sep) {
            rc = rf_err_set(err, RF_ECONFIG, "%s: \"%s\": expected `key = value`", where, kv);
            break;
        }
        *sep = '\0';
        key = trim(kv);
        value = trim(sep + 1);
        unescape(value);
        rc = rf_conf_set(cfg, key, value, RF_CONF_ORIGIN_FILE, where, err);
        if (rc)
            break;
    }
    rf_buf_fini(&logical);
    free(data);
    return rc;
}

/* RAGFEED_STATE_DIR -> state.dir: match against every declared name with dots and
 * dashes as underscores; RAGFEED_KAFKA_X_Y -> kafka.x.y (librdkafka names use dots). */
int rf_conf_load_env(rf_conf_t *cfg, char *const *envp, rf_err_t *err)
{
    for (; envp && *envp; envp++) {
        const char *e = *envp, *eq = strchr(e, '=');
        char name[256], key[256], where[300];
        const rf_conf_opt_t *found = NULL;
        size_t n;
        int rc;
        if (strncmp(e, "RAGFEED_", 8) || !eq)
            continue;
        n = (size_t)(eq - e) - 8;
        if (n == 0 || n >= sizeof(name))
            continue;
        memcpy(name, e + 8, n);
        name[n] = '\0';
        snprintf(where, sizeof(where), "RAGFEED_%s", name);
        for (size_t i = 0; i < rf_conf_opts_cnt && !found; i++) {
            const char *o = rf_conf_opts[i].name;
            size_t j = 0;
            for (; o[j] && name[j]; j++) {
                char c = (o[j] == '.' || o[j] == '-') ? '_' : (char)toupper((unsigned char)o[j]);
                if (c != name[j])
                    break;
            }
            if (!o[j] && !name[j])
                found = &rf_conf_opts[i];
        }
        if (found) {
            rc = rf_conf_set(cfg, found->name, eq + 1, RF_CONF_ORIGIN_ENV, where, err);
        } else if (!strncmp(name, "KAFKA_", 6)) {
            snprintf(key, sizeof(key), "kafka.%s", name + 6);
            for (char *p = key + 6; *p; p++)
                *p = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
            rc = rf_conf_set(cfg, key, eq + 1, RF_CONF_ORIGIN_ENV, where, err);
        } else {
            rc = rf_err_set(err, RF_ECONFIG, "%s: unknown key (no option matches this variable)",
                            where);
        }
        if (rc)
            return rc;
    }
    return RF_OK;
}

static size_t opt_index(const char *name)
{
    const rf_conf_opt_t *opt = rf_conf_opt_find(name);
    return (size_t)(opt - rf_conf_opts);
}

static const char *where_of(const rf_conf_t *cfg, const char *name)
{
    const char *w = cfg->where[opt_index(name)];
    return w ? w : "default";
}

/* Cross-option checks of embed.* and classify.*. */
static int finalize_embed(const rf_conf_t *cfg, rf_err_t *err)
{
    char **items = NULL;
    size_t nlabels, ndesc = 0;
    int rc = RF_OK;
    if (cfg->embed_provider != RF_EMBED_PROVIDER_HASH) {
        const char *prov = rf_conf_opt_find("embed.provider")->choices[cfg->embed_provider];
        if (!cfg->embed_url || !*cfg->embed_url)
            return rf_err_set(err, RF_ECONFIG,
                              "%s: embed.provider=%s: expected embed.url to be set (the full "
                              "endpoint URL)",
                              where_of(cfg, "embed.provider"), prov);
        if (cfg->origin[opt_index("embed.model")] == RF_CONF_ORIGIN_DEFAULT)
            return rf_err_set(err, RF_ECONFIG,
                              "%s: embed.provider=%s: expected embed.model to name the "
                              "provider's model",
                              where_of(cfg, "embed.provider"), prov);
    }
    if (cfg->embed_url && *cfg->embed_url && strncmp(cfg->embed_url, "http://", 7) &&
        strncmp(cfg->embed_url, "https://", 8))
        return rf_err_set(err, RF_ECONFIG, "%s: embed.url=%s: expected an http:// or https:// URL",
                          where_of(cfg, "embed.url"), cfg->embed_url);
    if (cfg->embed_api_key && cfg->embed_api_key_env)
        return rf_err_set(err, RF_ECONFIG,
                          "%s: embed.api.key.env=%s: expected only one of embed.api.key and "
                          "embed.api.key.env",
                          where_of(cfg, "embed.api.key.env"), cfg->embed_api_key_env);
    if (cfg->classify_mode == RF_CLASSIFY_NONE)
        return RF_OK;
    nlabels = rf_conf_list_split(cfg->classify_labels, &items);
    free(items);
    if (nlabels < 2)
        return rf_err_set(err, RF_ECONFIG,
                          "%s: classify.mode=%s: expected classify.labels to list at least two "
                          "labels",
                          where_of(cfg, "classify.mode"),
                          cfg->classify_mode == RF_CLASSIFY_LLM ? "llm" : "nearest");
    if (cfg->classify_mode == RF_CLASSIFY_LLM && (!cfg->classify_url || !*cfg->classify_url ||
                                                  !cfg->classify_model || !*cfg->classify_model))
        return rf_err_set(err, RF_ECONFIG,
                          "%s: classify.mode=llm: expected classify.url and classify.model to "
                          "be set",
                          where_of(cfg, "classify.mode"));
    if (cfg->classify_url && strncmp(cfg->classify_url, "http://", 7) &&
        strncmp(cfg->classify_url, "https://", 8))
        return rf_err_set(err, RF_ECONFIG,
                          "%s: classify.url=%s: expected an http:// or https:// URL",
                          where_of(cfg, "classify.url"), cfg->classify_url);
    if (cfg->classify_label_descriptions) {
        ndesc = 1;
        for (const char *p = cfg->classify_label_descriptions; *p; p++)
            ndesc += *p == '|';
        if (ndesc != nlabels)
            rc = rf_err_set(err, RF_ECONFIG,
                            "%s: classify.label.descriptions: expected %zu `|`-separated "
                            "descriptions (one per label), got %zu",
                            where_of(cfg, "classify.label.descriptions"), nlabels, ndesc);
    }
    return rc;
}

int rf_conf_finalize(rf_conf_t *cfg, int for_run, rf_err_t *err)
{
    char **items = NULL;
    size_t n;
    if (for_run) {
        for (size_t i = 0; i < rf_conf_opts_cnt; i++) {
            const rf_conf_opt_t *opt = &rf_conf_opts[i];
            if (!(opt->flags & RF_CONF_REQUIRED))
                continue;
            if ((opt->type == RF_CONF_STR || opt->type == RF_CONF_LIST) &&
                (!*(char *const *)cfield(cfg, opt) || !**(char *const *)cfield(cfg, opt)))
                return rf_err_set(err, RF_ECONFIG, "%s: required, not set (%s)", opt->name,
                                  opt->desc);
        }
        if (!rf_conf_kafka_get(cfg, "bootstrap.servers"))
            return rf_err_set(err, RF_ECONFIG,
                              "kafka.bootstrap.servers: required, not set (the Kafka brokers, "
                              "HOST:PORT[,...])");
    }
    if (cfg->source_assignment == RF_SOURCE_ASSIGN_GROUP && !rf_conf_kafka_get(cfg, "group.id"))
        return rf_err_set(err, RF_ECONFIG,
                          "%s: source.assignment=group: expected kafka.group.id to be set",
                          where_of(cfg, "source.assignment"));
    n = rf_conf_list_split(cfg->source_topics, &items);
    for (size_t i = 0; i < n; i++) {
        if (cfg->source_dlq_topic && !strcmp(items[i], cfg->source_dlq_topic)) {
            int rc = rf_err_set(err, RF_ECONFIG,
                                "%s: source.dlq.topic=%s: expected a topic that is not one of "
                                "source.topics",
                                where_of(cfg, "source.dlq.topic"), cfg->source_dlq_topic);
            free(items);
            return rc;
        }
    }
    free(items);
    if (cfg->serve_listen) {
        const char *colon = strrchr(cfg->serve_listen, ':');
        char *end;
        long port = colon ? strtol(colon + 1, &end, 10) : -1;
        if (!colon || colon == cfg->serve_listen || !*(colon + 1) || *end || port < 0 ||
            port > 65535)
            return rf_err_set(err, RF_ECONFIG, "%s: serve.listen=%s: expected HOST:PORT",
                              where_of(cfg, "serve.listen"), cfg->serve_listen);
    }
    {
        static const char *const cpu_keys[] = {"ingest.cpus", "serve.cpus"};
        const char *cpu_vals[] = {cfg->ingest_cpus, cfg->serve_cpus};
        rf_cpus_t *cpu_sets[] = {&cfg->ingest_cpu_set, &cfg->serve_cpu_set};
        for (int i = 0; i < 2; i++) {
            rf_err_t e;
            if (rf_cpus_parse(cpu_vals[i], cpu_sets[i], &e))
                return rf_err_set(err, RF_ECONFIG, "%s: %s=%s: %s", where_of(cfg, cpu_keys[i]),
                                  cpu_keys[i], cpu_vals[i], e.msg);
        }
    }
    if (cfg->iceberg_table && !strchr(cfg->iceberg_table, '.'))
        return rf_err_set(err, RF_ECONFIG, "%s: iceberg.table=%s: expected namespace.name",
                          where_of(cfg, "iceberg.table"), cfg->iceberg_table);
    return finalize_embed(cfg, err);
}

const char *rf_conf_kafka_get(const rf_conf_t *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->kafka_cnt; i++)
        if (!strcmp(cfg->kafka[i].key, key))
            return cfg->kafka[i].value;
    return NULL;
}

/* ==== Dump and documentation ==== */

/* Kafka properties whose values must never be printed. */
static int kafka_secret(const char *key)
{
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "sasl.oauthbearer") ||
           strstr(key, "ssl.key");
}

static void value_text(const rf_conf_t *cfg, const rf_conf_opt_t *opt, char *buf, size_t n)
{
    const void *f = cfield(cfg, opt);
    switch (opt->type) {
    case RF_CONF_STR:
    case RF_CONF_LIST: {
        const char *s = *(char *const *)f;
        snprintf(buf, n, "%s", s ? s : "");
        break;
    }
    case RF_CONF_INT:
        snprintf(buf, n, "%lld", (long long)*(const int64_t *)f);
        break;
    case RF_CONF_DBL:
        snprintf(buf, n, "%g", *(const double *)f);
        break;
    case RF_CONF_BOOL:
        snprintf(buf, n, "%s", *(const int *)f ? "true" : "false");
        break;
    case RF_CONF_ENUM:
        snprintf(buf, n, "%s", opt->choices[*(const int *)f]);
        break;
    }
}

/* Writes a value so that the properties parser reads it back unchanged. */
static void put_escaped(FILE *fp, const char *s)
{
    for (; *s; s++) {
        if (*s == '\n')
            fputs("\\n", fp);
        else if (*s == '\t')
            fputs("\\t", fp);
        else if (*s == '\\')
            fputs("\\\\", fp);
        else
            fputc(*s, fp);
    }
}

void rf_conf_dump(const rf_conf_t *cfg, FILE *fp, int effective)
{
    char buf[8192];
    for (size_t i = 0; i < rf_conf_opts_cnt; i++) {
        const rf_conf_opt_t *opt = &rf_conf_opts[i];
        value_text(cfg, opt, buf, sizeof(buf));
        fprintf(fp, "%s = ", opt->name);
        if ((opt->flags & RF_CONF_SECRET) && buf[0])
            fputs("[redacted]", fp);
        else
            put_escaped(fp, buf);
        if (effective)
            fprintf(fp, "    # %s%s%s", origin_names[cfg->origin[i]], cfg->where[i] ? " " : "",
                    cfg->where[i] ? cfg->where[i] : "");
        fputc('\n', fp);
    }
    for (size_t i = 0; i < cfg->kafka_cnt; i++) {
        fprintf(fp, "kafka.%s = ", cfg->kafka[i].key);
        if (kafka_secret(cfg->kafka[i].key))
            fputs("[redacted]", fp);
        else
            put_escaped(fp, cfg->kafka[i].value);
        if (effective)
            fprintf(fp, "    # %s %s", origin_names[cfg->kafka[i].origin], cfg->kafka[i].where);
        fputc('\n', fp);
    }
}

static const char *type_name(const rf_conf_opt_t *opt)
{
    switch (opt->type) {
    case RF_CONF_STR:
        return "string";
    case RF_CONF_INT:
        return "integer";
    case RF_CONF_DBL:
        return "number";
    case RF_CONF_BOOL:
        return "boolean";
    case RF_CONF_ENUM:
        return "enum";
    case RF_CONF_LIST:
        return "list";
    }
    return "?";
}

void rf_conf_doc(FILE *fp)
{
    fputs("# Configuration\n\n"
          "<!-- Generated by `ragfeed config doc` from core/core_conf_table.c; do not edit. -->\n\n"
          "ragfeed reads a properties file (`key = value`, `#` comments; `-c FILE`, default\n"
          "`configs/ragfeed.properties`). Environment variables `RAGFEED_<KEY>` (dots and dashes\n"
          "as underscores, e.g. `RAGFEED_STATE_DIR`) override the file, and `--set KEY=VALUE`\n"
          "overrides both. Unknown keys, bad types and out-of-range values are refused at start\n"
          "with exit code 3. `ragfeed config dump --effective` shows each value's origin.\n\n"
          "`kafka.<property>` passes `<property>` to librdkafka unchanged (for example\n"
          "`kafka.bootstrap.servers`, `kafka.group.id`, `kafka.security.protocol`); librdkafka\n"
          "validates those at start. `RAGFEED_KAFKA_BOOTSTRAP_SERVERS` sets\n"
          "`kafka.bootstrap.servers`.\n\n"
          "| key | type | default | allowed | description |\n"
          "| --- | --- | --- | --- | --- |\n",
          fp);
    for (size_t i = 0; i < rf_conf_opts_cnt; i++) {
        const rf_conf_opt_t *opt = &rf_conf_opts[i];
        char allowed[512] = "";
        if (opt->type == RF_CONF_INT)
            snprintf(allowed, sizeof(allowed), "%lld..%lld", (long long)opt->imin,
                     (long long)opt->imax);
        else if (opt->type == RF_CONF_DBL)
            snprintf(allowed, sizeof(allowed), "%g..%g", opt->dmin, opt->dmax);
        else if (opt->type == RF_CONF_BOOL)
            snprintf(allowed, sizeof(allowed), "true, false");
        else if (opt->type == RF_CONF_ENUM) {
            size_t o = 0;
            for (int c = 0; opt->choices[c]; c++)
                o += (size_t)snprintf(allowed + o, sizeof(allowed) - o, "%s`%s`", c ? ", " : "",
                                      opt->choices[c]);
        }
        fprintf(fp, "| `%s` | %s | %s%s%s | %s | %s%s%s |\n", opt->name, type_name(opt),
                opt->def && *opt->def ? "`" : "",
                opt->def ? (*opt->def ? opt->def : "(empty)") : "(unset)",
                opt->def && *opt->def ? "`" : "", allowed, opt->desc,
                (opt->flags & RF_CONF_REQUIRED) ? " Required by `ragfeed run`." : "",
                (opt->flags & RF_CONF_SECRET) ? " Secret: redacted in dumps." : "");
    }
}
