/* ingest_map.c - row -> record mapping: the source.text template, metadata fields,
 * the tenant field, and the text/JSON rendering of row values.
 *
 * The template is parsed once, when the mapper is built, so a bad template stops the
 * start-up (RF_ECONFIG) instead of dead-lettering every event.  A row that renders to
 * no text is an error, never an empty vector: INVARIANT(bad-input-dead-letters).
 */
#include "ingest/ingest.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest_int.h"

/* ==== Rendering values ==== */

const char *rf__ingest_json_type(const json_t *v)
{
    if (!v)
        return "missing";
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

/* The shortest "%g" text that reads back as the same double, with ".0" added to an
 * integral value so it still reads as a real.  jansson's own printer uses 17 digits
 * (3.14 -> 3.1400000000000001), which is noise in the text to embed. */
static void real_text(double d, char *out, size_t n)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    if (!strpbrk(out, ".eEn")) {
        size_t len = strlen(out);
        if (len + 3 <= n)
            memcpy(out + len, ".0", 3);
    }
}

static rf_rc scalar_text(rf_buf_t *b, const json_t *v)
{
    char num[64];

    switch (json_typeof(v)) {
    case JSON_STRING:
        return rf_buf_append(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return rf_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    case JSON_REAL:
        real_text(json_real_value(v), num, sizeof(num));
        return rf_buf_puts(b, num);
    case JSON_TRUE:
        return rf_buf_puts(b, "true");
    case JSON_FALSE:
        return rf_buf_puts(b, "false");
    default:
        return RF_OK;
    }
}

static rf_rc json_string_dump(rf_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0; /* start of the pending run of bytes that need no escape */
    rf_rc rc = rf_buf_append(b, "\"", 1);

    for (size_t i = 0; !rc && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t esc_len = 2;

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = rf_buf_append(b, s + run, i - run);
        run = i + 1;
        esc[0] = '\\';
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            esc_len = 6;
            break;
        }
        if (!rc)
            rc = rf_buf_append(b, esc, esc_len);
    }
    if (!rc)
        rc = rf_buf_append(b, s + run, len - run);
    if (!rc)
        rc = rf_buf_append(b, "\"", 1);
    return rc;
}

rf_rc rf__ingest_json_dump(rf_buf_t *b, const json_t *v)
{
    rf_rc rc = RF_OK;
    const char *key;
    size_t key_len, i;
    json_t *item;
    int first = 1;

    /* Recursion is bounded by jansson's parser depth (JSON_PARSER_MAX_DEPTH). */
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        rc = rf_buf_append(b, "{", 1);
        json_object_keylen_foreach((json_t *)v, key, key_len, item)
        {
            if (!rc && !first)
                rc = rf_buf_append(b, ",", 1);
            if (!rc)
                rc = json_string_dump(b, key, key_len);
            if (!rc)
                rc = rf_buf_append(b, ":", 1);
            if (!rc)
                rc = rf__ingest_json_dump(b, item);
            if (rc)
                break;
            first = 0;
        }
        if (!rc)
            rc = rf_buf_append(b, "}", 1);
        return rc;
    case JSON_ARRAY:
        rc = rf_buf_append(b, "[", 1);
        json_array_foreach(v, i, item)
        {
            if (!rc && i)
                rc = rf_buf_append(b, ",", 1);
            if (!rc)
                rc = rf__ingest_json_dump(b, item);
            if (rc)
                break;
        }
        if (!rc)
            rc = rf_buf_append(b, "]", 1);
        return rc;
    case JSON_STRING:
        return json_string_dump(b, json_string_value(v), json_string_length(v));
    case JSON_NULL:
        return rf_buf_puts(b, "null");
    default:
        return scalar_text(b, v);
    }
}

rf_rc rf__ingest_value_text(rf_buf_t *b, const json_t *v)
{
    if (!v || json_is_null(v))
        return RF_OK;
    if (json_is_object(v) || json_is_array(v))
        return rf__ingest_json_dump(b, v);
    return scalar_text(b, v);
}

const json_t *rf__ingest_field_get(const json_t *row, const char *path)
{
    const json_t *v;
    const char *seg, *dot;

    if (!json_is_object(row))
        return NULL;
    /* A column may itself be named "a.b"; the exact name wins over the walk. */
    v = json_object_get(row, path);
    if (v || !strchr(path, '.'))
        return v;
    v = row;
    for (seg = path;; seg = dot + 1) {
        dot = strchr(seg, '.');
        if (!json_is_object(v))
            return NULL;
        v = json_object_getn(v, seg, dot ? (size_t)(dot - seg) : strlen(seg));
        if (!v || !dot)
            return v;
    }
}

/* ==== The template ==== */

static void parts_free(rf__ingest_tpl_part_t *parts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(parts[i].lit);
        free(parts[i].field);
    }
    free(parts);
}

