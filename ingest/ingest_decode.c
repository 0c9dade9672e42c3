/* ingest_decode.c - turns one Kafka message into one change event: the Debezium JSON
 * envelope (with or without the Kafka Connect schema wrapper), plain JSON upserts,
 * tombstones, record ids from the key or the row, namespaces and source positions.
 *
 * INVARIANT(bad-input-dead-letters): any bytes in, either an event or an error whose
 * message is the dead-letter reason; sizes are checked before anything is parsed.
 */
#include "ingest/ingest.h"

#include <stdlib.h>
#include <string.h>

#include "ingest/ingest_int.h"

/* ==== Events and small utilities ==== */

void rf_event_fini(rf_event_t *ev)
{
    if (!ev)
        return;
    free(ev->id);
    free(ev->source);
    free(ev->text);
    free(ev->metadata_json);
    free(ev->tenant);
    free(ev->source_pos);
    memset(ev, 0, sizeof(*ev));
}

/* Copies at most n-1 bytes of s into out for an error message, replacing anything that
 * is not printable ASCII (and quotes) with '?' and marking a cut with "...". */
static const char *snip(const char *s, size_t len, char *out, size_t n)
{
    size_t o = 0;

    for (size_t i = 0; i < len && o + 1 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + 4 >= n && i + 1 < len) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    out[o] = '\0';
    return out;
}

/* 1 when s[0..len) is well-formed UTF-8 without NUL bytes. */
static int utf8_text_ok(const uint8_t *s, size_t len)
{
    return !memchr(s, 0, len) && rf_utf8_valid(s, len);
}

/* Parses bytes as any JSON text.  NULL with a message in err when they are not JSON;
 * `what` names the part ("value", "key"). */
static json_t *parse_json(rf_slice_t bytes, const char *what, rf_err_t *err)
{
    json_error_t jerr;
    json_t *j;

    /* No JSON_ALLOW_NUL: strings and member names can never hold a NUL byte, so every
     * string below may be used as a C string. */
    j = json_loadb((const char *)bytes.ptr, bytes.len, JSON_DECODE_ANY, &jerr);
    if (!j)
        rf_err_set(err, RF_EPARSE, "%s is not JSON: %s (line %d, column %d)", what, jerr.text,
                   jerr.line, jerr.column);
    return j;
}

/* The payload of a Kafka Connect {"schema":...,"payload":...} wrapper, else j. */
static json_t *unwrap_schema(json_t *j)
{
    json_t *payload;

    if (!json_is_object(j) || !json_object_get(j, "schema"))
        return j;
    payload = json_object_get(j, "payload");
    return payload ? payload : j;
}

/* Lists an object's first member names, for "what is this?" messages. */
static const char *member_names(const json_t *obj, char *out, size_t n)
{
    const char *key;
    json_t *v;
    size_t o = 0;

    out[0] = '\0';
    json_object_foreach((json_t *)obj, key, v)
    {
        char part[32];
        int w;
        (void)v;
        snip(key, strlen(key), part, sizeof(part));
        w = snprintf(out + o, n - o, "%s%s", o ? ", " : "", part);
        if (w < 0 || (size_t)w >= n - o) {
            if (n > 4)
                memcpy(out + n - 4, "...", 4);
            break;
        }
        o += (size_t)w;
    }
    return out;
}

/* ==== Ids ==== */

/* Appends the key's id text: the values of a JSON key object's fields in order joined
 * with ':' (with or without the schema wrapper), a JSON scalar's text, or the raw key
 * bytes when the key is not JSON.  *have = 0 when there is no key (NULL, empty, JSON
 * null, or a wrapper whose payload is null). */
