/* core_log.c - log lines as "ts level mod key=value... msg", or as JSON lines.
 * The RF_LOG macro checks the level before evaluating its arguments; this file only
 * formats and writes a line that is already known to be wanted.  Lines are written
 * with one fputs under the stream lock so threads never interleave within a line. */
#include "core.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

int rf__log_level = RF_LOG_INFO;
unsigned rf__log_debug_mask;
static rf_log_format log_format = RF_LOG_FORMAT_TEXT;
static FILE *log_stream;

static const char *const mod_names[] = {
#define RF__MOD_NAME(name, str) str,
    RF_MOD_MAP(RF__MOD_NAME)
#undef RF__MOD_NAME
};
static const char *const level_names[] = {"error", "warn", "info", "debug"};

const char *rf_mod_name(rf_mod mod)
{
    return (unsigned)mod < RF__MOD_COUNT ? mod_names[mod] : "?";
}

void rf_log_set_stream(FILE *fp)
{
    log_stream = fp;
}

rf_rc rf_log_setup(rf_log_level lvl, rf_log_format fmt, const char *debug_modules, rf_err_t *err)
{
    unsigned mask = 0;
    if (debug_modules && *debug_modules) {
        char **items = NULL;
        size_t n = rf_conf_list_split(debug_modules, &items);
        for (size_t i = 0; i < n; i++) {
            int found = 0;
            if (!strcmp(items[i], "all")) {
                mask = ~0u;
                continue;
            }
            for (unsigned m = 0; m < RF__MOD_COUNT; m++)
                if (!strcmp(items[i], mod_names[m])) {
                    mask |= 1u << m;
                    found = 1;
                }
            if (!found) {
                rf_rc rc = rf_err_set(err, RF_ECONFIG,
                                      "log.debug=%s: unknown module \"%s\" (expected a comma "
                                      "list of core,app,ingest,embed,index,serve,iceberg,all)",
                                      debug_modules, items[i]);
                free(items);
                return rc;
            }
        }
        free(items);
    }
    rf__log_level = lvl;
    rf__log_debug_mask = mask;
    log_format = fmt;
    return RF_OK;
}

/* Appends s as a JSON string body (without quotes). */
static void json_escape(rf_buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            rf_buf_append(b, e, 2);
        } else if (c < 0x20) {
            rf_buf_printf(b, "\\u%04x", c);
        } else {
            rf_buf_append(b, &s[i], 1);
        }
    }
}

/* Splits the leading key=value tokens of a formatted line into JSON fields. */
static void format_json(rf_buf_t *b, const char *ts, rf_log_level lvl, rf_mod mod, const char *line)
{
    const char *p = line;
    rf_buf_printf(b, "{\"ts\":\"%s\",\"level\":\"%s\",\"mod\":\"%s\"", ts, level_names[lvl],
                  mod_names[mod]);
    for (;;) {
        const char *k = p, *eq, *v, *vend, *next;
        while (*k == ' ')
            k++;
        eq = k;
        while (*eq && *eq != '=' && *eq != ' ')
            eq++;
        if (*eq != '=' || eq == k)
            break;
        v = eq + 1;
        if (*v == '"') {
            v++;
            vend = strchr(v, '"');
            if (!vend)
                break;
            next = vend + 1;
        } else {
            vend = v;
            while (*vend && *vend != ' ')
                vend++;
            next = vend;
        }
        rf_buf_puts(b, ",\"");
        json_escape(b, k, (size_t)(eq - k));
        rf_buf_puts(b, "\":\"");
        json_escape(b, v, (size_t)(vend - v));
        rf_buf_puts(b, "\"");
        p = next;
    }
    while (*p == ' ')
        p++;
    rf_buf_puts(b, ",\"msg\":\"");
    json_escape(b, p, strlen(p));
    rf_buf_puts(b, "\"}\n");
}

void rf_log_write(rf_log_level lvl, rf_mod mod, const char *fmt, ...)
{
    char line[2048], ts[64];
    struct timespec now;
    struct tm tm;
    va_list ap;
    rf_buf_t b;
    FILE *fp = log_stream ? log_stream : stderr;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);

    rf_buf_init(&b, 16384);
    if ((unsigned)lvl > RF_LOG_DEBUG)
        lvl = RF_LOG_DEBUG;
    if ((unsigned)mod >= RF__MOD_COUNT)
        mod = RF_MOD_CORE;
    if (log_format == RF_LOG_FORMAT_JSON)
        format_json(&b, ts, lvl, mod, line);
    else
        rf_buf_printf(&b, "%s %s %s %s\n", ts, level_names[lvl], mod_names[mod], line);
    flockfile(fp);
    fputs(b.ptr ? b.ptr : "", fp);
    fflush(fp);
    funlockfile(fp);
    rf_buf_fini(&b);
}
