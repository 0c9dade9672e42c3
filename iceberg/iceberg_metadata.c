/* iceberg_metadata.c - Iceberg table metadata JSON (format v2): creating a table's first
 * version, schema evolution by added optional columns, append snapshots with the
 * standard summary totals plus caller keys, and writing versioned metadata files
 * atomically with their metadata-log.  INVARIANT(history-exported-once): a snapshot's
 * summary carries the exporter's position (ragfeed.seq, ragfeed.offsets).
 */
#include "iceberg/iceberg_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

struct rf_iceberg_meta {
    json_t *root;
    char *file;              /* where root was loaded from or last written; NULL if new */
    int64_t file_updated_ms; /* last-updated-ms of that file */
};

#define META_MAX_BYTES        ((size_t)64 * 1024 * 1024)
#define META_LOG_DEFAULT_KEEP 100
#define PART_FIELD_FIRST_ID   1000

/* ==== Small helpers ==== */

void rf__iceberg_uuid(char out[37])
{
    uint8_t b[16];
    rf__iceberg_random(b, sizeof b);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

int32_t rf__iceberg_day_from_micros(int64_t us)
{
    const int64_t per_day = INT64_C(86400000000);
    int64_t d = us / per_day;
    if (us % per_day < 0)
        d--;
    return (int32_t)d;
}

static int64_t jint(const json_t *o, const char *key, int64_t dflt)
{
    const json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static const char *primitive_types[] = {
    "boolean", "int",       "long",        "float",  "double", "date",
    "time",    "timestamp", "timestamptz", "string", "uuid",   "binary",
};

static int type_is_primitive(const char *t)
{
    unsigned p, s, n;
    char tail;
    if (!t)
        return 0;
    for (size_t i = 0; i < sizeof primitive_types / sizeof primitive_types[0]; i++)
        if (!strcmp(t, primitive_types[i]))
            return 1;
    if (sscanf(t, "decimal(%u, %u%c", &p, &s, &tail) == 3 && tail == ')' && p >= 1 && p <= 38 &&
        s <= p)
        return 1;
    if (sscanf(t, "fixed[%u%c", &n, &tail) == 2 && tail == ']' && n > 0)
        return 1;
    return 0;
}

/* Builds one field's JSON.  *next_id supplies ids for fields (and list elements) given
 * as 0; ids is the set of ids in use, for the uniqueness check. */
static rf_rc field_json(const rf_iceberg_field_t *f, int32_t *next_id, json_t *ids, json_t **out,
                        rf_err_t *err)
{
    json_t *o = NULL, *type = NULL;
    int32_t id = f->id ? f->id : (*next_id)++;
    char key[16];

    *out = NULL;
    if (!f->name || !*f->name || !f->type)
        return rf_err_set(err, RF_EINVAL, "iceberg schema: a field needs a name and a type");
    if (id <= 0)
        return rf_err_set(err, RF_EINVAL, "iceberg schema: field %s has id %d", f->name, id);
    snprintf(key, sizeof key, "%d", id);
    if (json_object_get(ids, key))
        return rf_err_set(err, RF_EINVAL, "iceberg schema: field id %d used twice (%s)", id,
                          f->name);
    json_object_set_new(ids, key, json_true());
    if (!strcmp(f->type, "list")) {
        int32_t eid = f->element_id ? f->element_id : (*next_id)++;
        if (!type_is_primitive(f->element_type))
            return rf_err_set(err, RF_EINVAL, "iceberg schema: list %s has element type %s",
                              f->name, f->element_type ? f->element_type : "(none)");
        snprintf(key, sizeof key, "%d", eid);
        if (eid <= 0 || json_object_get(ids, key))
            return rf_err_set(err, RF_EINVAL, "iceberg schema: element id %d of %s is taken", eid,
                              f->name);
        json_object_set_new(ids, key, json_true());
        type = json_pack("{s:s, s:i, s:s, s:b}", "type", "list", "element-id", (int)eid, "element",
                         f->element_type, "element-required", f->element_required ? 1 : 0);
    } else if (type_is_primitive(f->type)) {
        type = json_string(f->type);
    } else {
        return rf_err_set(err, RF_EINVAL, "iceberg schema: field %s has unknown type %s", f->name,
                          f->type);
    }
    o = json_pack("{s:i, s:s, s:b, s:o}", "id", (int)id, "name", f->name, "required",
                  f->required ? 1 : 0, "type", type);
    if (!o)
        return rf_err_set(err, RF_EINVAL, "iceberg schema: field %s is not valid UTF-8", f->name);
    if (f->doc)
        json_object_set_new(o, "doc", json_string(f->doc));
    *out = o;
    return RF_OK;
}

/* Highest field id in a schema (list element ids included). */
static int32_t schema_max_id(const json_t *schema)
{
    int32_t mx = 0;
    size_t i;
    const json_t *f;
    json_array_foreach(json_object_get(schema, "fields"), i, f)
    {
        const json_t *t = json_object_get(f, "type");
        int64_t id = jint(f, "id", 0);
        if (id > mx)
            mx = (int32_t)id;
        if (json_is_object(t) && jint(t, "element-id", 0) > mx)
            mx = (int32_t)jint(t, "element-id", 0);
        if (json_is_object(t) && jint(t, "key-id", 0) > mx)
            mx = (int32_t)jint(t, "key-id", 0);
        if (json_is_object(t) && jint(t, "value-id", 0) > mx)
            mx = (int32_t)jint(t, "value-id", 0);
    }
    return mx;
}

static const json_t *schema_field(const json_t *schema, const char *name)
{
    size_t i;
    const json_t *f;
    json_array_foreach(json_object_get(schema, "fields"), i, f)
    {
        const char *n = json_string_value(json_object_get(f, "name"));
        if (n && !strcmp(n, name))
            return f;
    }
    return NULL;
}

/* Checks that transform can be applied to a column of source_type and yields an int. */
static rf_rc check_transform(const char *transform, const char *source_type, rf_err_t *err)
{
    unsigned n;
    char tail;
    int temporal =
        source_type && (!strcmp(source_type, "date") || !strcmp(source_type, "timestamp") ||
                        !strcmp(source_type, "timestamptz"));
    if (!transform || !source_type)
        return rf_err_set(err, RF_EINVAL,
                          "iceberg spec: a transform and a primitive source "
                          "column are required");
    if (!strcmp(transform, "year") || !strcmp(transform, "month") || !strcmp(transform, "day")) {
        if (!temporal)
            return rf_err_set(err, RF_EINVAL, "iceberg spec: %s needs a date or timestamp, not %s",
                              transform, source_type);
        return RF_OK;
    }
    if (!strcmp(transform, "hour")) {
        if (!temporal || !strcmp(source_type, "date"))
            return rf_err_set(err, RF_EINVAL, "iceberg spec: hour needs a timestamp, not %s",
                              source_type);
        return RF_OK;
    }
    if (sscanf(transform, "bucket[%u%c", &n, &tail) == 2 && tail == ']' && n > 0)
        return RF_OK;
    if (!strcmp(transform, "identity")) {
        if (strcmp(source_type, "int") != 0 && strcmp(source_type, "date") != 0)
            return rf_err_set(err, RF_ENOTIMPL,
                              "iceberg spec: identity partitions are supported on int and date "
                              "columns only, not %s",
                              source_type);
        return RF_OK;
    }
    return rf_err_set(err, RF_ENOTIMPL, "iceberg spec: transform %s is not supported", transform);
}

static json_t *find_by_int(const json_t *arr, const char *key, int64_t v)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if (json_is_integer(json_object_get(e, key)) &&
            (int64_t)json_integer_value(json_object_get(e, key)) == v)
            return e;
    }
    return NULL;
}