static rf_rc key_text(const rf_ingest_msg_t *msg, rf_buf_t *b, int *have, rf_err_t *err)
{
    json_t *k = NULL, *kp, *v;
    json_error_t jerr;
    const char *name;
    size_t i, ws = 0;
    rf_rc rc = RF_OK;
    uint8_t c;

    *have = 0;
    if (!msg->key.ptr || !msg->key.len)
        return RF_OK;
    while (ws < msg->key.len &&
           ((c = msg->key.ptr[ws]) == ' ' || c == '\t' || c == '\r' || c == '\n'))
        ws++;
    k = json_loadb((const char *)msg->key.ptr, msg->key.len, JSON_DECODE_ANY, &jerr);
    if (!k) {
        /* Something that starts like a JSON object, array or string is a broken JSON
         * key, not a string key: using its bytes as an id would hide the fault. */
        if (ws < msg->key.len &&
            (msg->key.ptr[ws] == '{' || msg->key.ptr[ws] == '[' || msg->key.ptr[ws] == '"'))
            return rf_err_set(err, RF_EPARSE, "key is not JSON: %s (line %d, column %d)", jerr.text,
                              jerr.line, jerr.column);
        if (!utf8_text_ok(msg->key.ptr, msg->key.len))
            return rf_err_set(err, RF_EINVAL,
                              "key is neither JSON nor UTF-8 text (%zu bytes); cannot form "
                              "an id",
                              msg->key.len);
        if (rf_buf_append(b, msg->key.ptr, msg->key.len))
            goto toobig;
        *have = 1;
        return RF_OK;
    }
    kp = unwrap_schema(k);
    if (json_is_null(kp))
        goto out;
    if (json_is_object(kp)) {
        if (!json_object_size(kp)) {
            rc = rf_err_set(err, RF_EINVAL, "key is an empty JSON object; cannot form an id");
            goto out;
        }
        i = 0;
        json_object_foreach(kp, name, v)
        {
            if ((i++ && rf_buf_append(b, ":", 1)) || rf__ingest_value_text(b, v))
                goto toobig;
        }
    } else if (json_is_array(kp)) {
        if (!json_array_size(kp)) {
            rc = rf_err_set(err, RF_EINVAL, "key is an empty JSON array; cannot form an id");
            goto out;
        }
        json_array_foreach(kp, i, v)
        {
            if ((i && rf_buf_append(b, ":", 1)) || rf__ingest_value_text(b, v))
                goto toobig;
        }
    } else if (rf__ingest_value_text(b, kp)) {
        goto toobig;
    }
    *have = 1;
    goto out;
toobig:
    rc =
        rf_err_set(err, RF_ETOOBIG, "record id is over %d bytes (from the key)", RF__INGEST_ID_MAX);
out:
    json_decref(k);
    return rc;
}

/* Appends the source.id.fields values of row joined with ':'.  *have = 0 (and b
 * untouched) when row is not an object or lacks one of them (or it is null). */
static rf_rc row_id_text(const rf_ingest_mapper_t *m, const json_t *row, rf_buf_t *b, int *have,
                         rf_err_t *err)
{
    *have = 0;
    if (!m->id_field_cnt || !json_is_object(row))
        return RF_OK;
    for (size_t i = 0; i < m->id_field_cnt; i++) {
        const json_t *v = rf__ingest_field_get(row, m->id_fields[i]);
        if (!v || json_is_null(v))
            return RF_OK;
    }
    for (size_t i = 0; i < m->id_field_cnt; i++) {
        if ((i && rf_buf_append(b, ":", 1)) ||
            rf__ingest_value_text(b, rf__ingest_field_get(row, m->id_fields[i]))) {
            return rf_err_set(err, RF_ETOOBIG, "record id is over %d bytes (from source.id.fields)",
                              RF__INGEST_ID_MAX);
        }
    }
    *have = 1;
    return RF_OK;
}

/* Sets ev->id = "<ns>:<key>", the key part from row's source.id.fields when it has them
 * all, else from the Kafka key.  `row` may be NULL (tombstones, bare deletes). */
static rf_rc make_id(const rf_ingest_mapper_t *m, const char *ns, const json_t *row,
                     const rf_ingest_msg_t *msg, rf_event_t *ev, rf_err_t *err)
{
    rf_buf_t b;
    int have = 0;
    size_t ns_len = strlen(ns);
    rf_rc rc;

    rf_buf_init(&b, RF__INGEST_ID_MAX);
    rc = rf_buf_append(&b, ns, ns_len);
    if (!rc)
        rc = rf_buf_append(&b, ":", 1);
    if (rc) {
        rc = rf_err_set(err, RF_ETOOBIG, "record id is over %d bytes (source \"%.40s...\")",
                        RF__INGEST_ID_MAX, ns);
        goto out;
    }
    rc = row_id_text(m, row, &b, &have, err);
    if (!rc && !have)
        rc = key_text(msg, &b, &have, err);
    if (rc)
        goto out;
    if (!have) {
        if (m->id_field_cnt)
            rc = rf_err_set(err, RF_EINVAL,
                            "no id: the row lacks source.id.fields (%.60s%s) and the message "
                            "has no key",
                            m->id_fields[0], m->id_field_cnt > 1 ? ", ..." : "");
        else
            rc = rf_err_set(err, RF_EINVAL,
                            "no id: the message has no key and source.id.fields is empty");
        goto out;
    }
    if (b.len == ns_len + 1) {
        rc = rf_err_set(err, RF_EINVAL, "no id: the key gives an empty id");
        goto out;
    }
    ev->id = rf_buf_take(&b, NULL);
out:
    rf_buf_fini(&b);
    return rc;
}

