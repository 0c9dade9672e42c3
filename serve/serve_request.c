/* serve_request.c - checking POST /v1/search and /v1/context bodies, strictly: a JSON
 * object with known fields only, bounded k, finite vectors, filters mapped onto the
 * index's conditions, and freshness controls (min_position, wait_ms) bounded by the
 * server's limits.  Everything client-controlled is bounded before it is allocated.
 * INVARIANT(fresh-is-measurable): min_position offsets are the client's produced offsets,
 * turned into the next offsets the index must have applied; min_position LSNs are source
 * database positions (PostgreSQL), numbers or PostgreSQL's "hi/lo" text.
 */
#include "serve/serve_int.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ==== Errors ==== */

static const struct {
    const char *name;
    unsigned status;
} codes[RF__SERVE_E_COUNT] = {
#define RF__SERVE_CODE_ROW(name, str, status) {str, status},
    RF__SERVE_CODE_MAP(RF__SERVE_CODE_ROW)
#undef RF__SERVE_CODE_ROW
};

const char *rf__serve_code_name(rf__serve_code code)
{
    return (unsigned)code < RF__SERVE_E_COUNT ? codes[code].name : "internal";
}

unsigned rf__serve_code_status(rf__serve_code code)
{
    return (unsigned)code < RF__SERVE_E_COUNT ? codes[code].status : 500;
}

rf_rc rf__serve_fail(rf__serve_fail_t *f, rf__serve_code code, const char *fmt, ...)
{
    va_list ap;
    f->code = code;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
    va_end(ap);
    return RF_EINVAL;
}

/* ==== Small utilities ==== */

/* Remembers p as owned by req; returns p. */
static void *own(rf__serve_request_t *req, void *p)
{
    if (req->owned_cnt == req->owned_cap) {
        req->owned_cap = req->owned_cap ? req->owned_cap * 2 : 16;
        req->owned = rf_xrealloc(req->owned, req->owned_cap * sizeof(*req->owned));
    }
    req->owned[req->owned_cnt++] = p;
    return p;
}

rf_rc rf__serve_vec_normalize(float *vec, int dim)
{
    double sum = 0.0, norm;
    for (int i = 0; i < dim; i++) {
        if (!isfinite(vec[i]))
            return RF_EINVAL;
        sum += (double)vec[i] * (double)vec[i];
    }
    norm = sqrt(sum);
    if (!(norm > 0.0) || !isfinite(norm))
        return RF_EINVAL;
    for (int i = 0; i < dim; i++)
        vec[i] = (float)((double)vec[i] / norm);
    return RF_OK;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
    return 1;
}

/* Reads exactly n decimal digits at *p; -1 when they are not there. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

rf_rc rf__serve_iso_ms(const char *s, int64_t *ms)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, tz = 0;

    y = digits(&p, 4);
    if (y < 0 || *p++ != '-' || (mo = digits(&p, 2)) < 1 || mo > 12 || *p++ != '-' ||
        (d = digits(&p, 2)) < 1 || d > mdays[mo - 1])
        return RF_EPARSE;
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return RF_EPARSE;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if ((h = digits(&p, 2)) < 0 || h > 23 || *p++ != ':' || (mi = digits(&p, 2)) < 0 || mi > 59)
            return RF_EPARSE;
        if (*p == ':') {
            p++;
            if ((sec = digits(&p, 2)) < 0 || sec > 60)
                return RF_EPARSE;
            if (*p == '.' || *p == ',') {
                int n = 0;
                p++;
                if (*p < '0' || *p > '9')
                    return RF_EPARSE;
                for (; *p >= '0' && *p <= '9'; p++, n++)
                    if (n < 3)
                        frac = frac * 10 + (*p - '0');
                for (; n < 3; n++)
                    frac *= 10;
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, th, tm;
            if ((th = digits(&p, 2)) < 0 || th > 23)
                return RF_EPARSE;
            if (*p == ':')
                p++;
            if ((tm = digits(&p, 2)) < 0 || tm > 59)
                return RF_EPARSE;
            tz = sign * (th * 60 + tm);
        } else {
            return RF_EPARSE; /* a time without a zone is ambiguous */
        }
    }
    if (*p)
        return RF_EPARSE;
    *ms =
        ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) - (int64_t)tz * 60) * 1000 +
        frac;
    return RF_OK;
}

/* ==== Fields ==== */

