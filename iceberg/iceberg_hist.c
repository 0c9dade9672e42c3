/* iceberg_hist.c - the history table as the exporter, `ragfeed history` and maintenance
 * share it: where it lives (from the configuration), its columns (field ids assigned
 * once, at creation; later columns by schema evolution), the exporter's position in a
 * snapshot's summary, and the live data files of a snapshot.
 * INVARIANT(history-exported-once): the position is read from the table itself
 * (ragfeed.seq of the snapshot, or of its nearest ancestor that has one).
 */
#include "iceberg/iceberg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iceberg/iceberg_int.h"

/* ==== Columns ==== */

static const struct {
    const char *name;
    const char *type;
    int required;
    const char *doc;
} hcols[RF_ICEBERG_H__COUNT] = {
    [RF_ICEBERG_H_SEQ] = {"seq", "long", 1, "store sequence number of the change"},
    [RF_ICEBERG_H_OP] = {"op", "string", 1, "upsert or delete"},
    [RF_ICEBERG_H_ID] = {"id", "string", 1, "record id"},
    [RF_ICEBERG_H_SOURCE] = {"source", "string", 0, "source table"},
    [RF_ICEBERG_H_TENANT] = {"tenant", "string", 0, NULL},
    [RF_ICEBERG_H_TEXT] = {"text", "string", 0, "the text that was embedded"},
    [RF_ICEBERG_H_METADATA] = {"metadata", "string", 0, "metadata fields, a JSON object"},
    [RF_ICEBERG_H_LABEL] = {"label", "string", 0, NULL},
    [RF_ICEBERG_H_LABEL_SCORE] = {"label_score", "double", 0, NULL},
    [RF_ICEBERG_H_MODEL] = {"model", "string", 0, "embedding model"},
    [RF_ICEBERG_H_DIM] = {"dim", "int", 0, "vector dimension"},
    [RF_ICEBERG_H_CONTENT_HASH] = {"content_hash", "string", 0, "BLAKE2b-256, hex"},
    [RF_ICEBERG_H_VECTOR] = {"vector", "list", 0, "the embedding"},
    [RF_ICEBERG_H_EVENT_TIME] = {"event_time", "timestamptz", 0,
                                 "time of the change at the source"},
    [RF_ICEBERG_H_INGEST_TIME] = {"ingest_time", "timestamptz", 1, "time the store applied it"},
    [RF_ICEBERG_H_KAFKA_TOPIC] = {"kafka_topic", "string", 0, NULL},
    [RF_ICEBERG_H_KAFKA_PARTITION] = {"kafka_partition", "int", 0, NULL},
    [RF_ICEBERG_H_KAFKA_OFFSET] = {"kafka_offset", "long", 0, NULL},
    [RF_ICEBERG_H_SOURCE_POSITION] = {"source_position", "string", 0, "LSN or binlog position"},
    [RF_ICEBERG_H_EMBEDDING_GENERATION] = {"embedding_generation", "long", 0,
                                           "model generation of the vector (null: no vector)"},
};

rf_iceberg_hcol rf__iceberg_hcol_by_name(const char *name)
{
    for (int i = 0; i < RF_ICEBERG_H__COUNT; i++)
        if (!strcmp(hcols[i].name, name))
            return (rf_iceberg_hcol)i;
    return RF_ICEBERG_H_PROMOTED;
}

const char *rf__iceberg_hcol_type(rf_iceberg_hcol c)
{
    return (unsigned)c < RF_ICEBERG_H__COUNT ? hcols[c].type : NULL;
}

static rf_iceberg_field_t hcol_field(rf_iceberg_hcol c)
{
    rf_iceberg_field_t f;
    memset(&f, 0, sizeof f);
    f.name = hcols[c].name;
    f.required = hcols[c].required;
    f.type = hcols[c].type;
    f.doc = hcols[c].doc;
    if (c == RF_ICEBERG_H_VECTOR) {
        f.element_type = "float";
        f.element_required = 1;
    }
    return f;
}

static const char *const promoted_types[] = {"string", "int",     "long",        "float",
                                             "double", "boolean", "timestamptz", NULL};