/* ==== Namespaces, positions, times ==== */

/* The part of a topic that names the table.  Debezium's default topic is
 * `<prefix>.<db-or-schema>.<table>`, and the source block gives `<db>.<table>` (MySQL)
 * or `<schema>.<table>` (PostgreSQL): dropping the first component of a topic with
 * three or more components gives the same name, so the tombstone (which has no source
 * block) lands in the same namespace as the create and the delete before it.  Routed or
 * renamed topics break this agreement; set source.name for them. */
static char *topic_namespace(const char *topic)
{
    const char *dot = strchr(topic, '.');

    if (dot && strchr(dot + 1, '.'))
        return rf_xstrdup(dot + 1);
    return rf_xstrdup(topic);
}

static const char *nonempty_str(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);
    const char *s = json_string_value(v);

    return s && *s ? s : NULL;
}

/* The record namespace of a Debezium event: source.name; else the source block's
 * `<schema>.<table>` (PostgreSQL, when `schema` is set) or `<db>.<table>` (MySQL); else
 * the topic (topic_namespace).  src may be NULL. */
static rf_rc dbz_namespace(const rf_ingest_mapper_t *m, const json_t *src,
                           const rf_ingest_msg_t *msg, char **out, rf_err_t *err)
{
    const char *table, *outer;

    if (m->name) {
        *out = rf_xstrdup(m->name);
        return RF_OK;
    }
    table = nonempty_str(src, "table");
    outer = nonempty_str(src, "schema");
    if (!outer)
        outer = nonempty_str(src, "db");
    if (table && outer) {
        *out = rf_xasprintf("%s.%s", outer, table);
    } else if (msg->topic && *msg->topic) {
        *out = topic_namespace(msg->topic);
    } else {
        return rf_err_set(err, RF_EINVAL,
                          "no namespace: source.name is unset, the event has no "
                          "source.db/schema and source.table, and no topic");
    }
    if (strlen(*out) >= RF__INGEST_ID_MAX) {
        free(*out);
        *out = NULL;
        return rf_err_set(err, RF_ETOOBIG, "namespace is over %d bytes", RF__INGEST_ID_MAX);
    }
    return RF_OK;
}

/* PostgreSQL `lsn=<lsn>`; MySQL `<file>:<pos>` plus `:row=<n>` for the n-th row of a
 * multi-row binlog event; NULL when the block has neither. */
static char *source_pos(const json_t *src)
{
    const json_t *lsn = json_object_get(src, "lsn");
    const json_t *pos = json_object_get(src, "pos");
    const json_t *row = json_object_get(src, "row");
    const char *file = nonempty_str(src, "file");
    const char *lsn_s = json_string_value(lsn);

    if (json_is_integer(lsn))
        return rf_xasprintf("lsn=%" JSON_INTEGER_FORMAT, json_integer_value(lsn));
    if (lsn_s && *lsn_s)
        return rf_xasprintf("lsn=%.128s", lsn_s);
    if (file && json_is_integer(pos)) {
        if (json_is_integer(row) && json_integer_value(row) > 0)
            return rf_xasprintf("%.200s:%" JSON_INTEGER_FORMAT ":row=%" JSON_INTEGER_FORMAT, file,
                                json_integer_value(pos), json_integer_value(row));
        return rf_xasprintf("%.200s:%" JSON_INTEGER_FORMAT, file, json_integer_value(pos));
    }
    return NULL;
}

static int64_t positive_int(const json_t *obj, const char *name)
{
    const json_t *v = json_object_get(obj, name);

    return json_is_integer(v) && json_integer_value(v) > 0 ? (int64_t)json_integer_value(v) : 0;
}

/* The payload's ts_ms (when the connector processed the change), else the source's
 * ts_ms (when the database made it), else the Kafka timestamp, else 0. */
static int64_t event_time(const json_t *payload, const json_t *src, const rf_ingest_msg_t *msg)
{
    int64_t t = positive_int(payload, "ts_ms");

    if (!t)
        t = positive_int(src, "ts_ms");
    if (!t && msg->timestamp_ms > 0)
        t = msg->timestamp_ms;
    return t;
}

/* ==== Debezium ==== */

