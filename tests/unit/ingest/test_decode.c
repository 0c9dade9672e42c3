/* test_decode.c - the change-event decoder and row mapper (ingest_decode.c,
 * ingest_map.c): every tests/data/ingest/NNN-name.in case against its .expected, a
 * check that every CDC fixture is used by a case, size limits, template errors,
 * thread safety, and a seeded mutation run over the fixtures.
 * Upholds INVARIANT(bad-input-dead-letters): every input gives an event or a reason.
 *
 * The .in format (one directive per line; `#` lines and blank lines are ignored;
 * `---` ends one message block and starts the next):
 *   set: KEY=VALUE        mapper configuration for the whole file (before any block)
 *   set-esc: KEY=VALUE    the same with \\ \n \r \t \xHH escapes in the value
 *   topic: T              topic of this and the following blocks (default "test")
 *   timestamp: MS         Kafka timestamp of this block's messages (default -1)
 *   key: TEXT | null      the key bytes as written, or a NULL key (the default)
 *   key-esc: TEXT         the key with \\ \n \r \t \0 \xHH escapes
 *   key-file: PATH        the key is a whole file under $RF_SHARED_DIR/fixtures/cdc
 *   key-from: FIELD       per value line: key {"FIELD":v} from the line's after/before
 *                         row, NULL for a truncate (as shared/tools/replay_debezium.py)
 *   header: NAME=VALUE    a message header (repeatable)
 *   value: TEXT | null    the value as written, or a NULL value (tombstone)
 *   value-esc: TEXT       the value with escapes, as key-esc
 *   value-file: PATH      the value is a whole fixture file
 *   value-line: PATH N    the value is line N (from 1) of a fixture file
 *   value-lines: PATH     one message per non-empty line of a fixture file
 *   tombstones: yes       with value-lines: a NULL-value message after each delete
 * The .expected file has one line per message:
 *   UPSERT id=.. source=.. pos=..|- time=.. tenant=..|- meta=JSON|- text="..."
 *   DELETE id=.. source=.. pos=..|- time=..
 *   TRUNCATE source=.. pos=..|- time=..
 *   SKIP source=..|- reason="..."
 *   ERROR CODE reason="..."
 * RF_TEST_CASE=NNN runs only the cases whose name starts with NNN; RF_TEST_UPDATE=1
 * rewrites the .expected files from the output (review the diff before keeping it).
 */
#include "ingest/ingest.h"

#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rf_test.h"

/* ==== Output lines ==== */

static void put_quoted(rf_buf_t *b, const char *s)
{
    rf_buf_append(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rf_buf_printf(b, "\\%c", c);
        else if (c == '\n')
            rf_buf_puts(b, "\\n");
        else if (c == '\t')
            rf_buf_puts(b, "\\t");
        else if (c == '\r')
            rf_buf_puts(b, "\\r");
        else if (c < 0x20 || c == 0x7f)
            rf_buf_printf(b, "\\x%02x", c);
        else
            rf_buf_append(b, s, 1);
    }
    rf_buf_append(b, "\"", 1);
}

/* "-" for NULL, the text as is when it has no space, quote, backslash or control
 * byte, else quoted. */
static void put_word(rf_buf_t *b, const char *s)
{
    if (!s) {
        rf_buf_puts(b, "-");
        return;
    }
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == '"' || *p == '\\' || *p == 0x7f) {
            put_quoted(b, s);
            return;
        }
    }
    if (!*s || !strcmp(s, "-"))
        put_quoted(b, s);
    else
        rf_buf_puts(b, s);
}

static void put_event(rf_buf_t *b, rf_rc rc, const rf_event_t *ev, const rf_err_t *err)
{
    if (rc) {
        rf_buf_printf(b, "ERROR %s reason=", rf_rc_name(rc));
        put_quoted(b, err->msg);
    } else if (ev->op == RF_EVENT_UPSERT || ev->op == RF_EVENT_DELETE) {
        rf_buf_puts(b, ev->op == RF_EVENT_UPSERT ? "UPSERT id=" : "DELETE id=");
        put_word(b, ev->id);
        rf_buf_puts(b, " source=");
        put_word(b, ev->source);
        rf_buf_puts(b, " pos=");
        put_word(b, ev->source_pos);
        rf_buf_printf(b, " time=%lld", (long long)ev->event_time_ms);
        if (ev->op == RF_EVENT_UPSERT) {
            rf_buf_puts(b, " tenant=");
            put_word(b, ev->tenant);
            rf_buf_puts(b, " meta=");
            rf_buf_puts(b, ev->metadata_json ? ev->metadata_json : "-");
            rf_buf_puts(b, " text=");
            put_quoted(b, ev->text);
        }
    } else if (ev->op == RF_EVENT_TRUNCATE) {
        rf_buf_puts(b, "TRUNCATE source=");
        put_word(b, ev->source);
        rf_buf_puts(b, " pos=");
        put_word(b, ev->source_pos);
        rf_buf_printf(b, " time=%lld", (long long)ev->event_time_ms);
    } else if (ev->op == RF_EVENT_SKIP) {
        rf_buf_puts(b, "SKIP source=");
        put_word(b, ev->source);
        rf_buf_puts(b, " reason=");
        put_quoted(b, ev->skip_reason ? ev->skip_reason : "(null)");
    } else {
        rf_buf_printf(b, "BADOP %d", (int)ev->op);
    }
    rf_buf_append(b, "\n", 1);
}