void rf__iceberg_promoted_free(rf_iceberg_promoted_t *p, size_t n)
{
    if (!p)
        return;
    for (size_t i = 0; i < n; i++)
        free(p[i].name);
    free(p);
}

static int name_ok(const char *s)
{
    if (!*s || strlen(s) > 128)
        return 0;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '_' ||
              (c != s && *c >= '0' && *c <= '9')))
            return 0;
    return 1;
}

rf_rc rf__iceberg_promoted_parse(const char *list, rf_iceberg_promoted_t **out, size_t *n,
                                 rf_err_t *err)
{
    char **items = NULL;
    size_t cnt = rf_conf_list_split(list ? list : "", &items);
    rf_iceberg_promoted_t *p = rf_xcalloc(cnt ? cnt : 1, sizeof(*p));
    size_t k = 0;
    rf_rc rc = RF_OK;

    *out = NULL;
    *n = 0;
    for (size_t i = 0; i < cnt; i++) {
        const char *colon = strchr(items[i], ':');
        const char *type = colon ? colon + 1 : "";
        char *name = rf_xstrndup(items[i], colon ? (size_t)(colon - items[i]) : strlen(items[i]));
        const char *t = NULL;
        for (int j = 0; promoted_types[j]; j++)
            if (!strcmp(type, promoted_types[j]))
                t = promoted_types[j];
        if (!colon || !name_ok(name) || !t) {
            rc = rf_err_set(err, RF_ECONFIG,
                            "iceberg.columns: \"%s\": expected name:type with a name of letters, "
                            "digits and _ and a type of string, int, long, float, double, "
                            "boolean or timestamptz",
                            items[i]);
            free(name);
            goto out;
        }
        if (rf__iceberg_hcol_by_name(name) != RF_ICEBERG_H_PROMOTED) {
            rc = rf_err_set(err, RF_ECONFIG, "iceberg.columns: %s is a built-in column", name);
            free(name);
            goto out;
        }
        for (size_t j = 0; j < k; j++) {
            if (!strcmp(p[j].name, name)) {
                rc = rf_err_set(err, RF_ECONFIG, "iceberg.columns: %s given twice", name);
                free(name);
                goto out;
            }
        }
        p[k].name = name;
        p[k].type = t;
        k++;
    }
out:
    free(items);
    if (rc) {
        rf__iceberg_promoted_free(p, k);
        return rc;
    }
    *out = p;
    *n = k;
    return RF_OK;
}

/* ==== Where the table lives ==== */

void rf__iceberg_hist_conf_fini(rf_iceberg_hist_conf_t *hc)
{
    if (!hc)
        return;
    free(hc->catalog_path);
    free(hc->ns);
    free(hc->name);
    free(hc->location);
    memset(hc, 0, sizeof(*hc));
}

/* An absolute form of path: as it is, or under the working directory. */
static char *absolute(const char *path)
{
    char cwd[4096];
    if (path[0] == '/')
        return rf_xstrdup(path);
    if (!getcwd(cwd, sizeof cwd))
        return rf_xstrdup(path);
    if (path[0] == '.' && path[1] == '/')
        path += 2;
    return rf_xasprintf("%s/%s", cwd, path);
}

rf_rc rf__iceberg_hist_conf_init(const rf_conf_t *cfg, rf_iceberg_hist_conf_t *hc, rf_err_t *err)
{
    const char *table = cfg->iceberg_table ? cfg->iceberg_table : "ragfeed.records_history";
    const char *dot = strrchr(table, '.');
    char *state = NULL, *wh = NULL;
    rf_rc rc = RF_OK;

    memset(hc, 0, sizeof(*hc));
    if (!dot || dot == table || !dot[1])
        return rf_err_set(err, RF_ECONFIG, "iceberg.table=%s: expected namespace.name", table);
    if (cfg->iceberg_warehouse && cfg->iceberg_warehouse[0] != '/')
        return rf_err_set(err, RF_ECONFIG, "iceberg.warehouse=%s: expected an absolute path",
                          cfg->iceberg_warehouse);
    state = absolute(cfg->state_dir ? cfg->state_dir : "./ragfeed-state");
    wh = cfg->iceberg_warehouse ? rf_xstrdup(cfg->iceberg_warehouse)
                                : rf_xasprintf("%s/warehouse", state);
    while (strlen(wh) > 1 && wh[strlen(wh) - 1] == '/')
        wh[strlen(wh) - 1] = '\0';
    hc->catalog_path = cfg->iceberg_catalog ? absolute(cfg->iceberg_catalog)
                                            : rf_xasprintf("%s/catalog.db", state);
    hc->catalog_name = cfg->iceberg_catalog_name ? cfg->iceberg_catalog_name : "ragfeed";
    hc->ns = rf_xstrndup(table, (size_t)(dot - table));
    hc->name = rf_xstrdup(dot + 1);
    {
        /* Namespace levels become directories, as Java's JdbcCatalog lays tables out:
         * <warehouse>/<ns1>/<ns2>/<name>. */
        char *nsdir = rf_xstrdup(hc->ns);
        for (char *c = nsdir; *c; c++)
            if (*c == '.')
                *c = '/';
        hc->location = rf_xasprintf("%s/%s/%s", wh, nsdir, hc->name);
        free(nsdir);
    }
    free(state);
    free(wh);
    return rc;
}