static rf_iceberg_meta_t *meta_wrap(json_t *root, const char *file)
{
    rf_iceberg_meta_t *m = rf_xcalloc(1, sizeof *m);
    m->root = root;
    m->file = file ? rf_xstrdup(file) : NULL;
    m->file_updated_ms = jint(root, "last-updated-ms", 0);
    return m;
}

/* ==== Create, parse, load ==== */

rf_rc rf__iceberg_meta_create(const char *location, const rf_iceberg_field_t *fields,
                              size_t nfields, const rf_iceberg_part_field_t *part, size_t npart,
                              const rf_iceberg_kv_t *props, size_t nprops, rf_iceberg_meta_t **out,
                              rf_err_t *err)
{
    json_t *root = NULL, *jfields = json_array(), *ids = json_object(), *schema = NULL;
    json_t *pfields = json_array(), *jprops = json_object();
    char uuid[37];
    char *loc = NULL;
    int32_t next_id = 1, last_part = PART_FIELD_FIRST_ID - 1;
    rf_rc rc = RF_OK;

    *out = NULL;
    if (!location || !rf__iceberg_local_path(location) || nfields == 0) {
        rc = rf_err_set(err, RF_EINVAL,
                        "iceberg metadata: an absolute location and at least one column are "
                        "required");
        goto out;
    }
    loc = rf_xstrdup(location);
    while (strlen(loc) > 1 && loc[strlen(loc) - 1] == '/')
        loc[strlen(loc) - 1] = '\0';

    /* Explicit ids first, so fields given as 0 are numbered after the highest one. */
    for (size_t i = 0; i < nfields; i++) {
        if (fields[i].id >= next_id)
            next_id = fields[i].id + 1;
        if (fields[i].element_id >= next_id)
            next_id = fields[i].element_id + 1;
    }
    for (size_t i = 0; i < nfields; i++) {
        json_t *f;
        for (size_t j = 0; j < i; j++) {
            if (fields[j].name && fields[i].name && !strcmp(fields[i].name, fields[j].name)) {
                rc = rf_err_set(err, RF_EINVAL, "iceberg schema: column %s appears twice",
                                fields[i].name);
                goto out;
            }
        }
        if ((rc = field_json(&fields[i], &next_id, ids, &f, err)))
            goto out;
        json_array_append_new(jfields, f);
    }
    schema = json_pack("{s:s, s:i, s:O}", "type", "struct", "schema-id", 0, "fields", jfields);

    for (size_t i = 0; i < npart; i++) {
        const json_t *src = part[i].source ? schema_field(schema, part[i].source) : NULL;
        int32_t fid = part[i].field_id ? part[i].field_id : last_part + 1;
        char *pname;
        if (!src) {
            rc = rf_err_set(err, RF_EINVAL, "iceberg spec: partition source %s is not a column",
                            part[i].source ? part[i].source : "(null)");
            goto out;
        }
        if ((rc = check_transform(part[i].transform,
                                  json_string_value(json_object_get(src, "type")), err)))
            goto out;
        if (fid < PART_FIELD_FIRST_ID || fid <= last_part) {
            rc = rf_err_set(err, RF_EINVAL,
                            "iceberg spec: partition field ids must be >= 1000 and ascending");
            goto out;
        }
        last_part = fid;
        pname = part[i].name ? rf_xstrdup(part[i].name)
                             : rf_xasprintf("%s_%s", part[i].source, part[i].transform);
        json_array_append_new(pfields, json_pack("{s:s, s:s, s:I, s:i}", "name", pname, "transform",
                                                 part[i].transform, "source-id",
                                                 json_integer_value(json_object_get(src, "id")),
                                                 "field-id", (int)fid));
        free(pname);
    }
    for (size_t i = 0; i < nprops; i++) {
        json_t *v = props[i].key && props[i].value ? json_string(props[i].value) : NULL;
        if (!v || json_object_set_new(jprops, props[i].key, v)) {
            rc = rf_err_set(err, RF_EINVAL, "iceberg metadata: property %s is not a UTF-8 pair",
                            props[i].key ? props[i].key : "(null)");
            goto out;
        }
    }

    rf__iceberg_uuid(uuid);
    root = json_object();
    json_object_set_new(root, "format-version", json_integer(2));
    json_object_set_new(root, "table-uuid", json_string(uuid));
    json_object_set_new(root, "location", json_string(loc));
    json_object_set_new(root, "last-sequence-number", json_integer(0));
    json_object_set_new(root, "last-updated-ms", json_integer(rf_now_ms()));
    json_object_set_new(root, "last-column-id", json_integer(schema_max_id(schema)));
    json_object_set_new(root, "current-schema-id", json_integer(0));
    json_object_set_new(root, "schemas", json_pack("[O]", schema));
    json_object_set_new(root, "default-spec-id", json_integer(0));
    json_object_set_new(root, "partition-specs",
                        json_pack("[{s:i, s:O}]", "spec-id", 0, "fields", pfields));
    json_object_set_new(root, "last-partition-id", json_integer(last_part));
    json_object_set_new(root, "default-sort-order-id", json_integer(0));
    json_object_set_new(root, "sort-orders", json_pack("[{s:i, s:[]}]", "order-id", 0, "fields"));
    json_object_set_new(root, "properties", json_incref(jprops));
    json_object_set_new(root, "current-snapshot-id", json_integer(-1));
    json_object_set_new(root, "refs", json_object());
    json_object_set_new(root, "snapshots", json_array());
    json_object_set_new(root, "snapshot-log", json_array());
    json_object_set_new(root, "metadata-log", json_array());
    *out = meta_wrap(root, NULL);
    root = NULL;
out:
    json_decref(root);
    json_decref(schema);
    json_decref(jfields);
    json_decref(ids);
    json_decref(pfields);
    json_decref(jprops);
    free(loc);
    return rc;
}