/* Moves the pending literal in lit (if any) into a new part. */
static void parts_push(rf__ingest_tpl_part_t **parts, size_t *n, rf_buf_t *lit, char *field)
{
    rf__ingest_tpl_part_t *p;

    if (!lit->len && !field)
        return;
    *parts = rf_xrealloc(*parts, (*n + 1) * sizeof(**parts));
    p = &(*parts)[(*n)++];
    p->lit = NULL;
    p->lit_len = 0;
    p->field = field;
    if (lit->len) {
        p->lit_len = lit->len;
        p->lit = rf_buf_take(lit, NULL);
    }
}

/* Parses src into literal and field parts.  Grammar: `{name}` is a field (spaces
 * around the name are ignored), `{{` and `}}` are literal braces; a `{` without its
 * `}`, an empty `{}`, and a lone `}` are errors, so typos show at start-up. */
static rf_rc tpl_parse(const char *src, rf__ingest_tpl_part_t **out, size_t *out_cnt, rf_err_t *err)
{
    rf__ingest_tpl_part_t *parts = NULL;
    size_t n = 0, i = 0, len = strlen(src);
    rf_buf_t lit;
    rf_rc rc = RF_OK;

    rf_buf_init(&lit, 0);
    while (i < len) {
        char c = src[i];
        if (c == '{' && src[i + 1] == '{') {
            rf_buf_append(&lit, "{", 1);
            i += 2;
        } else if (c == '}' && src[i + 1] == '}') {
            rf_buf_append(&lit, "}", 1);
            i += 2;
        } else if (c == '}') {
            rc = rf_err_set(err, RF_ECONFIG,
                            "source.text=%.80s: lone '}' at offset %zu: expected `}}` for a "
                            "literal brace",
                            src, i);
            goto out;
        } else if (c == '{') {
            size_t start = i + 1, end = start, name_end;
            while (end < len && src[end] != '}' && src[end] != '{')
                end++;
            if (end >= len || src[end] == '{') {
                rc = rf_err_set(err, RF_ECONFIG,
                                "source.text=%.80s: unclosed '{' at offset %zu: expected "
                                "`{field}`, or `{{` for a literal brace",
                                src, i);
                goto out;
            }
            name_end = end;
            while (start < name_end && src[start] == ' ')
                start++;
            while (name_end > start && src[name_end - 1] == ' ')
                name_end--;
            if (name_end == start) {
                rc = rf_err_set(err, RF_ECONFIG,
                                "source.text=%.80s: empty field name at offset %zu: expected "
                                "`{field}`",
                                src, i);
                goto out;
            }
            parts_push(&parts, &n, &lit, rf_xstrndup(src + start, name_end - start));
            i = end + 1;
        } else {
            rf_buf_append(&lit, &src[i], 1);
            i++;
        }
    }
    parts_push(&parts, &n, &lit, NULL);
    *out = parts;
    *out_cnt = n;
    parts = NULL;
out:
    rf_buf_fini(&lit);
    if (parts)
        parts_free(parts, n);
    return rc;
}

/* ==== The mapper ==== */

rf_rc rf_ingest_mapper_new(const rf_conf_t *cfg, rf_ingest_mapper_t **out, rf_err_t *err)
{
    rf_ingest_mapper_t *m = NULL;
    rf_rc rc = RF_OK;

    if (!cfg || !out)
        return rf_err_set(err, RF_EINVAL, "rf_ingest_mapper_new: cfg and out are required");
    *out = NULL;
    if (cfg->source_format != RF_SOURCE_FORMAT_DEBEZIUM &&
        cfg->source_format != RF_SOURCE_FORMAT_JSON)
        return rf_err_set(err, RF_ECONFIG, "source.format=%d: expected debezium or json",
                          cfg->source_format);
    m = rf_xcalloc(1, sizeof(*m));
    m->format = cfg->source_format;
    m->name = cfg->source_name && *cfg->source_name ? rf_xstrdup(cfg->source_name) : NULL;
    m->id_field_cnt = rf_conf_list_split(cfg->source_id_fields, &m->id_fields);
    m->meta_field_cnt = rf_conf_list_split(cfg->source_metadata_fields, &m->meta_fields);
    m->tenant_field = cfg->source_tenant_field && *cfg->source_tenant_field
                          ? rf_xstrdup(cfg->source_tenant_field)
                          : NULL;
    m->text_src = rf_xstrdup(cfg->source_text ? cfg->source_text : "");
    m->max_value =
        cfg->source_max_value_bytes > 0 ? (size_t)cfg->source_max_value_bytes : (size_t)1048576;
    rc = tpl_parse(m->text_src, &m->parts, &m->part_cnt, err);
    if (rc)
        goto out;
    *out = m;
    m = NULL;
out:
    rf_ingest_mapper_free(m);
    return rc;
}

void rf_ingest_mapper_free(rf_ingest_mapper_t *m)
{
    if (!m)
        return;
    free(m->name);
    free(m->id_fields);
    free(m->meta_fields);
    free(m->tenant_field);
    free(m->text_src);
    parts_free(m->parts, m->part_cnt);
    free(m);
}

/* ==== Mapping one row ==== */

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' && s[i] != '\f' &&
            s[i] != '\v')
            return 0;
    return 1;
}

/* The default text: every scalar field as a `name: value` line, in the row's order.
 * Nulls, objects and arrays are left out (they read as noise in embedded text). */