/* ==== Opening, creating and evolving ==== */

static rf_rc create_table(rf_iceberg_catalog_t *cat, const rf_conf_t *cfg,
                          const rf_iceberg_hist_conf_t *hc, rf_iceberg_table_t **t, rf_err_t *err)
{
    rf_iceberg_field_t *fields = NULL;
    rf_iceberg_promoted_t *pc = NULL;
    size_t npc = 0;
    static const rf_iceberg_part_field_t day[] = {
        {"ingest_time", "day", "ingest_time_day", 1000},
    };
    static const rf_iceberg_kv_t props[] = {
        {"write.format.default", "parquet"},
        {"write.parquet.compression-codec", "zstd"},
        {"ragfeed.table", "records_history"},
    };
    rf_iceberg_meta_t *m = NULL;
    size_t n = 0;
    rf_rc rc;
    /* Field ids are assigned here, once: base columns first, then promoted ones. */
    if ((rc = rf__iceberg_promoted_parse(cfg->iceberg_columns, &pc, &npc, err)))
        return rc;
    fields = rf_xcalloc(RF_ICEBERG_H__COUNT + npc, sizeof(*fields));
    for (int c = 0; c < RF_ICEBERG_H__COUNT; c++) {
        if (c == RF_ICEBERG_H_VECTOR && !cfg->iceberg_include_vectors)
            continue;
        fields[n++] = hcol_field((rf_iceberg_hcol)c);
    }
    for (size_t i = 0; i < npc; i++) {
        fields[n].name = pc[i].name;
        fields[n].type = pc[i].type;
        fields[n].doc = "promoted from metadata";
        n++;
    }
    rc = rf__iceberg_meta_create(hc->location, fields, n, day, 1, props,
                                 sizeof props / sizeof props[0], &m, err);
    if (!rc) {
        rc = rf__iceberg_table_create(cat, hc->ns, hc->name, m, t, err);
        if (rc)
            rf__iceberg_meta_free(m);
    }
    free(fields);
    rf__iceberg_promoted_free(pc, npc);
    return rc;
}