static const char *required_v2[] = {
    "format-version",        "table-uuid",      "location",          "last-sequence-number",
    "last-updated-ms",       "last-column-id",  "schemas",           "current-schema-id",
    "partition-specs",       "default-spec-id", "last-partition-id", "sort-orders",
    "default-sort-order-id",
};

rf_rc rf__iceberg_meta_parse(const char *text, size_t len, const char *file,
                             rf_iceberg_meta_t **out, rf_err_t *err)
{
    json_error_t jerr;
    json_t *root;
    int64_t fv;

    *out = NULL;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return rf_err_set(err, RF_EPARSE, "iceberg metadata %s: %s (line %d)",
                          file ? file : "(text)", root ? "not an object" : jerr.text, jerr.line);
    }
    fv = jint(root, "format-version", 0);
    if (fv != 2) {
        json_decref(root);
        return rf_err_set(err, RF_ENOTIMPL,
                          "iceberg metadata %s: format-version %" PRId64 " (only 2 is supported)",
                          file ? file : "(text)", fv);
    }
    for (size_t i = 0; i < sizeof required_v2 / sizeof required_v2[0]; i++) {
        if (!json_object_get(root, required_v2[i])) {
            json_decref(root);
            return rf_err_set(err, RF_EPARSE, "iceberg metadata %s: missing %s",
                              file ? file : "(text)", required_v2[i]);
        }
    }
    if (!find_by_int(json_object_get(root, "schemas"), "schema-id",
                     jint(root, "current-schema-id", -1)) ||
        !find_by_int(json_object_get(root, "partition-specs"), "spec-id",
                     jint(root, "default-spec-id", -1))) {
        json_decref(root);
        return rf_err_set(err, RF_EPARSE,
                          "iceberg metadata %s: current schema or default spec is missing",
                          file ? file : "(text)");
    }
    /* The lists this writer appends to; absent is the same as empty. */
    if (!json_is_array(json_object_get(root, "snapshots")))
        json_object_set_new(root, "snapshots", json_array());
    if (!json_is_array(json_object_get(root, "snapshot-log")))
        json_object_set_new(root, "snapshot-log", json_array());
    if (!json_is_array(json_object_get(root, "metadata-log")))
        json_object_set_new(root, "metadata-log", json_array());
    if (!json_is_object(json_object_get(root, "refs")))
        json_object_set_new(root, "refs", json_object());
    if (!json_is_object(json_object_get(root, "properties")))
        json_object_set_new(root, "properties", json_object());
    *out = meta_wrap(root, file);
    return RF_OK;
}