/* The NULL-value tombstone (and its legacy spelling): delete the key's id. */
static rf_rc dbz_tombstone(const rf_ingest_mapper_t *m, const rf_ingest_msg_t *msg, rf_event_t *ev,
                           rf_err_t *err)
{
    rf_rc rc;

    if (!msg->key.ptr)
        return rf_err_set(err, RF_EINVAL,
                          "tombstone (null value) without a key: nothing "
                          "to delete");
    ev->op = RF_EVENT_DELETE;
    rc = dbz_namespace(m, NULL, msg, &ev->source, err);
    if (!rc)
        rc = make_id(m, ev->source, NULL, msg, ev, err);
    ev->event_time_ms = msg->timestamp_ms > 0 ? msg->timestamp_ms : 0;
    return rc;
}

/* Checks that payload member `name` is absent, null or an object. */
static rf_rc want_object(const json_t *payload, const char *name, const json_t **out, rf_err_t *err)
{
    const json_t *v = json_object_get(payload, name);

    *out = json_is_object(v) ? v : NULL;
    if (v && !json_is_null(v) && !json_is_object(v))
        return rf_err_set(err, RF_EPARSE, "\"%s\" is a JSON %s, expected an object or null", name,
                          rf__ingest_json_type(v));
    return RF_OK;
}

/* A payload without "op": Debezium's heartbeat and transaction-metadata values carry
 * no change and are skipped; anything else (Maxwell, Canal, ...) is not ours. */
static rf_rc dbz_no_op(const json_t *payload, rf_event_t *ev, rf_err_t *err)
{
    const char *status = json_string_value(json_object_get(payload, "status"));
    char names[96];

    if (json_object_size(payload) == 1 && json_is_integer(json_object_get(payload, "ts_ms"))) {
        ev->op = RF_EVENT_SKIP;
        ev->skip_reason = "heartbeat";
        return RF_OK;
    }
    if (status && (!strcmp(status, "BEGIN") || !strcmp(status, "END")) &&
        json_object_get(payload, "id") && json_object_get(payload, "data_collections")) {
        ev->op = RF_EVENT_SKIP;
        ev->skip_reason = "transaction metadata";
        return RF_OK;
    }
    return rf_err_set(err, RF_EPARSE, "no \"op\" field: not a Debezium change event (fields: %s)",
                      member_names(payload, names, sizeof(names)));
}

static rf_rc decode_debezium(const rf_ingest_mapper_t *m, const rf_ingest_msg_t *msg, json_t *root,
                             rf_event_t *ev, rf_err_t *err)
{
    const json_t *payload, *src, *before, *after, *opv;
    const char *op;
    char tmp[48];
    rf_rc rc;

    payload = unwrap_schema(root);
    if (json_is_null(payload))
        return dbz_tombstone(m, msg, ev, err);
    if (!json_is_object(payload))
        return rf_err_set(err, RF_EPARSE, "%s is a JSON %s, expected an object",
                          payload == root ? "value" : "\"payload\"", rf__ingest_json_type(payload));
    opv = json_object_get(payload, "op");
    if (!opv)
        return dbz_no_op(payload, ev, err);
    op = json_string_value(opv);
    if (!op)
        return rf_err_set(err, RF_EPARSE, "\"op\" is a JSON %s, expected a string",
                          rf__ingest_json_type(opv));
    if ((rc = want_object(payload, "source", &src, err)) ||
        (rc = want_object(payload, "before", &before, err)) ||
        (rc = want_object(payload, "after", &after, err)))
        return rc;

    ev->event_time_ms = event_time(payload, src, msg);
    ev->source_pos = source_pos(src);
    if (!strcmp(op, "c") || !strcmp(op, "u") || !strcmp(op, "r")) {
        /* Old MySQL snapshots say "c" with source.snapshot "true" (a boolean in some
         * documents): an upsert all the same, so the snapshot flag is not read. */
        if (!after)
            return rf_err_set(err, RF_EPARSE, "op \"%s\" without an \"after\" row", op);
        ev->op = RF_EVENT_UPSERT;
        rc = dbz_namespace(m, src, msg, &ev->source, err);
        if (!rc)
            rc = make_id(m, ev->source, after, msg, ev, err);
        if (!rc)
            rc = rf__ingest_map_row(m, after, ev, err);
        return rc;
    }
    if (!strcmp(op, "d")) {
        /* before is null without REPLICA IDENTITY FULL: the key names the row. */
        ev->op = RF_EVENT_DELETE;
        rc = dbz_namespace(m, src, msg, &ev->source, err);
        if (!rc)
            rc = make_id(m, ev->source, before, msg, ev, err);
        return rc;
    }
    if (!strcmp(op, "t")) {
        ev->op = RF_EVENT_TRUNCATE;
        return dbz_namespace(m, src, msg, &ev->source, err);
    }
    if (!strcmp(op, "m")) {
        ev->op = RF_EVENT_SKIP;
        ev->skip_reason = "logical decoding message (op m)";
        if (dbz_namespace(m, src, msg, &ev->source, NULL))
            ev->source = NULL;
        return RF_OK;
    }
    return rf_err_set(err, RF_EPARSE, "unknown op \"%s\": expected c, u, d, r, t or m",
                      snip(op, json_string_length(opv), tmp, sizeof(tmp)));
}