rf_rc rf__iceberg_hist_open(const rf_conf_t *cfg, const rf_iceberg_hist_conf_t *hc, int create,
                            rf_iceberg_catalog_t **catp, rf_iceberg_table_t **tp, rf_err_t *err)
{
    rf_iceberg_catalog_t *cat = NULL;
    rf_iceberg_table_t *t = NULL;
    struct stat sb;
    rf_rc rc;

    *catp = NULL;
    *tp = NULL;
    if (!create && stat(hc->catalog_path, &sb) != 0)
        return rf_err_set(err, RF_ENOTFOUND, "iceberg catalog %s does not exist (%s)",
                          hc->catalog_path, strerror(errno));
    if (create) {
        char *dir = rf_xstrdup(hc->catalog_path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            rc = rf_mkdirs(dir, err);
            if (rc) {
                free(dir);
                return rf_err_set(err, RF_EUNAVAIL, "iceberg catalog directory %s: %s",
                                  hc->catalog_path, err ? err->msg : "cannot create");
            }
        }
        free(dir);
    }
    if ((rc = rf__iceberg_catalog_open(hc->catalog_path, hc->catalog_name, &cat, err)))
        return rc;
    rc = rf__iceberg_table_load(cat, hc->ns, hc->name, &t, err);
    if (rc == RF_ENOTFOUND && create) {
        rf_err_clear(err);
        rc = create_table(cat, cfg, hc, &t, err);
        /* Another process may have created it in between: use theirs. */
        if (rc == RF_EEXIST) {
            rf_err_clear(err);
            rc = rf__iceberg_table_load(cat, hc->ns, hc->name, &t, err);
        }
    } else if (rc == RF_ENOTFOUND) {
        rc = rf_err_set(err, RF_ENOTFOUND, "iceberg table %s.%s is not in catalog %s (name %s)",
                        hc->ns, hc->name, hc->catalog_path, hc->catalog_name);
    } else if (rc == RF_EPARSE) {
        /* The catalog names a metadata file that cannot be read: an operator's matter. */
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err ? err->msg : "unreadable metadata");
        rc = rf_err_set(err, RF_ECORRUPT, "iceberg table %s.%s: %s", hc->ns, hc->name, msg);
    }
    if (rc) {
        rf__iceberg_catalog_close(cat);
        return rc;
    }
    *catp = cat;
    *tp = t;
    return RF_OK;
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* The type text of a top-level field of schema, or NULL when absent; lists give "list". */
static const char *field_type(const json_t *schema, const char *name)
{
    size_t i;
    const json_t *f;
    json_array_foreach(json_object_get(schema, "fields"), i, f)
    {
        if (!strcmp(str_or_empty(json_string_value(json_object_get(f, "name"))), name)) {
            const json_t *t = json_object_get(f, "type");
            if (json_is_string(t))
                return json_string_value(t);
            return json_string_value(json_object_get(t, "type"));
        }
    }
    return NULL;
}

rf_rc rf__iceberg_hist_evolve(rf_iceberg_table_t *t, const rf_conf_t *cfg, rf_err_t *err)
{
    rf_iceberg_promoted_t *pc = NULL;
    size_t npc = 0;
    rf_iceberg_field_t *add = NULL;
    size_t nadd = 0;
    rf_rc rc;

    if ((rc = rf__iceberg_promoted_parse(cfg->iceberg_columns, &pc, &npc, err)))
        return rc;
    add = rf_xcalloc(npc + 2, sizeof(*add));
    for (int attempt = 0; attempt < 5; attempt++) {
        const json_t *schema = rf__iceberg_meta_schema(t->meta);
        nadd = 0;
        if (cfg->iceberg_include_vectors && !field_type(schema, "vector"))
            add[nadd++] = hcol_field(RF_ICEBERG_H_VECTOR);
        /* Tables created before model generations lack this base column: a new schema
         * adds it under a new field id, and readers see null in the older files. */
        if (!field_type(schema, "embedding_generation"))
            add[nadd++] = hcol_field(RF_ICEBERG_H_EMBEDDING_GENERATION);
        for (size_t i = 0; i < npc; i++) {
            const char *have = field_type(schema, pc[i].name);
            if (have && strcmp(have, pc[i].type) != 0) {
                rc = rf_err_set(err, RF_ECONFIG,
                                "iceberg.columns: %s:%s, but the table's %s column is %s",
                                pc[i].name, pc[i].type, pc[i].name, have);
                goto out;
            }
            if (!have) {
                memset(&add[nadd], 0, sizeof(add[nadd]));
                add[nadd].name = pc[i].name;
                add[nadd].type = pc[i].type;
                add[nadd].doc = "promoted from metadata";
                nadd++;
            }
        }
        for (size_t i = 0; i < nadd; i++)
            if (add[i].type && !strcmp(add[i].type, "list"))
                add[i].element_type = "float";
        if (nadd == 0) {
            rc = RF_OK;
            goto out;
        }
        rc = rf__iceberg_table_add_columns(t, add, nadd, err);
        if (rc != RF_EBUSY)
            break;
        rf_err_clear(err);
        if ((rc = rf__iceberg_table_refresh(t, err)))
            break;
    }
    if (!rc)
        RF_LOG(RF_LOG_INFO, RF_MOD_ICEBERG, "table=%s.%s columns=%zu schema=%d schema evolved",
               t->ns, t->name, nadd, (int)rf__iceberg_meta_schema_id(t->meta));
out:
    free(add);
    rf__iceberg_promoted_free(pc, npc);
    return rc;
}