rf_rc rf__iceberg_meta_load(const char *location, rf_iceberg_meta_t **out, rf_err_t *err)
{
    const char *path = rf__iceberg_local_path(location);
    char *data = NULL;
    size_t len = 0;
    rf_rc rc;
    *out = NULL;
    if (!path)
        return rf_err_set(err, RF_EINVAL, "iceberg metadata: %s is not a local absolute path",
                          location);
    if ((rc = rf_file_read(path, META_MAX_BYTES, &data, &len, err)))
        return rc;
    rc = rf__iceberg_meta_parse(data, len, location, out, err);
    free(data);
    return rc;
}

rf_iceberg_meta_t *rf__iceberg_meta_dup(const rf_iceberg_meta_t *m)
{
    rf_iceberg_meta_t *c = meta_wrap(json_deep_copy(m->root), m->file);
    c->file_updated_ms = m->file_updated_ms;
    return c;
}

void rf__iceberg_meta_free(rf_iceberg_meta_t *m)
{
    if (!m)
        return;
    json_decref(m->root);
    free(m->file);
    free(m);
}

/* ==== Queries ==== */

const json_t *rf__iceberg_meta_json(const rf_iceberg_meta_t *m)
{
    return m->root;
}

const char *rf__iceberg_meta_file(const rf_iceberg_meta_t *m)
{
    return m->file;
}