static rf_rc parse_vector(json_t *arr, int dim, rf__serve_request_t *req, rf__serve_fail_t *f)
{
    float *vec;
    size_t i;
    json_t *v;

    if (!json_is_array(arr))
        return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST, "vector must be an array of %d numbers",
                              dim);
    if (json_array_size(arr) != (size_t)dim)
        return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                              "vector has %zu entries; the index has dimension %d",
                              json_array_size(arr), dim);
    vec = own(req, rf_xmalloc(sizeof(float) * (size_t)dim));
    json_array_foreach(arr, i, v)
    {
        double d;
        if (!json_is_number(v))
            return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST, "vector[%zu] is not a number", i);
        d = json_number_value(v);
        vec[i] = (float)d;
        if (!isfinite(d) || !isfinite(vec[i]))
            return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                                  "vector[%zu] is out of range for a float", i);
    }
    if (rf__serve_vec_normalize(vec, dim) != RF_OK)
        return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST, "vector has zero length");
    req->vec = vec;
    req->vec_dim = dim;
    return RF_OK;
}

/* A filter value as the JSON scalar text the index compares.  event_time_ms takes
 * numbers or ISO-8601 times, which become milliseconds. */
static rf_rc scalar_text(rf__serve_request_t *req, const char *field, json_t *v, int for_range,
                         const char **out, rf__serve_fail_t *f)
{
    char *text;

    if (!json_is_string(v) && !json_is_number(v) && !(json_is_boolean(v) && !for_range))
        return rf__serve_fail(f, RF__SERVE_E_BAD_FILTER, "filter \"%.64s\": values must be %s",
                              field,
                              for_range ? "numbers or strings (ISO-8601 times compare as text)"
                                        : "strings, numbers or booleans");
    if (json_is_real(v) && !isfinite(json_real_value(v)))
        return rf__serve_fail(f, RF__SERVE_E_BAD_FILTER, "filter \"%.64s\": not a finite number",
                              field);
    if (!strcmp(field, "event_time_ms") && json_is_string(v)) {
        int64_t ms;
        if (rf__serve_iso_ms(json_string_value(v), &ms) != RF_OK)
            return rf__serve_fail(f, RF__SERVE_E_BAD_FILTER,
                                  "filter \"event_time_ms\": \"%.40s\" is neither milliseconds "
                                  "nor an ISO-8601 time such as 2024-05-01T12:00:00Z",
                                  json_string_value(v));
        text = rf_xasprintf("%lld", (long long)ms);
    } else {
        text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!text)
            return rf__serve_fail(f, RF__SERVE_E_BAD_FILTER,
                                  "filter \"%.64s\": the value cannot be encoded", field);
    }
    *out = own(req, text);
    return RF_OK;
}

/* {"gte": v, "lt": w, ...}, or {"in": [...]} into cond. */
static rf_rc parse_ops(rf__serve_request_t *req, const char *field, json_t *ops,
                       rf_index_cond_t *cond, rf__serve_fail_t *f)
{
    const char *op;
    json_t *v;
    rf_rc rc;

    if (!json_object_size(ops))
        return rf__serve_fail(f, RF__SERVE_E_BAD_FILTER,
                              "filter \"%.64s\": an empty condition (use a value, "
                              "{\"in\": [...]} or gte/gt/lte/lt)",
                              field);
    if (json_object_get(ops, "in")) {
        json_t *arr = json_object_get(ops, "in");
        const char **vals;
        size_t i;
        if (json_object_size(ops) != 1)
            return rf__serve_fail(f, RF__SERVE_E_BAD_FILTER,
                                  "filter \"%.64s\": \"in\" cannot be combined with other "
                                  "operators",
                                  field);
        if (!json_is_array(arr) || !json_array_size(arr) ||
            json_array_size(arr) > RF__SERVE_FILTER_IN_MAX)
            return rf__serve_fail(f, RF__SERVE_E_BAD_FILTER,
                                  "filter \"%.64s\": \"in\" takes an array of 1 to %d values",
                                  field, RF__SERVE_FILTER_IN_MAX);
        vals = own(req, rf_xcalloc(json_array_size(arr), sizeof(*vals)));
        json_array_foreach(arr, i, v)
        {
            if ((rc = scalar_text(req, field, v, 0, &vals[i], f)))
                return rc;
        }
        cond->kind = RF_INDEX_COND_IN;
        cond->values = vals;
        cond->value_cnt = json_array_size(arr);
        return RF_OK;
    }
    cond->kind = RF_INDEX_COND_RANGE;
    json_object_foreach(ops, op, v)
    {
        int lo = !strcmp(op, "gte") || !strcmp(op, "gt");
        int hi = !strcmp(op, "lte") || !strcmp(op, "lt");
        const char **slot = lo ? &cond->lo : &cond->hi;
        if (!lo && !hi)
            return rf__serve_fail(f, RF__SERVE_E_BAD_FILTER,
                                  "filter \"%.64s\": unknown operator \"%.32s\" (expected in, "
                                  "gte, gt, lte, lt)",
                                  field, op);
        if (*slot)
            return rf__serve_fail(f, RF__SERVE_E_BAD_FILTER,
                                  "filter \"%.64s\": give one lower bound (gte or gt) and one "
                                  "upper bound (lte or lt) at most",
                                  field);
        if ((rc = scalar_text(req, field, v, 1, slot, f)))
            return rc;
        if (lo)
            cond->lo_excl = !strcmp(op, "gt");
        else
            cond->hi_excl = !strcmp(op, "lt");
    }
    /* A number against a string never matches; say so instead of answering nothing. */
    if (cond->lo && cond->hi && (cond->lo[0] == '"') != (cond->hi[0] == '"'))
        return rf__serve_fail(f, RF__SERVE_E_BAD_FILTER,
                              "filter \"%.64s\": both bounds must be numbers or both strings",
                              field);
    return RF_OK;
}