/* Checks what every result must satisfy, whatever the input. */
static void check_result(rf_rc rc, const rf_event_t *ev, const rf_err_t *err, const char *what)
{
    if (rc) {
        if (!err->msg[0] || err->code != rc || ev->id || ev->source || ev->text ||
            ev->metadata_json || ev->tenant || ev->source_pos)
            rf__test_fail(__FILE__, __LINE__,
                          "%s: error %s without a reason or with a "
                          "half-filled event",
                          what, rf_rc_name(rc));
        if (rc != RF_EPARSE && rc != RF_EINVAL && rc != RF_ETOOBIG)
            rf__test_fail(__FILE__, __LINE__, "%s: unexpected code %s", what, rf_rc_name(rc));
        return;
    }
    switch (ev->op) {
    case RF_EVENT_UPSERT:
        if (!ev->id || !*ev->id || !ev->source || !*ev->source || !ev->text || !*ev->text ||
            strspn(ev->text, " \t\r\n\f\v") == strlen(ev->text))
            rf__test_fail(__FILE__, __LINE__, "%s: upsert without id, source or text", what);
        else if (strncmp(ev->id, ev->source, strlen(ev->source)) ||
                 ev->id[strlen(ev->source)] != ':' || strlen(ev->id) > 1024)
            rf__test_fail(__FILE__, __LINE__, "%s: id %s is not <source>:<key>", what, ev->id);
        break;
    case RF_EVENT_DELETE:
        if (!ev->id || !*ev->id || !ev->source || ev->text)
            rf__test_fail(__FILE__, __LINE__, "%s: bad delete", what);
        break;
    case RF_EVENT_TRUNCATE:
        if (ev->id || !ev->source || !*ev->source)
            rf__test_fail(__FILE__, __LINE__, "%s: bad truncate", what);
        break;
    case RF_EVENT_SKIP:
        if (ev->id || !ev->skip_reason || !*ev->skip_reason)
            rf__test_fail(__FILE__, __LINE__, "%s: bad skip", what);
        break;
    default:
        rf__test_fail(__FILE__, __LINE__, "%s: op %d", what, (int)ev->op);
    }
}

/* ==== Reading .in files ==== */

#define MAX_HDRS 8

typedef struct bytes {
    char *ptr; /* NULL = a NULL key/value */
    size_t len;
} bytes_t;

typedef struct tcase {
    const char *name;
    rf_conf_t *cfg;
    rf_ingest_mapper_t *m;
    char *topic;
    /* the current block */
    int64_t ts;
    bytes_t key;
    char *key_from;
    char *hdr_names[MAX_HDRS];
    bytes_t hdr_vals[MAX_HDRS];
    size_t hdr_cnt;
    int value_kind; /* 0 none, 1 bytes, 2 lines of a file */
    bytes_t value;
    int tombstones;
    rf_buf_t out;
    int bad; /* a fault in the .in file itself */
    int line;
} tcase_t;