const char *rf__iceberg_meta_location(const rf_iceberg_meta_t *m)
{
    return json_string_value(json_object_get(m->root, "location"));
}

int64_t rf__iceberg_meta_last_seq(const rf_iceberg_meta_t *m)
{
    return jint(m->root, "last-sequence-number", 0);
}

int64_t rf__iceberg_meta_current_snapshot_id(const rf_iceberg_meta_t *m)
{
    int64_t id = jint(m->root, "current-snapshot-id", -1);
    return id < 0 ? -1 : id;
}

const json_t *rf__iceberg_meta_snapshot(const rf_iceberg_meta_t *m, int64_t snapshot_id)
{
    if (snapshot_id < 0)
        snapshot_id = rf__iceberg_meta_current_snapshot_id(m);
    if (snapshot_id < 0)
        return NULL;
    return find_by_int(json_object_get(m->root, "snapshots"), "snapshot-id", snapshot_id);
}

const char *rf__iceberg_meta_summary(const rf_iceberg_meta_t *m, int64_t snapshot_id,
                                     const char *key)
{
    const json_t *s = rf__iceberg_meta_snapshot(m, snapshot_id);
    return s ? json_string_value(json_object_get(json_object_get(s, "summary"), key)) : NULL;
}

const json_t *rf__iceberg_meta_schema(const rf_iceberg_meta_t *m)
{
    return find_by_int(json_object_get(m->root, "schemas"), "schema-id",
                       jint(m->root, "current-schema-id", 0));
}

const json_t *rf__iceberg_meta_spec(const rf_iceberg_meta_t *m)
{
    return find_by_int(json_object_get(m->root, "partition-specs"), "spec-id",
                       jint(m->root, "default-spec-id", 0));
}

int32_t rf__iceberg_meta_schema_id(const rf_iceberg_meta_t *m)
{
    return (int32_t)jint(m->root, "current-schema-id", 0);
}

int32_t rf__iceberg_meta_spec_id(const rf_iceberg_meta_t *m)
{
    return (int32_t)jint(m->root, "default-spec-id", 0);
}

int32_t rf__iceberg_meta_field_id(const rf_iceberg_meta_t *m, const char *name)
{
    const json_t *f = schema_field(rf__iceberg_meta_schema(m), name);
    return f ? (int32_t)jint(f, "id", 0) : 0;
}

/* ==== Changes ==== */

static void touch(rf_iceberg_meta_t *m, int64_t ts)
{
    int64_t cur = jint(m->root, "last-updated-ms", 0);
    json_object_set_new(m->root, "last-updated-ms", json_integer(max64(cur, ts)));
}

rf_rc rf__iceberg_meta_add_columns(rf_iceberg_meta_t *m, const rf_iceberg_field_t *fields, size_t n,
                                   rf_err_t *err)
{
    const json_t *cur = rf__iceberg_meta_schema(m);
    json_t *schema = NULL, *ids = json_object(), *jfields;
    json_t *schemas = json_object_get(m->root, "schemas"), *s;
    int64_t last_col = jint(m->root, "last-column-id", 0), max_schema = -1;
    int32_t next_id = (int32_t)last_col + 1;
    size_t i;
    rf_rc rc = RF_OK;

    if (n == 0)
        goto out;
    if (!cur || last_col >= INT32_MAX - 2 * (int64_t)n) {
        rc = rf_err_set(err, RF_EINVAL, "iceberg schema: no current schema or ids exhausted");
        goto out;
    }
    schema = json_deep_copy(cur);
    jfields = json_object_get(schema, "fields");
    for (i = 0; i < n; i++) {
        rf_iceberg_field_t f = fields[i];
        json_t *jf;
        if (f.required) {
            rc = rf_err_set(err, RF_EINVAL,
                            "iceberg schema: new column %s must be optional (older files lack it)",
                            f.name ? f.name : "(null)");
            goto out;
        }
        if (!f.name || schema_field(schema, f.name)) {
            rc = rf_err_set(err, RF_EEXIST, "iceberg schema: column %s exists already",
                            f.name ? f.name : "(null)");
            goto out;
        }
        /* Ids of dropped columns are never reused: always go past last-column-id. */
        f.id = 0;
        f.element_id = 0;
        if ((rc = field_json(&f, &next_id, ids, &jf, err)))
            goto out;
        json_array_append_new(jfields, jf);
    }
    json_array_foreach(schemas, i, s) max_schema = max64(max_schema, jint(s, "schema-id", 0));
    json_object_set_new(schema, "schema-id", json_integer(max_schema + 1));
    json_array_append(schemas, schema);
    json_object_set_new(m->root, "current-schema-id", json_integer(max_schema + 1));
    json_object_set_new(m->root, "last-column-id", json_integer(next_id - 1));
    touch(m, rf_now_ms());
out:
    json_decref(schema);
    json_decref(ids);
    return rc;
}