static rf_rc parse_filter(rf__serve_request_t *req, json_t *filter, rf__serve_fail_t *f)
{
    const char *field;
    size_t field_len;
    json_t *v;
    rf_rc rc;

    if (!json_is_object(filter))
        return rf__serve_fail(f, RF__SERVE_E_BAD_FILTER,
                              "filter must be an object of {\"field\": condition}");
    if (json_object_size(filter) > RF__SERVE_FILTER_FIELDS_MAX)
        return rf__serve_fail(f, RF__SERVE_E_BAD_FILTER, "filter has more than %d fields",
                              RF__SERVE_FILTER_FIELDS_MAX);
    req->conds = own(req, rf_xcalloc(json_object_size(filter) + 1, sizeof(*req->conds)));
    json_object_keylen_foreach(filter, field, field_len, v)
    {
        rf_index_cond_t *cond = &req->conds[req->cond_cnt];
        if (!field_len || field_len > RF__SERVE_FIELD_NAME_MAX || strlen(field) != field_len)
            return rf__serve_fail(f, RF__SERVE_E_BAD_FILTER,
                                  "filter field names must be 1 to %d bytes without NUL",
                                  RF__SERVE_FIELD_NAME_MAX);
        for (size_t i = 0; i < field_len; i++)
            if ((unsigned char)field[i] < 0x20)
                return rf__serve_fail(f, RF__SERVE_E_BAD_FILTER,
                                      "filter field names must not hold control characters");
        cond->field = own(req, rf_xstrndup(field, field_len));
        if (json_is_object(v)) {
            rc = parse_ops(req, cond->field, v, cond, f);
        } else if (json_is_null(v) || json_is_array(v)) {
            rc = rf__serve_fail(f, RF__SERVE_E_BAD_FILTER,
                                "filter \"%.64s\": expected a value, {\"in\": [...]} or a range "
                                "(gte/gt/lte/lt), not %s",
                                cond->field, json_is_null(v) ? "null" : "an array");
        } else {
            const char **vals = own(req, rf_xcalloc(1, sizeof(*vals)));
            cond->kind = RF_INDEX_COND_EQ;
            cond->values = vals;
            cond->value_cnt = 1;
            rc = scalar_text(req, cond->field, v, 0, &vals[0], f);
        }
        if (rc)
            return rc;
        req->cond_cnt++;
    }
    return RF_OK;
}

static rf_rc parse_include(rf__serve_request_t *req, json_t *inc, rf__serve_fail_t *f)
{
    size_t i;
    json_t *v;

    if (!json_is_array(inc))
        return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                              "include must be an array of \"text\", \"metadata\", \"vector\"");
    req->include = 0;
    json_array_foreach(inc, i, v)
    {
        const char *s = json_string_value(v);
        if (s && !strcmp(s, "text")) {
            req->include |= RF__SERVE_INC_TEXT;
        } else if (s && !strcmp(s, "metadata")) {
            req->include |= RF__SERVE_INC_METADATA;
        } else if (s && !strcmp(s, "vector")) {
            req->include |= RF__SERVE_INC_VECTOR;
        } else {
            return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                                  "include[%zu] must be \"text\", \"metadata\" or \"vector\"", i);
        }
    }
    return RF_OK;
}