/* ==== Schema to Parquet columns ==== */

static int pq_type_of(const char *t, rf_iceberg_pq_type *out)
{
    static const struct {
        const char *name;
        rf_iceberg_pq_type type;
    } map[] = {
        {"boolean", RF_ICEBERG_PQ_BOOLEAN}, {"int", RF_ICEBERG_PQ_INT32},
        {"long", RF_ICEBERG_PQ_INT64},      {"float", RF_ICEBERG_PQ_FLOAT},
        {"double", RF_ICEBERG_PQ_DOUBLE},   {"string", RF_ICEBERG_PQ_STRING},
        {"binary", RF_ICEBERG_PQ_BINARY},   {"timestamptz", RF_ICEBERG_PQ_TIMESTAMPTZ},
        {"date", RF_ICEBERG_PQ_DATE},
    };
    for (size_t i = 0; t && i < sizeof map / sizeof map[0]; i++) {
        if (!strcmp(map[i].name, t)) {
            *out = map[i].type;
            return 0;
        }
    }
    return -1;
}

rf_rc rf__iceberg_schema_pq_columns(const json_t *schema, rf_iceberg_pq_column_t **cols, size_t *n,
                                    rf_err_t *err)
{
    const json_t *fields = json_object_get(schema, "fields");
    size_t cnt = json_array_size(fields), i;
    const json_t *f;
    rf_iceberg_pq_column_t *c = rf_xcalloc(cnt ? cnt : 1, sizeof(*c));

    *cols = NULL;
    *n = 0;
    json_array_foreach(fields, i, f)
    {
        const json_t *t = json_object_get(f, "type");
        rf_iceberg_pq_column_t *col = &c[i];
        col->name = json_string_value(json_object_get(f, "name"));
        col->field_id = (int32_t)json_integer_value(json_object_get(f, "id"));
        col->optional = !json_is_true(json_object_get(f, "required"));
        if (json_is_object(t) &&
            !strcmp(str_or_empty(json_string_value(json_object_get(t, "type"))), "list")) {
            col->is_list = 1;
            col->element_id = (int32_t)json_integer_value(json_object_get(t, "element-id"));
            col->element_optional = !json_is_true(json_object_get(t, "element-required"));
            t = json_object_get(t, "element");
        }
        if (!col->name || col->field_id <= 0 || pq_type_of(json_string_value(t), &col->type)) {
            rf_rc rc =
                rf_err_set(err, RF_ENOTIMPL,
                           "iceberg schema: column %s has a type this writer does not support",
                           col->name ? col->name : "(unnamed)");
            free(c);
            return rc;
        }
    }
    *cols = c;
    *n = cnt;
    return RF_OK;
}

/* ==== The exporter's position ==== */

rf_rc rf__iceberg_hist_position(const rf_iceberg_meta_t *m, int64_t snapshot_id, int64_t *seq,
                                const char **offsets, rf_err_t *err)
{
    const json_t *snap = rf__iceberg_meta_snapshot(m, snapshot_id);
    *seq = 0;
    if (offsets)
        *offsets = NULL;
    /* INVARIANT(history-exported-once): the start point is the table's own record of what
     * it holds.  Maintenance snapshots carry it over; should one lack it, the nearest
     * ancestor that has it tells, since only appends add rows. */
    for (int hops = 0; snap && hops < 100000; hops++) {
        const json_t *sum = json_object_get(snap, "summary");
        const char *v = json_string_value(json_object_get(sum, "ragfeed.seq"));
        const json_t *parent = json_object_get(snap, "parent-snapshot-id");
        if (v) {
            char *end = NULL;
            long long x;
            errno = 0;
            x = strtoll(v, &end, 10);
            if (end == v || *end || x < 0 || errno)
                return rf_err_set(
                    err, RF_ECORRUPT, "iceberg table: snapshot %lld has ragfeed.seq \"%s\"",
                    (long long)json_integer_value(json_object_get(snap, "snapshot-id")), v);
            *seq = (int64_t)x;
            if (offsets)
                *offsets = json_string_value(json_object_get(sum, "ragfeed.offsets"));
            return RF_OK;
        }
        if (!json_is_integer(parent))
            break;
        snap = rf__iceberg_meta_snapshot(m, (int64_t)json_integer_value(parent));
    }
    return RF_OK;
}