static rf_rc render_default(rf_buf_t *b, const json_t *row)
{
    const char *key;
    size_t key_len;
    json_t *v;
    rf_rc rc = RF_OK;

    json_object_keylen_foreach((json_t *)row, key, key_len, v)
    {
        if (json_is_null(v) || json_is_object(v) || json_is_array(v))
            continue;
        if (b->len)
            rc = rf_buf_append(b, "\n", 1);
        if (!rc)
            rc = rf_buf_append(b, key, key_len);
        if (!rc)
            rc = rf_buf_append(b, ": ", 2);
        if (!rc)
            rc = rf__ingest_value_text(b, v);
        if (rc)
            break;
    }
    return rc;
}

static rf_rc render_text(const rf_ingest_mapper_t *m, const json_t *row, rf_event_t *ev,
                         rf_err_t *err)
{
    rf_buf_t b;
    rf_rc rc = RF_OK;

    rf_buf_init(&b, RF__INGEST_TEXT_MAX);
    if (!*m->text_src) {
        rc = render_default(&b, row);
    } else {
        for (size_t i = 0; !rc && i < m->part_cnt; i++) {
            const rf__ingest_tpl_part_t *p = &m->parts[i];
            if (p->lit)
                rc = rf_buf_append(&b, p->lit, p->lit_len);
            if (!rc && p->field)
                rc = rf__ingest_value_text(&b, rf__ingest_field_get(row, p->field));
        }
    }
    if (rc) {
        rc = rf_err_set(err, RF_ETOOBIG, "text is over %zu bytes after template \"%.60s\"",
                        RF__INGEST_TEXT_MAX, m->text_src);
        goto out;
    }
    if (is_blank(b.ptr ? b.ptr : "", b.len)) {
        if (*m->text_src)
            rc = rf_err_set(err, RF_EINVAL, "empty text after template \"%.80s\"", m->text_src);
        else
            rc = rf_err_set(err, RF_EINVAL,
                            "empty text after template \"\" (the row has no scalar field)");
        goto out;
    }
    ev->text = rf_buf_take(&b, NULL);
out:
    rf_buf_fini(&b);
    return rc;
}

static rf_rc render_metadata(const rf_ingest_mapper_t *m, const json_t *row, rf_event_t *ev,
                             rf_err_t *err)
{
    rf_buf_t b;
    rf_rc rc = RF_OK;
    int first = 1;

    if (!m->meta_field_cnt)
        return RF_OK;
    rf_buf_init(&b, RF__INGEST_TEXT_MAX);
    rc = rf_buf_append(&b, "{", 1);
    for (size_t i = 0; !rc && i < m->meta_field_cnt; i++) {
        const json_t *v = rf__ingest_field_get(row, m->meta_fields[i]);
        if (!v)
            continue;
        if (!first)
            rc = rf_buf_append(&b, ",", 1);
        if (!rc)
            rc = json_string_dump(&b, m->meta_fields[i], strlen(m->meta_fields[i]));
        if (!rc)
            rc = rf_buf_append(&b, ":", 1);
        if (!rc)
            rc = rf__ingest_json_dump(&b, v);
        first = 0;
    }
    if (!rc)
        rc = rf_buf_append(&b, "}", 1);
    if (rc) {
        rc = rf_err_set(err, RF_ETOOBIG, "metadata is over %zu bytes (source.metadata.fields)",
                        RF__INGEST_TEXT_MAX);
        goto out;
    }
    ev->metadata_json = rf_buf_take(&b, NULL);
out:
    rf_buf_fini(&b);
    return rc;
}

static rf_rc render_tenant(const rf_ingest_mapper_t *m, const json_t *row, rf_event_t *ev,
                           rf_err_t *err)
{
    const json_t *v;
    rf_buf_t b;
    rf_rc rc = RF_OK;

    if (!m->tenant_field)
        return RF_OK;
    v = rf__ingest_field_get(row, m->tenant_field);
    if (!v || json_is_null(v))
        return RF_OK;
    if (json_is_object(v) || json_is_array(v))
        return rf_err_set(err, RF_EINVAL,
                          "tenant field \"%.64s\" is a JSON %s, expected a string or a number",
                          m->tenant_field, rf__ingest_json_type(v));
    rf_buf_init(&b, RF__INGEST_ID_MAX);
    if (rf__ingest_value_text(&b, v)) {
        rc = rf_err_set(err, RF_ETOOBIG, "tenant field \"%.64s\" is over %d bytes", m->tenant_field,
                        RF__INGEST_ID_MAX);
        goto out;
    }
    ev->tenant = rf_buf_take(&b, NULL);
out:
    rf_buf_fini(&b);
    return rc;
}

rf_rc rf__ingest_map_row(const rf_ingest_mapper_t *m, const json_t *row, rf_event_t *ev,
                         rf_err_t *err)
{
    rf_rc rc;

    assert(json_is_object(row));
    rc = render_text(m, row, ev, err);
    if (!rc)
        rc = render_metadata(m, row, ev, err);
    if (!rc)
        rc = render_tenant(m, row, ev, err);
    return rc;
}