/* "topic/partition" -> want (topic owned by req); the partition follows the last '/'. */
static rf_rc parse_partition_key(rf__serve_request_t *req, const char *key, size_t key_len,
                                 rf_index_offset_t *want, rf__serve_fail_t *f)
{
    const char *slash = NULL;
    long long part = 0;

    for (size_t i = 0; i < key_len; i++)
        if (key[i] == '/')
            slash = key + i;
    if (strlen(key) != key_len || !slash || slash == key || (size_t)(slash - key) > 249 ||
        !slash[1])
        return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                              "min_position.offsets keys are \"topic/partition\", not \"%.64s\"",
                              key);
    for (const char *p = slash + 1; *p; p++) {
        if (*p < '0' || *p > '9' || part > INT32_MAX / 10)
            return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                                  "min_position.offsets \"%.64s\": the partition must be a "
                                  "number from 0 to %d",
                                  key, INT32_MAX);
        part = part * 10 + (*p - '0');
    }
    if (part > INT32_MAX)
        return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                              "min_position.offsets \"%.64s\": partition out of range", key);
    want->topic = own(req, rf_xstrndup(key, (size_t)(slash - key)));
    want->partition = (int32_t)part;
    return RF_OK;
}

/* 1 to 8 hexadecimal digits at *p (32 bits); -1 when there are none or more. */
static int64_t hex_part(const char **p)
{
    int64_t v = 0;
    int n = 0;
    for (;; (*p)++, n++) {
        char c = **p;
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            break;
        if (n == 8)
            return -1;
        v = v * 16 + d;
    }
    return n ? v : -1;
}

/* A PostgreSQL LSN as Debezium reports it (a number, or decimal digits in a string for
 * clients whose numbers are doubles) or as PostgreSQL prints it ("16/B374D848": the high
 * and low 32 bits in hexadecimal).  RF_OK with *lsn set; RF_EINVAL with f filled. */
static rf_rc lsn_value(const char *source, json_t *v, int64_t *lsn, rf__serve_fail_t *f)
{
    const char *s = json_string_value(v), *p;
    int64_t hi, lo;

    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                                  "min_position.lsn \"%.64s\": the LSN must be >= 0", source);
        *lsn = json_integer_value(v);
        return RF_OK;
    }
    if (!s)
        return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                              "min_position.lsn \"%.64s\": the LSN must be an integer or a "
                              "string such as \"16/B374D848\"",
                              source);
    if (json_string_length(v) <= 19 && strspn(s, "0123456789") == json_string_length(v) && *s) {
        int64_t n = 0;
        for (p = s; *p; p++) {
            if (n > (INT64_MAX - (*p - '0')) / 10)
                break;
            n = n * 10 + (*p - '0');
        }
        if (!*p) {
            *lsn = n;
            return RF_OK;
        }
    }
    p = s;
    hi = hex_part(&p);
    if (hi >= 0 && *p == '/') {
        p++;
        lo = hex_part(&p);
        if (lo >= 0 && !*p && hi <= (int64_t)(INT64_MAX >> 32)) {
            *lsn = hi << 32 | lo;
            return RF_OK;
        }
    }
    /* A MySQL binlog position ("mysql-bin.000003:154") names no order across files that
     * the index could compare: only numeric positions are tracked. */
    return rf__serve_fail(f, RF__SERVE_E_UNSUPPORTED,
                          "min_position.lsn \"%.64s\": \"%.64s\" is not a PostgreSQL LSN; only "
                          "numeric source positions can be waited for (use the Kafka offsets "
                          "of the change events for other sources)",
                          source, s);
}

/* {"source": LSN, ...} into req->lsns (sources owned by req). */
static rf_rc parse_lsns(rf__serve_request_t *req, json_t *lsns, rf__serve_fail_t *f)
{
    const char *key;
    size_t key_len;
    json_t *v;
    rf_rc rc;

    if (!json_is_object(lsns) || !json_object_size(lsns))
        return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                              "min_position.lsn must be an object of {\"source\": lsn}, e.g. "
                              "{\"inventory.products\": 34133800}");
    if (json_object_size(lsns) > RF__SERVE_LSN_SOURCES_MAX)
        return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                              "min_position.lsn has more than %d sources",
                              RF__SERVE_LSN_SOURCES_MAX);
    req->lsns = own(req, rf_xcalloc(json_object_size(lsns) + 1, sizeof(*req->lsns)));
    json_object_keylen_foreach(lsns, key, key_len, v)
    {
        rf_index_lsn_t *l = &req->lsns[req->lsn_cnt];
        if (!key_len || key_len > RF__SERVE_FIELD_NAME_MAX || strlen(key) != key_len)
            return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                                  "min_position.lsn sources must be 1 to %d bytes without NUL",
                                  RF__SERVE_FIELD_NAME_MAX);
        if ((rc = lsn_value(key, v, &l->lsn, f)))
            return rc;
        l->source = own(req, rf_xstrndup(key, key_len));
        req->lsn_cnt++;
    }
    return RF_OK;
}