/* ==== Plain JSON rows ==== */

/* Debezium's ExtractNewRecordState with delete.tombstone.handling.mode=rewrite keeps a
 * delete as the old row plus "__deleted": "true". */
static int json_row_deleted(const json_t *row)
{
    const json_t *d = json_object_get(row, "__deleted");
    const char *s = json_string_value(d);

    return json_is_true(d) || (s && !strcmp(s, "true"));
}

static rf_rc decode_json(const rf_ingest_mapper_t *m, const rf_ingest_msg_t *msg, json_t *root,
                         rf_event_t *ev, rf_err_t *err)
{
    rf_rc rc;

    /* The namespace is source.name, else the topic. */
    if (m->name)
        ev->source = rf_xstrdup(m->name);
    else if (msg->topic && *msg->topic && strlen(msg->topic) < RF__INGEST_ID_MAX)
        ev->source = rf_xstrdup(msg->topic);
    else
        return rf_err_set(err, RF_EINVAL,
                          "no namespace: source.name is unset and the message "
                          "has no usable topic");
    ev->event_time_ms = msg->timestamp_ms > 0 ? msg->timestamp_ms : 0;
    if (!root || json_is_null(root)) {
        if (!msg->key.ptr)
            return rf_err_set(err, RF_EINVAL, "null value without a key: nothing to delete");
        ev->op = RF_EVENT_DELETE;
        return make_id(m, ev->source, NULL, msg, ev, err);
    }
    if (!json_is_object(root))
        return rf_err_set(err, RF_EPARSE, "value is a JSON %s, expected an object (a row)",
                          rf__ingest_json_type(root));
    if (json_row_deleted(root)) {
        ev->op = RF_EVENT_DELETE;
        return make_id(m, ev->source, root, msg, ev, err);
    }
    ev->op = RF_EVENT_UPSERT;
    rc = make_id(m, ev->source, root, msg, ev, err);
    if (!rc)
        rc = rf__ingest_map_row(m, root, ev, err);
    return rc;
}

/* ==== Entry point ==== */

rf_rc rf_ingest_decode(const rf_ingest_mapper_t *m, const rf_ingest_msg_t *msg, rf_event_t *ev,
                       rf_err_t *err)
{
    json_t *root = NULL;
    rf_rc rc = RF_OK;

    if (!ev)
        return rf_err_set(err, RF_EINVAL, "rf_ingest_decode: ev is required");
    memset(ev, 0, sizeof(*ev));
    if (!m || !msg)
        return rf_err_set(err, RF_EINVAL, "rf_ingest_decode: m and msg are required");
    /* INVARIANT(bad-input-dead-letters): sizes are bounded before any parsing, and every
     * path below ends in an event or in an error whose message is the reason. */
    if (msg->value.ptr && msg->value.len > m->max_value)
        return rf_err_set(err, RF_ETOOBIG, "value is %zu bytes, over source.max.value.bytes=%zu",
                          msg->value.len, m->max_value);
    if (msg->key.ptr && msg->key.len > m->max_value)
        return rf_err_set(err, RF_ETOOBIG, "key is %zu bytes, over source.max.value.bytes=%zu",
                          msg->key.len, m->max_value);
    if (msg->value.ptr) {
        root = parse_json(msg->value, "value", err);
        if (!root) {
            rc = RF_EPARSE;
            goto out;
        }
    }
    if (m->format == RF_SOURCE_FORMAT_JSON)
        rc = decode_json(m, msg, root, ev, err);
    else if (!root)
        rc = dbz_tombstone(m, msg, ev, err);
    else
        rc = decode_debezium(m, msg, root, ev, err);
out:
    json_decref(root);
    if (rc)
        rf_event_fini(ev);
    return rc;
}