/* ==== Live data files ==== */

void rf__iceberg_live_files_free(rf_iceberg_live_file_t *files, size_t n)
{
    if (!files)
        return;
    for (size_t i = 0; i < n; i++) {
        free(files[i].path);
        free(files[i].manifest);
        free(files[i].id_lo);
        free(files[i].id_hi);
        json_decref(files[i].entry);
    }
    free(files);
}

/* The bound for field id in a manifest's bounds map (array of {key, value}), or NULL. */
static const json_t *bound_of(const json_t *map, int32_t id)
{
    size_t i;
    const json_t *kv;
    json_array_foreach(map, i, kv)
    {
        if (json_integer_value(json_object_get(kv, "key")) == id)
            return json_object_get(kv, "value");
    }
    return NULL;
}

static int64_t le64_of(const json_t *b)
{
    const uint8_t *p = (const uint8_t *)json_string_value(b);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return (int64_t)v;
}

static int file_cmp(const void *a, const void *b)
{
    const rf_iceberg_live_file_t *x = a, *y = b;
    int64_t xa = x->has_seq_bounds ? x->seq_lo : INT64_MAX;
    int64_t ya = y->has_seq_bounds ? y->seq_lo : INT64_MAX;
    if (xa != ya)
        return xa < ya ? -1 : 1;
    return strcmp(x->path, y->path);
}