static rf_rc parse_position(rf__serve_request_t *req, json_t *pos, rf__serve_fail_t *f)
{
    const char *key;
    size_t key_len;
    json_t *v, *seq, *offsets, *lsns;
    rf_rc rc;

    if (!json_is_object(pos))
        return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                              "min_position must be an object: {\"offsets\": {\"topic/partition\": "
                              "offset}}, {\"seq\": N} or {\"lsn\": {\"source\": N}}");
    json_object_foreach(pos, key, v)
    {
        if (strcmp(key, "seq") != 0 && strcmp(key, "offsets") != 0 && strcmp(key, "lsn") != 0)
            return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                                  "min_position: unknown field \"%.64s\" (expected offsets, seq, "
                                  "lsn)",
                                  key);
    }
    seq = json_object_get(pos, "seq");
    offsets = json_object_get(pos, "offsets");
    lsns = json_object_get(pos, "lsn");
    if (!seq && !offsets && !lsns)
        return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST, "min_position needs offsets, seq or lsn");
    if (lsns && (rc = parse_lsns(req, lsns, f)))
        return rc;
    if (seq) {
        if (!json_is_integer(seq) || json_integer_value(seq) < 0)
            return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                                  "min_position.seq must be an integer >= 0");
        req->min_seq = json_integer_value(seq);
    }
    if (offsets) {
        if (!json_is_object(offsets))
            return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                                  "min_position.offsets must be an object of "
                                  "{\"topic/partition\": offset}");
        if (json_object_size(offsets) > RF__SERVE_POSITIONS_MAX)
            return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                                  "min_position.offsets has more than %d partitions",
                                  RF__SERVE_POSITIONS_MAX);
        req->want = own(req, rf_xcalloc(json_object_size(offsets) + 1, sizeof(*req->want)));
        json_object_keylen_foreach(offsets, key, key_len, v)
        {
            rf_index_offset_t *w = &req->want[req->want_cnt];
            if ((rc = parse_partition_key(req, key, key_len, w, f)))
                return rc;
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) == INT64_MAX)
                return rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                                      "min_position.offsets \"%.64s\": the offset must be an "
                                      "integer >= 0, as the producer reported it",
                                      key);
            /* The client names the offset of its own message; it is visible once the
             * partition's next offset is past it. */
            w->next_offset = json_integer_value(v) + 1;
            req->want_cnt++;
        }
    }
    req->has_position = 1;
    return RF_OK;
}