void rf__iceberg_meta_set_property(rf_iceberg_meta_t *m, const char *key, const char *value)
{
    json_t *props = json_object_get(m->root, "properties");
    if (value)
        json_object_set_new(props, key, json_string(value));
    else
        json_object_del(props, key);
    touch(m, rf_now_ms());
}

int64_t rf__iceberg_meta_new_snapshot_id(const rf_iceberg_meta_t *m)
{
    for (;;) {
        uint64_t r;
        rf__iceberg_random(&r, sizeof r);
        int64_t id = (int64_t)(r & (uint64_t)INT64_MAX);
        if (id != 0 && !find_by_int(json_object_get(m->root, "snapshots"), "snapshot-id", id))
            return id;
    }
}

/* The summary keys this writer computes; callers may not set them. */
static const char *standard_keys[] = {
    "operation",
    "added-data-files",
    "added-records",
    "added-files-size",
    "changed-partition-count",
    "total-data-files",
    "total-records",
    "total-files-size",
    "total-delete-files",
    "total-position-deletes",
    "total-equality-deletes",
    "deleted-data-files",
    "deleted-records",
    "removed-files-size",
    "added-delete-files",
    "removed-delete-files",
    "added-position-deletes",
    "added-equality-deletes",
};

static void put_count(json_t *summary, const char *key, int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    json_object_set_new(summary, key, json_string(buf));
}

/* total = parent's total + added; left out when the parent lacks it (Java does the same:
 * a total that was not tracked cannot be continued). */
static void put_total(json_t *summary, const json_t *parent, const char *key, int64_t added)
{
    const char *pv;
    char *end = NULL;
    long long prev = 0;
    if (parent) {
        pv = json_string_value(json_object_get(json_object_get(parent, "summary"), key));
        if (!pv)
            return;
        prev = strtoll(pv, &end, 10);
        if (end == pv || *end != '\0' || prev < 0)
            return;
    }
    put_count(summary, key, (int64_t)prev + added);
}

rf_rc rf__iceberg_meta_add_snapshot(rf_iceberg_meta_t *m, int64_t snapshot_id,
                                    const char *manifest_list, int64_t timestamp_ms,
                                    const rf_iceberg_append_stats_t *added,
                                    const rf_iceberg_kv_t *props, size_t nprops, rf_err_t *err)
{
    return rf__iceberg_meta_add_snapshot_op(m, snapshot_id, manifest_list, timestamp_ms, "append",
                                            added, NULL, props, nprops, err);
}