static void case_fail(tcase_t *tc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void case_fail(tcase_t *tc, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rf__test_fail(__FILE__, __LINE__, "%s.in:%d: %s", tc->name, tc->line, msg);
    tc->bad = 1;
}

static void bytes_set(bytes_t *b, const char *p, size_t n)
{
    free(b->ptr);
    b->ptr = malloc(n + 1);
    memcpy(b->ptr, p, n);
    b->ptr[n] = 0;
    b->len = n;
}

static void bytes_clear(bytes_t *b)
{
    free(b->ptr);
    b->ptr = NULL;
    b->len = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void bytes_unescape(bytes_t *b, const char *s)
{
    size_t n = strlen(s), o = 0;
    char *p = malloc(n + 1);

    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) {
            p[o++] = s[i];
            continue;
        }
        i++;
        switch (s[i]) {
        case 'n':
            p[o++] = '\n';
            break;
        case 'r':
            p[o++] = '\r';
            break;
        case 't':
            p[o++] = '\t';
            break;
        case '0':
            p[o++] = '\0';
            break;
        case 'x':
            if (i + 2 < n + 1 && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                p[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
                i += 2;
            } else {
                p[o++] = 'x';
            }
            break;
        default:
            p[o++] = s[i];
            break;
        }
    }
    free(b->ptr);
    b->ptr = p;
    b->len = o;
}

static char *fixture_read(tcase_t *tc, const char *rel, size_t *len)
{
    char *path, *full, *data;

    full = rf_xasprintf("fixtures/cdc/%s", rel);
    path = rf_test_shared_path(full);
    data = rf_test_read_file(path, len);
    if (!data)
        case_fail(tc, "cannot read fixture %s", path);
    free(path);
    free(full);
    return data;
}

/* The key replay_debezium.py would give a value line: {"FIELD":v} of after/before. */
static void derive_key(const char *field, const char *line, size_t len, bytes_t *key)
{
    json_t *j = json_loadb(line, len, 0, NULL), *p, *row, *v, *k;
    const char *op;
    char *txt;

    bytes_clear(key);
    if (!j)
        return;
    p = json_object_get(j, "schema") && json_object_get(j, "payload")
            ? json_object_get(j, "payload")
            : j;
    op = json_string_value(json_object_get(p, "op"));
    row = json_object_get(p, "after");
    if (!json_is_object(row))
        row = json_object_get(p, "before");
    v = json_object_get(row, field);
    if (v && !(op && !strcmp(op, "t"))) {
        k = json_object();
        json_object_set(k, field, v);
        txt = json_dumps(k, JSON_COMPACT);
        bytes_set(key, txt, strlen(txt));
        free(txt);
        json_decref(k);
    }
    json_decref(j);
}

static void run_one(tcase_t *tc, const bytes_t *key, const char *val, size_t val_len)
{
    rf_ingest_header_t hdrs[MAX_HDRS];
    rf_ingest_msg_t msg;
    rf_event_t ev;
    rf_err_t err;
    rf_rc rc;

    if (!tc->m) {
        rc = rf_ingest_mapper_new(tc->cfg, &tc->m, &err);
        if (rc) {
            case_fail(tc, "mapper: %s", err.msg);
            return;
        }
    }
    memset(&msg, 0, sizeof(msg));
    msg.topic = tc->topic;
    msg.partition = 0;
    msg.offset = 0;
    msg.timestamp_ms = tc->ts;
    msg.key = rf_slice(key->ptr, key->len);
    msg.value = rf_slice(val, val_len);
    for (size_t i = 0; i < tc->hdr_cnt; i++) {
        hdrs[i].name = tc->hdr_names[i];
        hdrs[i].value = rf_slice(tc->hdr_vals[i].ptr, tc->hdr_vals[i].len);
    }
    msg.headers = hdrs;
    msg.header_cnt = tc->hdr_cnt;
    memset(&err, 0, sizeof(err));
    rc = rf_ingest_decode(tc->m, &msg, &ev, &err);
    check_result(rc, &ev, &err, tc->name);
    put_event(&tc->out, rc, &ev, &err);
    rf_event_fini(&ev);
}

static void block_end(tcase_t *tc)
{
    if (tc->value_kind == 1) {
        run_one(tc, &tc->key, tc->value.ptr, tc->value.len);
    } else if (tc->value_kind == 2) {
        char *p = tc->value.ptr, *end = p + tc->value.len;
        while (p < end) {
            char *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
            bytes_t key = {NULL, 0};
            const char *op_d = "\"op\":\"d\"";
            if (n) {
                if (tc->key_from)
                    derive_key(tc->key_from, p, n, &key);
                else if (tc->key.ptr)
                    bytes_set(&key, tc->key.ptr, tc->key.len);
                run_one(tc, &key, p, n);
                /* A delete line is followed by its tombstone. */
                if (tc->tombstones && key.ptr) {
                    char *line = rf_xstrndup(p, n);
                    if (strstr(line, op_d))
                        run_one(tc, &key, NULL, 0);
                    free(line);
                }
            }
            bytes_clear(&key);
            p += n + 1;
        }
    } else if (tc->key.ptr || tc->hdr_cnt) {
        case_fail(tc, "%s", "block without a value directive");
    }
    tc->value_kind = 0;
    bytes_clear(&tc->value);
    bytes_clear(&tc->key);
    free(tc->key_from);
    tc->key_from = NULL;
    for (size_t i = 0; i < tc->hdr_cnt; i++) {
        free(tc->hdr_names[i]);
        bytes_clear(&tc->hdr_vals[i]);
    }
    tc->hdr_cnt = 0;
    tc->ts = -1;
    tc->tombstones = 0;
}

static void directive(tcase_t *tc, const char *name, const char *arg)
{
    size_t len;
    char *data;

    if (!strcmp(name, "set") || !strcmp(name, "set-esc")) {
        const char *eq = strchr(arg, '=');
        bytes_t v = {NULL, 0};
        char *k;
        rf_err_t err;
        if (tc->m || !eq) {
            case_fail(tc, "%s", "set: must come before the first message, as KEY=VALUE");
            return;
        }
        k = rf_xstrndup(arg, (size_t)(eq - arg));
        if (!strcmp(name, "set-esc"))
            bytes_unescape(&v, eq + 1);
        else
            bytes_set(&v, eq + 1, strlen(eq + 1));
        v.ptr[v.len] = 0;
        if (rf_conf_set(tc->cfg, k, v.ptr, RF_CONF_ORIGIN_CLI, "--set", &err))
            case_fail(tc, "set: %s", err.msg);
        bytes_clear(&v);
        free(k);
    } else if (!strcmp(name, "topic")) {
        free(tc->topic);
        tc->topic = rf_xstrdup(arg);
    } else if (!strcmp(name, "timestamp")) {
        tc->ts = strtoll(arg, NULL, 10);
    } else if (!strcmp(name, "key")) {
        if (strcmp(arg, "null"))
            bytes_set(&tc->key, arg, strlen(arg));
        else
            bytes_clear(&tc->key);
    } else if (!strcmp(name, "key-esc")) {
        bytes_unescape(&tc->key, arg);
    } else if (!strcmp(name, "key-file")) {
        if ((data = fixture_read(tc, arg, &len))) {
            bytes_set(&tc->key, data, len);
            free(data);
        }
    } else if (!strcmp(name, "key-from")) {
        free(tc->key_from);
        tc->key_from = rf_xstrdup(arg);
    } else if (!strcmp(name, "header")) {
        const char *eq = strchr(arg, '=');
        if (!eq || tc->hdr_cnt == MAX_HDRS) {
            case_fail(tc, "%s", "header: NAME=VALUE, at most 8");
            return;
        }
        tc->hdr_names[tc->hdr_cnt] = rf_xstrndup(arg, (size_t)(eq - arg));
        tc->hdr_vals[tc->hdr_cnt].ptr = NULL;
        bytes_set(&tc->hdr_vals[tc->hdr_cnt++], eq + 1, strlen(eq + 1));
    } else if (!strcmp(name, "value")) {
        tc->value_kind = 1;
        if (strcmp(arg, "null"))
            bytes_set(&tc->value, arg, strlen(arg));
        else
            bytes_clear(&tc->value);
    } else if (!strcmp(name, "value-esc")) {
        tc->value_kind = 1;
        bytes_unescape(&tc->value, arg);
    } else if (!strcmp(name, "value-file") || !strcmp(name, "value-lines")) {
        if ((data = fixture_read(tc, arg, &len))) {
            tc->value_kind = !strcmp(name, "value-file") ? 1 : 2;
            bytes_set(&tc->value, data, len);
            free(data);
        }
    } else if (!strcmp(name, "value-line")) {
        char *rel = rf_xstrdup(arg), *sp = strrchr(rel, ' ');
        long want = sp ? strtol(sp + 1, NULL, 10) : 0;
        if (sp)
            *sp = 0;
        if (want < 1) {
            case_fail(tc, "%s", "value-line: PATH N");
        } else if ((data = fixture_read(tc, rel, &len))) {
            char *p = data, *nl;
            for (long i = 1; i < want && p; i++)
                p = (nl = strchr(p, '\n')) ? nl + 1 : NULL;
            if (!p || !*p) {
                case_fail(tc, "value-line: no such line in %s", rel);
            } else {
                nl = strchr(p, '\n');
                tc->value_kind = 1;
                bytes_set(&tc->value, p, nl ? (size_t)(nl - p) : strlen(p));
            }
            free(data);
        }
        free(rel);
    } else if (!strcmp(name, "tombstones")) {
        tc->tombstones = !strcmp(arg, "yes");
    } else {
        case_fail(tc, "unknown directive \"%s\"", name);
    }
}

/* Runs one .in file; returns its output (caller frees) or NULL on a fault in it. */
static char *run_case(const char *dir, const char *name)
{
    tcase_t tc;
    char *path = rf_xasprintf("%s/%s.in", dir, name), *text, *p, *out = NULL;

    memset(&tc, 0, sizeof(tc));
    tc.name = name;
    tc.cfg = rf_conf_new();
    tc.topic = rf_xstrdup("test");
    tc.ts = -1;
    rf_buf_init(&tc.out, 0);
    text = rf_test_read_file(path, NULL);
    if (!text) {
        case_fail(&tc, "%s", "cannot read the .in file");
        goto out;
    }
    for (p = text; p && *p && !tc.bad;) {
        char *nl = strchr(p, '\n'), *colon;
        tc.line++;
        if (nl)
            *nl = 0;
        if (nl > p && nl[-1] == '\r')
            nl[-1] = 0;
        if (!strcmp(p, "---")) {
            block_end(&tc);
        } else if (*p && *p != '#') {
            colon = strchr(p, ':');
            if (!colon) {
                case_fail(&tc, "expected `name: value`, got \"%s\"", p);
            } else {
                *colon = 0;
                directive(&tc, p, colon[1] == ' ' ? colon + 2 : colon + 1);
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    if (!tc.bad)
        block_end(&tc);
    if (!tc.bad)
        out = rf_buf_take(&tc.out, NULL);
out:
    tc.value_kind = 0;
    block_end(&tc);
    rf_buf_fini(&tc.out);
    rf_ingest_mapper_free(tc.m);
    rf_conf_free(tc.cfg);
    free(tc.topic);
    free(text);
    free(path);
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted names of the files in dir ending in suffix, without it; caller frees. */
static size_t list_names(const char *dir, const char *suffix, char ***out)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, sl = strlen(suffix);

    while (d && (de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || !strcmp(de->d_name, "README.md"))
            continue;
        if (l > sl && !strcmp(de->d_name + l - sl, suffix)) {
            names = rf_xrealloc(names, (n + 1) * sizeof(*names));
            names[n++] = rf_xstrndup(de->d_name, l - sl);
        }
    }
    if (d)
        closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);
    *out = names;
    return n;
}

static void names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Compares output with the .expected text line by line. */
static void compare(const char *name, const char *got, const char *want)
{
    int line = 1;

    while (*got || *want) {
        size_t gl = strcspn(got, "\n"), wl = strcspn(want, "\n");
        if (gl != wl || memcmp(got, want, gl)) {
            rf__test_fail(__FILE__, __LINE__,
                          "%s.expected:%d differs\n  - expected: %.*s\n  + got:      %.*s", name,
                          line, (int)wl, want, (int)gl, got);
            return;
        }
        got += gl + (got[gl] == '\n');
        want += wl + (want[wl] == '\n');
        line++;
    }
}

/* ==== Tests ==== */

static void test_data_files(void)
{
    char *dir = rf_test_src_path("tests/data/ingest");
    const char *only = getenv("RF_TEST_CASE");
    int update = getenv("RF_TEST_UPDATE") && !strcmp(getenv("RF_TEST_UPDATE"), "1");
    char **names, **exp_names;
    size_t n = list_names(dir, ".in", &names), ne = list_names(dir, ".expected", &exp_names);
    size_t ran = 0;

    RF_CHECK(n >= 40);
    for (size_t i = 0; i < n; i++) {
        char *got, *want, *epath;
        if (only && strncmp(names[i], only, strlen(only)))
            continue;
        ran++;
        got = run_case(dir, names[i]);
        if (!got)
            continue;
        epath = rf_xasprintf("%s/%s.expected", dir, names[i]);
        if (update) {
            FILE *fp = fopen(epath, "w");
            RF_REQUIRE(fp);
            fputs(got, fp);
            fclose(fp);
        } else if (!(want = rf_test_read_file(epath, NULL))) {
            rf__test_fail(__FILE__, __LINE__, "%s.in has no %s.expected", names[i], names[i]);
        } else {
            compare(names[i], got, want);
            free(want);
        }
        free(epath);
        free(got);
    }
    RF_CHECK(ran > 0);
    /* An .expected without its .in is a case that silently stopped running. */
    for (size_t i = 0; i < ne; i++) {
        if (!bsearch(&exp_names[i], names, n, sizeof(*names), cmp_str))
            rf__test_fail(__FILE__, __LINE__, "%s.expected has no .in", exp_names[i]);
    }
    names_free(names, n);
    names_free(exp_names, ne);
    free(dir);
}

/* Every fixture under fixtures/cdc/{debezium,upsert-json} (and at least one Maxwell
 * and one Canal file) is named by some case. */
static void test_fixture_coverage(void)
{
    static const char *const dirs[] = {"debezium/mysql", "debezium/postgres", "upsert-json",
                                       "maxwell", "canal"};
    char *dir = rf_test_src_path("tests/data/ingest");
    char **ins;
    size_t n = list_names(dir, ".in", &ins);
    rf_buf_t all;

    rf_buf_init(&all, 0);
    for (size_t i = 0; i < n; i++) {
        char *path = rf_xasprintf("%s/%s.in", dir, ins[i]);
        char *t = rf_test_read_file(path, NULL);
        if (t)
            rf_buf_puts(&all, t);
        rf_buf_puts(&all, "\n");
        free(t);
        free(path);
    }
    for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
        char *rel = rf_xasprintf("fixtures/cdc/%s", dirs[d]);
        char *fdir = rf_test_shared_path(rel);
        char **files;
        size_t nf = list_names(fdir, "", &files), used = 0;
        RF_CHECK(nf > 0);
        for (size_t f = 0; f < nf; f++) {
            char *want = rf_xasprintf(" %s/%s", dirs[d], files[f]);
            char *hit = all.ptr ? strstr(all.ptr, want) : NULL;
            size_t wl = strlen(want);
            /* The name must end there (docs-x.json is not docs-x.json.txt). */
            while (hit && hit[wl] != '\n' && hit[wl] != ' ' && hit[wl] != '\r')
                hit = strstr(hit + 1, want);
            if (hit)
                used++;
            else if (d < 3)
                rf__test_fail(__FILE__, __LINE__, "no case uses fixture %s/%s", dirs[d], files[f]);
            free(want);
        }
        RF_CHECK(used > 0);
        names_free(files, nf);
        free(fdir);
        free(rel);
    }
    rf_buf_fini(&all);
    names_free(ins, n);
    free(dir);
}

static rf_ingest_mapper_t *mapper(const char *const *kv)
{
    rf_conf_t *cfg = rf_conf_new();
    rf_ingest_mapper_t *m = NULL;
    rf_err_t err;

    for (; kv && kv[0]; kv += 2)
        RF_CHECK(rf_conf_set(cfg, kv[0], kv[1], RF_CONF_ORIGIN_CLI, "--set", &err) == 0);
    if (rf_ingest_mapper_new(cfg, &m, &err))
        rf__test_fail(__FILE__, __LINE__, "mapper: %s", err.msg);
    rf_conf_free(cfg);
    return m;
}

static rf_rc decode(const rf_ingest_mapper_t *m, const char *key, size_t key_len, const char *val,
                    size_t val_len, rf_event_t *ev, rf_err_t *err)
{
    rf_ingest_msg_t msg;
    rf_rc rc;

    memset(&msg, 0, sizeof(msg));
    msg.topic = "dbserver1.inventory.customers";
    msg.timestamp_ms = -1;
    msg.key = rf_slice(key, key_len);
    msg.value = rf_slice(val, val_len);
    memset(err, 0, sizeof(*err));
    rc = rf_ingest_decode(m, &msg, ev, err);
    check_result(rc, ev, err, "decode");
    return rc;
}

static void test_limits(void)
{
    static const char *const json_kv[] = {
        "source.format", "json", "source.max.value.bytes", "4194304", "source.text",
        "{body}",        NULL};
    rf_ingest_mapper_t *m = mapper(json_kv);
    rf_event_t ev;
    rf_err_t err;
    rf_buf_t b;
    size_t big = ((size_t)1 << 20) + 10;

    RF_REQUIRE(m);
    rf_buf_init(&b, 0);
    /* Text over 1 MiB. */
    rf_buf_puts(&b, "{\"id\":1,\"body\":\"");
    for (size_t i = 0; i < big; i++)
        rf_buf_append(&b, "x", 1);
    rf_buf_puts(&b, "\"}");
    RF_CHECK_INT(decode(m, "1", 1, b.ptr, b.len, &ev, &err), RF_ETOOBIG);
    RF_CHECK(strstr(err.msg, "text is over 1048576 bytes") != NULL);
    /* The value limit is checked before parsing. */
    rf_buf_puts(&b, "                                                                      ");
    for (size_t i = 0; i < 4 * big; i++)
        rf_buf_append(&b, " ", 1);
    RF_CHECK_INT(decode(m, "1", 1, b.ptr, b.len, &ev, &err), RF_ETOOBIG);
    RF_CHECK(strstr(err.msg, "over source.max.value.bytes=4194304") != NULL);
    /* A key over the value limit. */
    RF_CHECK_INT(decode(m, b.ptr, b.len, "{\"body\":\"x\"}", 12, &ev, &err), RF_ETOOBIG);
    RF_CHECK(strstr(err.msg, "key is") != NULL);

    /* Ids: "<topic>:" + key may be 1024 bytes, not 1025. */
    rf_buf_reset(&b);
    for (size_t i = 0; i < 1024 - strlen("dbserver1.inventory.customers:"); i++)
        rf_buf_append(&b, "k", 1);
    RF_CHECK_INT(decode(m, b.ptr, b.len, "{\"body\":\"x\"}", 12, &ev, &err), RF_OK);
    RF_CHECK_INT(ev.id ? strlen(ev.id) : 0, 1024);
    rf_event_fini(&ev);
    rf_buf_append(&b, "k", 1);
    RF_CHECK_INT(decode(m, b.ptr, b.len, "{\"body\":\"x\"}", 12, &ev, &err), RF_ETOOBIG);
    RF_CHECK(strstr(err.msg, "record id is over 1024 bytes") != NULL);
    /* A long JSON key. */
    rf_buf_reset(&b);
    rf_buf_puts(&b, "{\"id\":\"");
    for (size_t i = 0; i < 2000; i++)
        rf_buf_append(&b, "k", 1);
    rf_buf_puts(&b, "\"}");
    RF_CHECK_INT(decode(m, b.ptr, b.len, "{\"body\":\"x\"}", 12, &ev, &err), RF_ETOOBIG);
    RF_CHECK(strstr(err.msg, "record id is over 1024 bytes") != NULL);

    /* Nesting past jansson's depth limit is a parse error, not a stack overflow. */
    rf_buf_reset(&b);
    for (size_t i = 0; i < 100000; i++)
        rf_buf_append(&b, "[", 1);
    RF_CHECK_INT(decode(m, "1", 1, b.ptr, b.len, &ev, &err), RF_EPARSE);
    RF_CHECK(strstr(err.msg, "depth") != NULL);
    /* Nesting within the limit renders as compact JSON. */
    rf_buf_reset(&b);
    rf_buf_puts(&b, "{\"body\":");
    for (size_t i = 0; i < 1000; i++)
        rf_buf_puts(&b, "{\"a\":");
    rf_buf_puts(&b, "[1.5,true,null,\"q\\\"\"]");
    for (size_t i = 0; i < 1000; i++)
        rf_buf_puts(&b, "}");
    rf_buf_puts(&b, "}");
    RF_CHECK_INT(decode(m, "1", 1, b.ptr, b.len, &ev, &err), RF_OK);
    RF_CHECK(ev.text && strstr(ev.text, "{\"a\":{\"a\":") == ev.text &&
             strstr(ev.text, "[1.5,true,null,\"q\\\"\"]}}"));
    rf_event_fini(&ev);

    rf_buf_fini(&b);
    rf_ingest_mapper_free(m);
}

static void test_template_config(void)
{
    static const struct {
        const char *tpl, *want;
    } bad[] = {
        {"{title", "unclosed '{' at offset 0"},   {"a {b {c}", "unclosed '{' at offset 2"},
        {"x {}", "empty field name at offset 2"}, {"{  }", "empty field name at offset 0"},
        {"a } b", "lone '}' at offset 2"},        {"{{x}", "lone '}' at offset 3"},
    };
    static const struct {
        const char *tpl, *want;
    } good[] = {
        {"{{literal}} {name}", "{literal} scooter"},
        {"{ name }|{missing}|{n.x}", "scooter||1"},
        {"{a.b}/{a.b.c}/{a.x.c}", "dotted/2/"},
        {"{n}", "{\"x\":1,\"y\":[2.0,-0.5,1e+300]}"},
        {"{w} {t} {f} {z}", "3.140000104904175 true false "},
        {"{{}}", "{}"},
    };
    const char *row = "{\"name\":\"scooter\",\"a.b\":\"dotted\",\"a\":{\"b\":{\"c\":2}},"
                      "\"n\":{\"x\":1,\"y\":[2.0,-0.5,1e300]},\"w\":3.140000104904175,"
                      "\"t\":true,\"f\":false,\"z\":null}";
    rf_conf_t *cfg = rf_conf_new();
    rf_ingest_mapper_t *m;
    rf_event_t ev;
    rf_err_t err;

    RF_CHECK(rf_conf_set(cfg, "source.format", "json", RF_CONF_ORIGIN_CLI, "--set", &err) == 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        RF_CHECK(rf_conf_set(cfg, "source.text", bad[i].tpl, RF_CONF_ORIGIN_CLI, "--set", &err) ==
                 0);
        m = (rf_ingest_mapper_t *)&err; /* must be reset to NULL */
        memset(&err, 0, sizeof(err));
        RF_CHECK_INT(rf_ingest_mapper_new(cfg, &m, &err), RF_ECONFIG);
        RF_CHECK(m == NULL);
        RF_CHECK(strstr(err.msg, "source.text=") == err.msg);
        if (!strstr(err.msg, bad[i].want))
            rf__test_fail(__FILE__, __LINE__, "%s: message \"%s\" lacks \"%s\"", bad[i].tpl,
                          err.msg, bad[i].want);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        RF_CHECK(rf_conf_set(cfg, "source.text", good[i].tpl, RF_CONF_ORIGIN_CLI, "--set", &err) ==
                 0);
        m = NULL;
        RF_REQUIRE(rf_ingest_mapper_new(cfg, &m, &err) == RF_OK);
        RF_CHECK_INT(decode(m, "7", 1, row, strlen(row), &ev, &err), RF_OK);
        RF_CHECK_STR(ev.text, good[i].want);
        rf_event_fini(&ev);
        rf_ingest_mapper_free(m);
    }
    rf_conf_free(cfg);
}

static void test_api_edges(void)
{
    rf_ingest_mapper_t *m = mapper(NULL);
    rf_event_t ev;
    rf_err_t err;

    RF_REQUIRE(m);
    rf_ingest_mapper_free(NULL);
    rf_event_fini(NULL);
    memset(&ev, 0, sizeof(ev));
    rf_event_fini(&ev);
    RF_CHECK_INT(rf_ingest_decode(m, NULL, &ev, &err), RF_EINVAL);
    RF_CHECK_INT(rf_ingest_decode(NULL, NULL, &ev, &err), RF_EINVAL);
    RF_CHECK_INT(rf_ingest_decode(m, NULL, NULL, NULL), RF_EINVAL);
    RF_CHECK_INT(rf_ingest_mapper_new(NULL, &m, &err), RF_EINVAL);
    /* err may be NULL. */
    {
        rf_ingest_msg_t msg;
        memset(&msg, 0, sizeof(msg));
        msg.value = rf_slice("{", 1);
        RF_CHECK_INT(rf_ingest_decode(m, &msg, &ev, NULL), RF_EPARSE);
        RF_CHECK(ev.id == NULL && ev.text == NULL);
    }
    rf_ingest_mapper_free(m);
}

/* ==== Threads ==== */

typedef struct thr {
    const rf_ingest_mapper_t *m;
    const char *val;
    int bad;
} thr_t;

static void *thr_main(void *arg)
{
    thr_t *t = arg;
    rf_ingest_msg_t msg;

    memset(&msg, 0, sizeof(msg));
    msg.topic = "fullfillment.inventory.products";
    msg.timestamp_ms = -1;
    msg.value = rf_slice(t->val, strlen(t->val));
    for (int i = 0; i < 2000; i++) {
        rf_event_t ev;
        rf_err_t err;
        if (rf_ingest_decode(t->m, &msg, &ev, &err) != RF_OK ||
            strcmp(ev.id, "inventory.products:101") || !strstr(ev.text, "scooter"))
            t->bad++;
        rf_event_fini(&ev);
    }
    return NULL;
}

static void test_threads(void)
{
    static const char *const kv[] = {"source.id.fields", "id", "source.metadata.fields", "weight",
                                     NULL};
    rf_ingest_mapper_t *m = mapper(kv);
    char *path = rf_test_shared_path(
        "fixtures/cdc/debezium/postgres/flink-debezium-postgres-data-schema-exclude.jsonl");
    char *data = rf_test_read_file(path, NULL), *nl;
    thr_t t[2];
    pthread_t th[2];

    RF_REQUIRE(m && data);
    if ((nl = strchr(data, '\n')))
        *nl = 0;
    for (int i = 0; i < 2; i++) {
        t[i].m = m;
        t[i].val = data;
        t[i].bad = 0;
        RF_REQUIRE(pthread_create(&th[i], NULL, thr_main, &t[i]) == 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        RF_CHECK_INT(t[i].bad, 0);
    }
    free(data);
    free(path);
    rf_ingest_mapper_free(m);
}

/* ==== Mutations ==== */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void mutate(rf_buf_t *b)
{
    static const char interesting[] = "\0\xff{}[]\":,\\nte0-.\x80\xc3\xed";
    size_t cnt = 1 + rng() % 4;

    for (size_t k = 0; k < cnt; k++) {
        size_t pos = b->len ? rng() % b->len : 0, n;
        switch (rng() % 7) {
        case 0: /* flip a bit */
            if (b->len)
                b->ptr[pos] ^= (char)(1u << (rng() % 8));
            break;
        case 1: /* an interesting byte */
            if (b->len)
                b->ptr[pos] = interesting[rng() % (sizeof(interesting) - 1)];
            break;
        case 2: /* delete a range */
            n = b->len - pos < 16 ? b->len - pos : rng() % 16;
            memmove(b->ptr + pos, b->ptr + pos + n, b->len - pos - n);
            b->len -= n;
            break;
        case 3: { /* insert random bytes */
            char ins[8];
            n = 1 + rng() % 8;
            for (size_t i = 0; i < n; i++)
                ins[i] = (char)rng();
            rf_buf_append(b, ins, n);
            memmove(b->ptr + pos + n, b->ptr + pos, b->len - n - pos);
            memcpy(b->ptr + pos, ins, n);
            break;
        }
        case 4: /* truncate */
            b->len = pos;
            break;
        case 5: { /* duplicate a range at the end */
            size_t from = pos, len = rng() % 64;
            char tmp[64];
            if (len > b->len - from)
                len = b->len - from;
            memcpy(tmp, b->ptr + from, len);
            rf_buf_append(b, tmp, len);
            break;
        }
        default: { /* swap a quote-delimited token with a type change */
            static const char *const toks[] = {"null", "\"x\"", "[]",    "{}",    "1e999",
                                               "-0",   "\"d\"", "\"t\"", "\"m\"", "true"};
            const char *t = toks[rng() % (sizeof(toks) / sizeof(toks[0]))];
            size_t tl = strlen(t);
            rf_buf_append(b, t, tl);
            memmove(b->ptr + pos + tl, b->ptr + pos, b->len - tl - pos);
            memcpy(b->ptr + pos, t, tl);
            break;
        }
        }
    }
}

/* Replaces, removes or adds one member somewhere in a JSON document, so the decoder
 * sees well-formed input of the wrong shape rather than only broken syntax. */
static void mutate_json(json_t *root)
{
    static const char *const vals[] = {"null",  "\"x\"", "\"\"",       "1",     "-1.5",  "true",
                                       "[]",    "{}",    "{\"id\":1}", "\"c\"", "\"d\"", "\"t\"",
                                       "\"m\"", "\"u\"", "[1,\"a\"]",  "\"  \""};
    static const char *const names[] = {"op",     "after", "before", "source", "payload",
                                        "schema", "id",    "ts_ms",  "table",  "db",
                                        "lsn",    "file",  "pos"};
    json_t *cur = root, *v;

    for (int depth = 0; depth < 4; depth++) {
        size_t n = json_is_object(cur) ? json_object_size(cur) : 0, k;
        void *it;
        if (!n || rng() % 3 == 0)
            break;
        k = rng() % n;
        for (it = json_object_iter(cur); k--; it = json_object_iter_next(cur, it))
            ;
        v = json_object_iter_value(it);
        if (!json_is_object(v))
            break;
        cur = v;
    }
    if (!json_is_object(cur))
        return;
    if (rng() % 4 == 0) {
        json_object_del(cur, names[rng() % (sizeof(names) / sizeof(names[0]))]);
        return;
    }
    v = json_loads(vals[rng() % (sizeof(vals) / sizeof(vals[0]))], JSON_DECODE_ANY, NULL);
    json_object_set_new(cur, names[rng() % (sizeof(names) / sizeof(names[0]))], v);
}

static void test_mutations(void)
{
    static const char *const files[] = {
        "debezium/mysql/debezium-examples-engine-wasm-3.0.1.jsonl",
        "debezium/mysql/debezium-serde-update.json",
        "debezium/mysql/debezium-serde-with-schema.json",
        "debezium/mysql/debezium-serde-without-schema.json",
        "debezium/mysql/docs-mysql-create-value.json",
        "debezium/mysql/docs-mysql-key.json",
        "debezium/mysql/tutorial-create-value.json",
        "debezium/mysql/tutorial-tombstone-value-legacy.json",
        "debezium/mysql/tutorial-delete-value.json.txt",
        "debezium/postgres/docs-postgresql-create-value.json",
        "debezium/postgres/docs-postgresql-truncate-value.json.txt",
        "debezium/postgres/flink-debezium-postgres-data-replica-identity.jsonl",
        "upsert-json/debezium-serde-unwrapped.json",
        "maxwell/maxwell-docs-insert.json",
        "canal/flink-canal-data.jsonl",
    };
    static const char *const keys[] = {
        "{\"id\":1001}", "{\"schema\":{\"type\":\"struct\"},\"payload\":{\"id\":7,\"k\":\"b\"}}",
        "plain-key",     "42",
        "[1,2]",         "{\"schema\":null,\"payload\":null}",
    };
    static const char *const kv0[] = {NULL};
    static const char *const kv1[] = {"source.id.fields",
                                      "id,first_name",
                                      "source.text",
                                      "{name} {description}{{x}} {after.id}",
                                      "source.metadata.fields",
                                      "id,weight,missing",
                                      "source.tenant.field",
                                      "id",
                                      NULL};
    static const char *const kv2[] = {"source.format", "json", NULL};
    static const char *const kv3[] = {
        "source.format",       "json",  "source.id.fields", "id", "source.text", "{first_name}",
        "source.tenant.field", "email", "source.name",      "ns", NULL};
    const char *const *kvs[] = {kv0, kv1, kv2, kv3};
    rf_ingest_mapper_t *ms[4];
    char *data[sizeof(files) / sizeof(files[0])];
    size_t lens[sizeof(files) / sizeof(files[0])];
    size_t nf = sizeof(files) / sizeof(files[0]), ok = 0, errs = 0;
    rf_buf_t val, key;

    for (size_t i = 0; i < 4; i++) {
        ms[i] = mapper(kvs[i]);
        RF_REQUIRE(ms[i]);
    }
    for (size_t i = 0; i < nf; i++) {
        char *rel = rf_xasprintf("fixtures/cdc/%s", files[i]);
        char *path = rf_test_shared_path(rel);
        data[i] = rf_test_read_file(path, &lens[i]);
        RF_REQUIRE(data[i]);
        free(path);
        free(rel);
    }
    rf_buf_init(&val, 0);
    rf_buf_init(&key, 0);
    for (int it = 0; it < 6000; it++) {
        size_t f = rng() % nf;
        const rf_ingest_mapper_t *m = ms[rng() % 4];
        rf_ingest_msg_t msg;
        rf_event_t ev;
        rf_err_t err;
        rf_rc rc;
        char what[64];

        const char *doc = data[f];
        size_t doc_len = lens[f];
        json_t *j;

        /* One line of a JSON-lines fixture is one message. */
        if (strstr(files[f], ".jsonl")) {
            size_t skip = rng() % 8;
            const char *nl;
            while (skip-- && (nl = memchr(doc, '\n', doc_len)) &&
                   (size_t)(nl - doc) + 1 < doc_len) {
                doc_len -= (size_t)(nl - doc) + 1;
                doc = nl + 1;
            }
            if ((nl = memchr(doc, '\n', doc_len)))
                doc_len = (size_t)(nl - doc);
        }
        rf_buf_reset(&val);
        if (rng() % 3 && (j = json_loadb(doc, doc_len, 0, NULL))) {
            char *txt;
            for (uint64_t e = 1 + rng() % 3; e; e--)
                mutate_json(j);
            txt = json_dumps(j, JSON_COMPACT);
            rf_buf_puts(&val, txt);
            free(txt);
            json_decref(j);
            if (rng() % 6 == 0)
                mutate(&val);
        } else {
            rf_buf_append(&val, doc, doc_len);
            mutate(&val);
        }
        rf_buf_reset(&key);
        rf_buf_puts(&key, keys[rng() % (sizeof(keys) / sizeof(keys[0]))]);
        if (rng() % 3 == 0)
            mutate(&key);
        memset(&msg, 0, sizeof(msg));
        msg.topic = (it % 5) ? "dbserver1.inventory.products" : "";
        msg.timestamp_ms = (int64_t)(rng() % 3) - 1;
        msg.key = (it % 7) ? rf_slice(key.ptr ? key.ptr : "", key.len) : RF_SLICE_NULL;
        msg.value = (it % 11) ? rf_slice(val.ptr ? val.ptr : "", val.len) : RF_SLICE_NULL;
        memset(&err, 0, sizeof(err));
        rc = rf_ingest_decode(m, &msg, &ev, &err);
        snprintf(what, sizeof(what), "mutation %d of %s", it, files[f]);
        check_result(rc, &ev, &err, what);
        if (getenv("RF_TEST_VERBOSE"))
            fprintf(stderr, "mut: %s\n", rc ? err.msg : "OK");
        if (rc)
            errs++;
        else
            ok++;
        rf_event_fini(&ev);
    }
    fprintf(stderr, "mutations: %zu events, %zu errors\n", ok, errs);
    /* Both outcomes occur: the mutations neither all break nor all spare the input. */
    RF_CHECK(ok > 100);
    RF_CHECK(errs > 100);
    rf_buf_fini(&val);
    rf_buf_fini(&key);
    for (size_t i = 0; i < nf; i++)
        free(data[i]);
    for (size_t i = 0; i < 4; i++)
        rf_ingest_mapper_free(ms[i]);
}

RF_TEST_MAIN(test_data_files, test_fixture_coverage, test_limits, test_template_config,
             test_api_edges, test_threads, test_mutations)