/* An integer field in lo..hi, or RF_EINVAL with f filled. */
static rf_rc int_field(json_t *v, const char *name, int64_t lo, int64_t hi, rf__serve_code code,
                       int64_t *out, rf__serve_fail_t *f)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return rf__serve_fail(f, code, "%s must be an integer from %lld to %lld", name,
                              (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return RF_OK;
}

/* ==== Entry points ==== */

rf_rc rf__serve_request_parse(const char *body, size_t len, int kind, const rf__serve_limits_t *lim,
                              rf__serve_request_t *req, rf__serve_fail_t *f)
{
    static const char *const search_fields[] = {
        "query", "vector", "k", "filter", "min_score", "include", "min_position", "wait_ms", NULL};
    static const char *const context_fields[] = {
        "query",        "vector",  "k",         "filter",     "min_score", "include",
        "min_position", "wait_ms", "max_chars", "max_tokens", NULL};
    const char *const *fields = kind == RF__SERVE_KIND_CONTEXT ? context_fields : search_fields;
    json_error_t jerr;
    json_t *root = NULL, *query, *vector, *v;
    const char *key;
    int64_t n;
    rf_rc rc = RF_OK;

    memset(req, 0, sizeof(*req));
    req->kind = kind;
    req->k = 10 < lim->max_k ? 10 : lim->max_k;
    req->min_score = -INFINITY;
    req->include = RF__SERVE_INC_TEXT | RF__SERVE_INC_METADATA;
    req->min_seq = -1;

    /* Duplicate keys would make "which k?" ambiguous; refuse them. */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        rc = rf__serve_fail(f, RF__SERVE_E_BAD_JSON, "invalid JSON at line %d column %d: %s",
                            jerr.line, jerr.column, jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        rc = rf__serve_fail(f, RF__SERVE_E_BAD_JSON, "the body must be a JSON object");
        goto out;
    }
    json_object_foreach(root, key, v)
    {
        size_t i = 0;
        while (fields[i] && strcmp(fields[i], key) != 0)
            i++;
        if (!fields[i]) {
            rc = rf__serve_fail(
                f, RF__SERVE_E_BAD_REQUEST, "unknown field \"%.64s\" (expected %s)", key,
                kind == RF__SERVE_KIND_CONTEXT ? "query, vector, k, filter, min_score, include, "
                                                 "min_position, wait_ms, max_chars, max_tokens"
                                               : "query, vector, k, filter, min_score, include, "
                                                 "min_position, wait_ms");
            goto out;
        }
    }

    query = json_object_get(root, "query");
    vector = json_object_get(root, "vector");
    if (query && vector) {
        rc = rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST, "give either query or vector, not both");
        goto out;
    }
    if (!query && !vector) {
        rc = rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                            "query (a non-empty string) or vector (numbers) is required");
        goto out;
    }
    if (query) {
        if (!json_is_string(query)) {
            rc = rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST, "query must be a string");
            goto out;
        }
        if (is_blank(json_string_value(query), json_string_length(query))) {
            rc = rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST, "query is empty");
            goto out;
        }
    } else if ((rc = parse_vector(vector, lim->dim, req, f))) {
        goto out;
    }

    if ((v = json_object_get(root, "k"))) {
        if ((rc = int_field(v, "k", 1, lim->max_k, RF__SERVE_E_BAD_K, &n, f)))
            goto out;
        req->k = (int)n;
    }
    if ((v = json_object_get(root, "min_score"))) {
        double d = json_number_value(v);
        if (!json_is_number(v) || !(d >= -1.0 && d <= 1.0)) {
            rc = rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                                "min_score must be a number from -1 to 1 (cosine similarity)");
            goto out;
        }
        req->min_score = (float)d;
    }
    if ((v = json_object_get(root, "include")) && (rc = parse_include(req, v, f)))
        goto out;
    if ((v = json_object_get(root, "filter")) && (rc = parse_filter(req, v, f)))
        goto out;
    if ((v = json_object_get(root, "min_position")) && (rc = parse_position(req, v, f)))
        goto out;
    if ((v = json_object_get(root, "wait_ms"))) {
        if (!req->has_position) {
            rc = rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                                "wait_ms needs min_position (the position to wait for)");
            goto out;
        }
        if ((rc = int_field(v, "wait_ms", 0, lim->max_wait_ms, RF__SERVE_E_BAD_REQUEST,
                            &req->wait_ms, f)))
            goto out;
    } else if (req->has_position) {
        req->wait_ms = lim->max_wait_ms < 5000 ? lim->max_wait_ms : 5000;
    }
    if (kind == RF__SERVE_KIND_CONTEXT) {
        json_t *mc = json_object_get(root, "max_chars"), *mt = json_object_get(root, "max_tokens");
        req->max_chars = RF__SERVE_CONTEXT_CHARS_DEF;
        if (mc && mt) {
            rc = rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                                "give max_chars or max_tokens, not both");
            goto out;
        }
        if (mc && (rc = int_field(mc, "max_chars", 1, RF__SERVE_CONTEXT_CHARS_MAX,
                                  RF__SERVE_E_BAD_REQUEST, &req->max_chars, f)))
            goto out;
        if (mt) {
            if ((rc = int_field(mt, "max_tokens", 1,
                                RF__SERVE_CONTEXT_CHARS_MAX / RF__SERVE_CHARS_PER_TOKEN,
                                RF__SERVE_E_BAD_REQUEST, &req->max_tokens, f)))
                goto out;
            req->max_chars = req->max_tokens * RF__SERVE_CHARS_PER_TOKEN;
        }
    }
    if (query) {
        req->query_len = json_string_length(query);
        req->query = own(req, rf_xstrndup(json_string_value(query), req->query_len));
    }

out:
    json_decref(root);
    return rc;
}

void rf__serve_request_fini(rf__serve_request_t *req)
{
    if (!req)
        return;
    for (size_t i = 0; i < req->owned_cnt; i++)
        free(req->owned[i]);
    free(req->owned);
    memset(req, 0, sizeof(*req));
}