rf_rc rf__iceberg_meta_add_snapshot_op(rf_iceberg_meta_t *m, int64_t snapshot_id,
                                       const char *manifest_list, int64_t timestamp_ms,
                                       const char *operation,
                                       const rf_iceberg_append_stats_t *added,
                                       const rf_iceberg_removed_stats_t *removed,
                                       const rf_iceberg_kv_t *props, size_t nprops, rf_err_t *err)
{
    static const rf_iceberg_removed_stats_t none = {0, 0, 0};
    const json_t *parent = rf__iceberg_meta_snapshot(m, -1);
    int64_t parent_id = rf__iceberg_meta_current_snapshot_id(m);
    int64_t seq = rf__iceberg_meta_last_seq(m) + 1;
    json_t *summary = NULL, *snap = NULL;
    rf_rc rc = RF_OK;

    if (snapshot_id <= 0 || !manifest_list ||
        find_by_int(json_object_get(m->root, "snapshots"), "snapshot-id", snapshot_id))
        return rf_err_set(err, RF_EINVAL, "iceberg snapshot: id %" PRId64 " is invalid or taken",
                          snapshot_id);
    if (!operation || (strcmp(operation, "append") && strcmp(operation, "replace") &&
                       strcmp(operation, "overwrite") && strcmp(operation, "delete")))
        return rf_err_set(err, RF_EINVAL, "iceberg snapshot: unknown operation %s",
                          operation ? operation : "(null)");
    if (!removed)
        removed = &none;
    summary = json_object();
    json_object_set_new(summary, "operation", json_string(operation));
    put_count(summary, "added-data-files", added->data_files);
    put_count(summary, "added-records", added->records);
    put_count(summary, "added-files-size", added->files_size);
    if (removed->data_files) {
        put_count(summary, "deleted-data-files", removed->data_files);
        put_count(summary, "deleted-records", removed->records);
        put_count(summary, "removed-files-size", removed->files_size);
    }
    put_count(summary, "changed-partition-count", added->changed_partitions);
    put_total(summary, parent, "total-records", added->records - removed->records);
    put_total(summary, parent, "total-files-size", added->files_size - removed->files_size);
    put_total(summary, parent, "total-data-files", added->data_files - removed->data_files);
    put_total(summary, parent, "total-delete-files", 0);
    put_total(summary, parent, "total-position-deletes", 0);
    put_total(summary, parent, "total-equality-deletes", 0);
    for (size_t i = 0; i < nprops; i++) {
        for (size_t k = 0; k < sizeof standard_keys / sizeof standard_keys[0]; k++) {
            if (!props[i].key || !strcmp(props[i].key, standard_keys[k])) {
                rc = rf_err_set(err, RF_EINVAL, "iceberg snapshot: summary key %s is reserved",
                                props[i].key ? props[i].key : "(null)");
                goto out;
            }
        }
        json_t *v = props[i].value ? json_string(props[i].value) : NULL;
        if (!v) {
            rc = rf_err_set(err, RF_EINVAL,
                            "iceberg snapshot: summary value of %s is missing or not UTF-8",
                            props[i].key);
            goto out;
        }
        json_object_set_new(summary, props[i].key, v);
    }

    snap = json_object();
    json_object_set_new(snap, "sequence-number", json_integer(seq));
    json_object_set_new(snap, "snapshot-id", json_integer(snapshot_id));
    if (parent_id >= 0)
        json_object_set_new(snap, "parent-snapshot-id", json_integer(parent_id));
    json_object_set_new(snap, "timestamp-ms", json_integer(timestamp_ms));
    json_object_set(snap, "summary", summary);
    json_object_set_new(snap, "manifest-list", json_string(manifest_list));
    json_object_set_new(snap, "schema-id", json_integer(rf__iceberg_meta_schema_id(m)));
    json_array_append(json_object_get(m->root, "snapshots"), snap);

    json_array_append_new(json_object_get(m->root, "snapshot-log"),
                          json_pack("{s:I, s:I}", "timestamp-ms", (json_int_t)timestamp_ms,
                                    "snapshot-id", (json_int_t)snapshot_id));
    json_object_set_new(m->root, "current-snapshot-id", json_integer(snapshot_id));
    json_object_set_new(
        json_object_get(m->root, "refs"), "main",
        json_pack("{s:I, s:s}", "snapshot-id", (json_int_t)snapshot_id, "type", "branch"));
    json_object_set_new(m->root, "last-sequence-number", json_integer(seq));
    touch(m, timestamp_ms);
out:
    json_decref(summary);
    json_decref(snap);
    return rc;
}

rf_rc rf__iceberg_meta_remove_snapshots(rf_iceberg_meta_t *m, const int64_t *ids, size_t n,
                                        rf_err_t *err)
{
    json_t *snaps = json_object_get(m->root, "snapshots");
    json_t *slog = json_object_get(m->root, "snapshot-log");
    const json_t *refs = json_object_get(m->root, "refs");
    int64_t cur = rf__iceberg_meta_current_snapshot_id(m);
    const char *rname;
    const json_t *ref;
    size_t i;

    for (size_t k = 0; k < n; k++) {
        if (ids[k] == cur)
            return rf_err_set(err, RF_EINVAL,
                              "iceberg snapshot: %" PRId64 " is current and cannot expire", ids[k]);
        json_object_foreach((json_t *)refs, rname, ref)
        {
            if (jint(ref, "snapshot-id", -1) == ids[k])
                return rf_err_set(err, RF_EINVAL,
                                  "iceberg snapshot: %" PRId64 " is ref %s and cannot expire",
                                  ids[k], rname);
        }
    }
    for (size_t k = 0; k < n; k++) {
        for (i = json_array_size(snaps); i-- > 0;)
            if (jint(json_array_get(snaps, i), "snapshot-id", -1) == ids[k])
                json_array_remove(snaps, i);
        for (i = json_array_size(slog); i-- > 0;)
            if (jint(json_array_get(slog, i), "snapshot-id", -1) == ids[k])
                json_array_remove(slog, i);
    }
    touch(m, rf_now_ms());
    return RF_OK;
}