rf_rc rf__iceberg_snapshot_files(const rf_iceberg_meta_t *m, int64_t snapshot_id,
                                 rf_iceberg_live_file_t **files, size_t *n, rf_err_t *err)
{
    const json_t *snap = rf__iceberg_meta_snapshot(m, snapshot_id);
    const json_t *spec = rf__iceberg_meta_spec(m);
    const char *pname = json_string_value(
        json_object_get(json_array_get(json_object_get(spec, "fields"), 0), "name"));
    int32_t seq_id = rf__iceberg_meta_field_id(m, "seq");
    int32_t id_id = rf__iceberg_meta_field_id(m, "id");
    rf_iceberg_manifest_file_t *mfs = NULL;
    rf_iceberg_live_file_t *out = NULL;
    size_t nmfs = 0, cnt = 0, cap = 0;
    const char *ml;
    rf_rc rc = RF_OK;

    *files = NULL;
    *n = 0;
    if (!snap)
        return snapshot_id < 0
                   ? RF_OK
                   : rf_err_set(err, RF_ENOTFOUND, "iceberg: no snapshot %" PRId64, snapshot_id);
    ml = json_string_value(json_object_get(snap, "manifest-list"));
    if (!ml)
        return rf_err_set(err, RF_ECORRUPT, "iceberg: snapshot without a manifest-list");
    if ((rc = rf__iceberg_manifest_list_read(ml, &mfs, &nmfs, err)))
        return rc;
    for (size_t i = 0; i < nmfs && !rc; i++) {
        json_t *entries = NULL;
        size_t k;
        json_t *e;
        if (mfs[i].content != 0)
            continue; /* delete manifests: this table has none */
        if ((rc = rf__iceberg_manifest_read(mfs[i].path, NULL, &entries, err)))
            break;
        json_array_foreach(entries, k, e)
        {
            const json_t *df = json_object_get(e, "data_file");
            const json_t *st = json_object_get(e, "status");
            const char *path = json_string_value(json_object_get(df, "file_path"));
            const json_t *part = json_object_get(df, "partition");
            const json_t *lo, *hi;
            rf_iceberg_live_file_t *f;
            if (!json_is_integer(st) || !path) {
                rc = rf_err_set(err, RF_ECORRUPT, "iceberg manifest %s: entry %zu is incomplete",
                                mfs[i].path, k);
                break;
            }
            if (json_integer_value(st) == 2)
                continue; /* DELETED: not live in this snapshot */
            if (json_integer_value(json_object_get(df, "content")) != 0)
                continue;
            if (cnt == cap) {
                cap = cap ? cap * 2 : 64;
                out = rf_xrealloc(out, cap * sizeof(*out));
            }
            f = &out[cnt++];
            memset(f, 0, sizeof(*f));
            f->path = rf_xstrdup(path);
            f->manifest = rf_xstrdup(mfs[i].path);
            f->records = (int64_t)json_integer_value(json_object_get(df, "record_count"));
            f->size = (int64_t)json_integer_value(json_object_get(df, "file_size_in_bytes"));
            f->snapshot_id = json_is_integer(json_object_get(e, "snapshot_id"))
                                 ? (int64_t)json_integer_value(json_object_get(e, "snapshot_id"))
                                 : mfs[i].added_snapshot_id;
            /* Null numbers are inherited from the manifest (ADDED entries only). */
            f->data_seq = json_is_integer(json_object_get(e, "sequence_number"))
                              ? (int64_t)json_integer_value(json_object_get(e, "sequence_number"))
                              : mfs[i].seq;
            f->file_seq =
                json_is_integer(json_object_get(e, "file_sequence_number"))
                    ? (int64_t)json_integer_value(json_object_get(e, "file_sequence_number"))
                    : mfs[i].seq;
            if (pname && json_is_object(part)) {
                const json_t *pv = json_object_get(part, pname);
                if (json_is_integer(pv)) {
                    f->has_day = 1;
                    f->day = (int32_t)json_integer_value(pv);
                }
            }
            lo = bound_of(json_object_get(df, "lower_bounds"), seq_id);
            hi = bound_of(json_object_get(df, "upper_bounds"), seq_id);
            if (seq_id > 0 && json_is_string(lo) && json_is_string(hi) &&
                json_string_length(lo) == 8 && json_string_length(hi) == 8) {
                f->has_seq_bounds = 1;
                f->seq_lo = le64_of(lo);
                f->seq_hi = le64_of(hi);
            }
            lo = bound_of(json_object_get(df, "lower_bounds"), id_id);
            hi = bound_of(json_object_get(df, "upper_bounds"), id_id);
            if (id_id > 0 && json_is_string(lo) && json_is_string(hi)) {
                f->has_id_bounds = 1;
                f->id_lo_len = json_string_length(lo);
                f->id_hi_len = json_string_length(hi);
                f->id_lo = rf_xstrndup(json_string_value(lo), f->id_lo_len);
                f->id_hi = rf_xstrndup(json_string_value(hi), f->id_hi_len);
            }
            /* The entry with the numbers made explicit, for rewriting it elsewhere. */
            f->entry = json_deep_copy(e);
            json_object_set_new(f->entry, "sequence_number", json_integer(f->data_seq));
            json_object_set_new(f->entry, "file_sequence_number", json_integer(f->file_seq));
            json_object_set_new(f->entry, "snapshot_id", json_integer(f->snapshot_id));
        }
        json_decref(entries);
    }
    rf__iceberg_manifest_files_free(mfs, nmfs);
    if (rc) {
        rf__iceberg_live_files_free(out, cnt);
        return rc;
    }
    if (cnt > 1)
        qsort(out, cnt, sizeof(*out), file_cmp);
    *files = out;
    *n = cnt;
    return RF_OK;
}

/* ==== Small helpers ==== */

void rf__iceberg_civil_from_days(int32_t days, int *y, int *m, int *d)
{
    /* Howard Hinnant's days-to-civil, proleptic Gregorian. */
    int64_t z = (int64_t)days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t dd = doy - (153 * mp + 2) / 5 + 1;
    int64_t mm = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (mm <= 2));
    *m = (int)mm;
    *d = (int)dd;
}

void rf__iceberg_fmt_time(int64_t ms, char *buf, size_t n)
{
    int64_t days = ms / 86400000, rem = ms % 86400000;
    int y, mo, d;
    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    rf__iceberg_civil_from_days((int32_t)days, &y, &mo, &d);
    snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, (int)(rem / 3600000),
             (int)(rem / 60000 % 60), (int)(rem / 1000 % 60), (int)(rem % 1000));
}

void rf__iceberg_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}