/* ==== Writing ==== */

/* The version of a metadata file name: "00012-<uuid>.metadata.json" or "v12.metadata.json"
 * give 12; anything else -1. */
static long file_version(const char *file)
{
    const char *base = strrchr(file, '/');
    char *end = NULL;
    long v;
    base = base ? base + 1 : file;
    if (*base == 'v')
        base++;
    if (*base < '0' || *base > '9')
        return -1;
    v = strtol(base, &end, 10);
    if (v < 0 || (*end != '-' && *end != '.'))
        return -1;
    return v;
}

rf_rc rf__iceberg_meta_write(rf_iceberg_meta_t *m, const char **file, rf_err_t *err)
{
    const char *loc = rf__iceberg_meta_location(m);
    const char *local = loc ? rf__iceberg_local_path(loc) : NULL;
    rf_iceberg_meta_t *next = NULL;
    json_t *mlog;
    char uuid[37];
    char *dir = NULL, *path = NULL, *newfile = NULL, *text = NULL;
    long version = 0;
    long long keep = META_LOG_DEFAULT_KEEP;
    const char *keep_prop;
    size_t loclen;
    rf_rc rc = RF_OK;

    if (file)
        *file = NULL;
    if (!local)
        return rf_err_set(err, RF_EINVAL, "iceberg metadata: location %s is not local",
                          loc ? loc : "(none)");
    /* Changes go to a copy so that a failed write leaves m as it was. */
    next = rf__iceberg_meta_dup(m);
    mlog = json_object_get(next->root, "metadata-log");
    if (m->file) {
        long prev = file_version(m->file);
        version = prev >= 0 ? prev + 1 : (long)json_array_size(mlog) + 1;
        /* The file this version replaces joins the log, stamped with its own
         * last-updated-ms; readers use the log to find older versions. */
        json_array_append_new(mlog,
                              json_pack("{s:I, s:s}", "timestamp-ms",
                                        (json_int_t)m->file_updated_ms, "metadata-file", m->file));
    }
    keep_prop = json_string_value(json_object_get(json_object_get(next->root, "properties"),
                                                  "write.metadata.previous-versions-max"));
    if (keep_prop) {
        char *end = NULL;
        long long k = strtoll(keep_prop, &end, 10);
        if (end != keep_prop && *end == '\0' && k > 0)
            keep = k;
    }
    while ((long long)json_array_size(mlog) > keep)
        json_array_remove(mlog, 0);
    /* last-updated-ms never goes below a logged version's, even if the clock stepped back. */
    touch(next, m->file_updated_ms);

    dir = rf_xasprintf("%s/metadata", local);
    if ((rc = rf_mkdirs(dir, err)))
        goto out;
    rf__iceberg_uuid(uuid);
    path = rf_xasprintf("%s/%05ld-%s.metadata.json", dir, version, uuid);
    loclen = strlen(loc);
    if (loclen > 1 && loc[loclen - 1] == '/')
        loclen--;
    newfile = rf_xasprintf("%.*s/metadata/%05ld-%s.metadata.json", (int)loclen, loc, version, uuid);
    text = rf__iceberg_meta_dump(next);
    if ((rc = rf_file_write_atomic(path, text, strlen(text), err)))
        goto out;
    json_decref(m->root);
    m->root = next->root;
    next->root = NULL;
    free(m->file);
    m->file = newfile;
    newfile = NULL;
    m->file_updated_ms = jint(m->root, "last-updated-ms", 0);
    if (file)
        *file = m->file;
out:
    rf__iceberg_meta_free(next);
    free(text);
    free(newfile);
    free(path);
    free(dir);
    return rc;
}

char *rf__iceberg_meta_dump(const rf_iceberg_meta_t *m)
{
    char *s = json_dumps(m->root, JSON_INDENT(2));
    if (!s)
        abort(); /* jansson fails only when out of memory */
    return s;
}
