/* test_iceberg_reembed.c - model generations in the Iceberg history, over a real store
 * (rf_index_open/apply, a generation built, switched to and rolled back): every vector's
 * generation in embedding_generation (null for deletes), re-embedding rows in snapshots
 * of their own marked ragfeed.cause=reembed and ragfeed.embedding-generation, a table of
 * an older release evolved to a new schema whose older files read as null, and the
 * result accepted by ../shared/tools/iceberg-verify (node; its absence fails the test).
 * Covers INVARIANT(history-exported-once) across generation switches.
 *
 * The exporter's own file is included so that a table of an older release can be filled
 * by the export cycle without the schema evolution that the exporter's start does.
 */
#include "../../../iceberg/iceberg_export.c"

#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "rf_test.h"

#define DIM1 8
#define DIM2 4

/* ==== Store and configuration ==== */

typedef struct fixture {
    char *dir;
    char *state;
    rf_conf_t *cfg;
    rf_index_t *ix;
    int64_t offset; /* next Kafka offset of partition 0 */
} fixture_t;

static fixture_t fx;

static void conf_set(const char *key, const char *value)
{
    rf_err_t err = {0};
    int rc = rf_conf_set(fx.cfg, key, value, RF_CONF_ORIGIN_CLI, "test", &err);
    if (rc)
        fprintf(stderr, "%s\n", err.msg);
    RF_REQUIRE(rc == 0);
}

static void fx_init(const char *tag, const char *commit_rows)
{
    rf_err_t err = {0};
    rf_index_opts_t o = {0};
    rf_rc rc;
    memset(&fx, 0, sizeof fx);
    fx.dir = rf_test_tmpdir(tag);
    fx.state = rf_xasprintf("%s/state", fx.dir);
    o.dir = fx.state;
    o.dim = DIM1;
    o.gen_desc = "{\"model\":\"m1\"}";
    rc = rf_index_open(&o, &fx.ix, &err);
    if (rc)
        fprintf(stderr, "rf_index_open: %s\n", err.msg);
    RF_REQUIRE(rc == RF_OK);
    fx.cfg = rf_conf_new();
    conf_set("state.dir", fx.state);
    conf_set("log.level", "warn");
    conf_set("iceberg.commit.rows", commit_rows);
    conf_set("iceberg.commit.interval.ms", "600000");
    RF_REQUIRE(rf_conf_finalize(fx.cfg, 0, &err) == 0);
    rf_log_setup(RF_LOG_WARN, RF_LOG_FORMAT_TEXT, NULL, NULL);
}

static void fx_fini(void)
{
    rf_index_close(fx.ix);
    rf_conf_free(fx.cfg);
    rf_test_rmtree(fx.dir);
    free(fx.dir);
    free(fx.state);
    memset(&fx, 0, sizeof fx);
}

/* A unit vector determined by (n, gen, dim). */
static void vec_for(int n, int64_t gen, int dim, float *out)
{
    double norm = 0;
    for (int i = 0; i < dim; i++) {
        out[i] = (float)(1 + ((n * 7 + (int)gen * 13 + i * 3) % 11));
        norm += (double)out[i] * out[i];
    }
    for (int i = 0; i < dim; i++)
        out[i] = (float)(out[i] / sqrt(norm));
}

/* One event: an upsert of record n with a vector of the active generation (model `model`),
 * or a delete; its own batch with its Kafka offset. */
static void event(char op, int n, const char *model)
{
    char id[16], text[48];
    float vec[DIM1];
    int dim = 0;
    int64_t gen = rf_index_gen_active(fx.ix, &dim);
    rf_index_op_t o = {0};
    rf_index_offset_t off = {"t", 0, 0};
    rf_index_batch_t b = {0};
    rf_err_t err = {0};
    rf_rc rc;
    snprintf(id, sizeof id, "r:%d", n);
    snprintf(text, sizeof text, "text of %d at %lld", n, (long long)fx.offset);
    o.kind = op == 'd' ? RF_INDEX_DELETE : RF_INDEX_UPSERT;
    o.id = id;
    o.source = "r";
    o.topic = "t";
    o.partition = 0;
    o.offset = fx.offset++;
    if (op != 'd') {
        vec_for(n, gen, dim, vec);
        o.text = text;
        o.vec = vec;
        o.model = model;
    }
    off.next_offset = fx.offset;
    b.ops = &o;
    b.op_cnt = 1;
    b.offsets = &off;
    b.offset_cnt = 1;
    rc = rf_index_apply(fx.ix, &b, NULL, &err);
    if (rc)
        fprintf(stderr, "apply: %s\n", err.msg);
    RF_REQUIRE(rc == RF_OK);
}

/* Creates generation 2 (dim DIM2, model m2) and embeds every pending record into it. */
static int64_t build_gen(void)
{
    int64_t gen = 0, cursor = 0;
    rf_err_t err = {0};
    RF_REQUIRE(rf_index_gen_create(fx.ix, DIM2, "{\"model\":\"m2\"}", &gen, &err) == RF_OK);
    for (;;) {
        rf_index_gen_item_t *it = NULL;
        size_t n = 0;
        rf_index_genvec_t gv[4];
        float vecs[4][DIM2];
        rf_index_batch_t b = {0};
        RF_REQUIRE(rf_index_gen_pending(fx.ix, gen, cursor, 4, &it, &n, &err) == RF_OK);
        if (!n) {
            rf_index_gen_items_free(it, n);
            return gen;
        }
        for (size_t i = 0; i < n; i++) {
            vec_for((int)strtol(it[i].id + 2, NULL, 10), gen, DIM2, vecs[i]);
            gv[i].vid = it[i].vid;
            gv[i].rec_seq = it[i].rec_seq;
            gv[i].vec = vecs[i];
            gv[i].content_hash = NULL;
            cursor = it[i].vid;
        }
        b.gen = gen;
        b.genvecs = gv;
        b.genvec_cnt = n;
        b.gen_cursor = cursor;
        RF_REQUIRE(rf_index_apply(fx.ix, &b, NULL, &err) == RF_OK);
        rf_index_gen_items_free(it, n);
    }
}

static void activate(int64_t gen)
{
    rf_err_t err = {0};
    int64_t missing = -1;
    rf_rc rc = rf_index_gen_activate(fx.ix, gen, &missing, &err);
    if (rc)
        fprintf(stderr, "activate %lld: %s (missing %lld)\n", (long long)gen, err.msg,
                (long long)missing);
    RF_REQUIRE(rc == RF_OK);
}

/* ==== What the changelog says ==== */

typedef struct want_row {
    int present;
    int reembed;
    int is_delete;
    int64_t gen;
    char id[16];
} want_row_t;

typedef struct want {
    want_row_t *rows; /* by seq */
    int64_t max_seq;
} want_t;

static rf_rc want_row(void *opaque, const rf_index_change_t *chg, rf_err_t *err)
{
    want_t *w = opaque;
    (void)err;
    if (chg->seq > w->max_seq)
        return RF_ETOOBIG;
    w->rows[chg->seq].present = 1;
    w->rows[chg->seq].reembed = chg->reembed;
    w->rows[chg->seq].is_delete = chg->is_delete;
    w->rows[chg->seq].gen = chg->gen;
    snprintf(w->rows[chg->seq].id, sizeof w->rows[chg->seq].id, "%s", chg->id);
    return RF_OK;
}

static void want_load(want_t *w)
{
    rf_index_changelog_t *cl = NULL;
    rf_err_t err = {0};
    w->max_seq = rf_index_seq(fx.ix);
    w->rows = rf_xcalloc((size_t)w->max_seq + 1, sizeof(*w->rows));
    RF_REQUIRE(rf_index_changelog_open(fx.state, &cl, &err) == RF_OK);
    RF_REQUIRE(rf_index_changelog_scan(cl, 0, 100000, want_row, w, NULL, &err) == RF_OK);
    rf_index_changelog_close(cl);
    for (int64_t s = 1; s <= w->max_seq; s++)
        RF_REQUIRE(w->rows[s].present);
}

/* ==== Reading the table back ==== */

static rf_rc collect(void *opaque, const char *line, size_t len)
{
    json_t *j = json_loadb(line, len, 0, NULL);
    if (!j)
        return RF_EPARSE;
    json_array_append_new((json_t *)opaque, j);
    return RF_OK;
}

/* `ragfeed history snapshots` as parsed lines; caller decrefs. */
static json_t *snapshots(void)
{
    rf_iceberg_history_t *h = NULL;
    rf_err_t err = {0};
    json_t *arr = json_array();
    RF_REQUIRE(rf_iceberg_history_open(fx.cfg, &h, &err) == RF_OK);
    RF_REQUIRE(rf_iceberg_history_snapshots(h, collect, arr, &err) == RF_OK);
    rf_iceberg_history_close(h);
    return arr;
}

/* Every row of a snapshot (-1: the current one); caller decrefs. */
static json_t *scan_rows(int64_t snapshot_id)
{
    rf_iceberg_history_t *h = NULL;
    rf_err_t err = {0};
    json_t *arr = json_array();
    rf_rc rc;
    RF_REQUIRE(rf_iceberg_history_open(fx.cfg, &h, &err) == RF_OK);
    rc = rf_iceberg_history_scan(h, snapshot_id, -1, 0, collect, arr, &err);
    if (rc)
        fprintf(stderr, "scan: %s\n", err.msg);
    RF_CHECK(rc == RF_OK);
    rf_iceberg_history_close(h);
    return arr;
}

static int64_t jint(const json_t *o, const char *key)
{
    return (int64_t)json_integer_value(json_object_get(o, key));
}

/* What one snapshot is expected to be: the seqs it adds and its cause. */
typedef struct want_snap {
    int64_t lo, hi;
    int reembed;
    int64_t gen; /* reembed snapshots */
} want_snap_t;

/* Checks the snapshot list against want[0..n) and each snapshot's added rows against the
 * changelog: all rows of one cause, each row's embedding_generation its vector's
 * generation (null for deletes and, when old_hi > 0, for rows up to old_hi, which files
 * of the older schema hold), the reembed rows exactly the changelog's. */
static void check_snapshots(const want_t *w, const want_snap_t *ws, size_t n, int64_t old_hi)
{
    json_t *snaps = snapshots(), *cur = scan_rows(-1), *r;
    const char *prev_offsets = NULL;
    size_t i;
    int64_t *snap_of = rf_xcalloc((size_t)w->max_seq + 1, sizeof(*snap_of));

    RF_REQUIRE(json_array_size(snaps) == n);
    for (i = 0; i < n; i++) {
        const json_t *s = json_array_get(snaps, i);
        const char *cause = json_string_value(json_object_get(s, "cause"));
        char *offs = json_dumps(json_object_get(s, "offsets"), JSON_COMPACT | JSON_SORT_KEYS);
        RF_CHECK_INT(jint(s, "seq"), ws[i].hi);
        RF_CHECK_INT(jint(s, "added_records"), ws[i].hi - ws[i].lo + 1);
        RF_CHECK_STR(cause ? cause : "(null)", ws[i].reembed ? "reembed" : "events");
        if (ws[i].reembed) {
            RF_CHECK_INT(jint(s, "embedding_generation"), ws[i].gen);
            /* A switch consumes no Kafka message: the offsets stay where they were. */
            RF_CHECK_STR(offs, prev_offsets ? prev_offsets : "(none)");
        } else {
            RF_CHECK(json_is_null(json_object_get(s, "embedding_generation")));
        }
        for (int64_t q = ws[i].lo; q <= ws[i].hi; q++) {
            /* One cause per snapshot, as the changelog has it. */
            RF_CHECK_INT(w->rows[q].reembed, ws[i].reembed);
            if (ws[i].reembed)
                RF_CHECK_INT(w->rows[q].gen, ws[i].gen);
            snap_of[q] = (int64_t)i + 1;
        }
        free((char *)prev_offsets);
        prev_offsets = offs;
    }
    free((char *)prev_offsets);

    /* The rows each snapshot added: those of its own snapshot minus its parent's. */
    for (i = 0; i < n; i++) {
        int64_t sid = jint(json_array_get(snaps, i), "snapshot_id");
        json_t *rows = scan_rows(sid);
        int64_t prev_hi = i ? ws[i - 1].hi : 0, added = 0;
        size_t k;
        json_array_foreach(rows, k, r)
        {
            int64_t q = jint(r, "seq");
            if (q <= prev_hi)
                continue;
            added++;
            RF_REQUIRE(q >= 1 && q <= w->max_seq);
            RF_CHECK_INT(snap_of[q], (int64_t)i + 1);
            /* A snapshot of the older schema has no such column at all. */
            if (q <= old_hi)
                RF_CHECK(json_object_get(r, "embedding_generation") == NULL);
        }
        RF_CHECK_INT(added, ws[i].hi - ws[i].lo + 1);
        json_decref(rows);
    }

    /* The current snapshot, read with the current schema. */
    RF_CHECK_INT(json_array_size(cur), w->max_seq);
    json_array_foreach(cur, i, r)
    {
        int64_t q = jint(r, "seq");
        const json_t *g = json_object_get(r, "embedding_generation");
        const want_row_t *wr;
        RF_REQUIRE(q >= 1 && q <= w->max_seq);
        wr = &w->rows[q];
        RF_CHECK_STR(json_string_value(json_object_get(r, "id")), wr->id);
        if (wr->is_delete || q <= old_hi) {
            if (!json_is_null(g))
                fprintf(stderr, "seq %lld: embedding_generation should be null\n", (long long)q);
            RF_CHECK(json_is_null(g));
        } else {
            RF_CHECK(json_is_integer(g));
            RF_CHECK_INT(json_integer_value(g), wr->gen);
            RF_CHECK_INT(jint(r, "dim"), wr->gen == 2 ? DIM2 : DIM1);
        }
        if (wr->reembed) {
            RF_CHECK_STR(json_string_value(json_object_get(r, "op")), "upsert");
            RF_CHECK_STR(json_string_value(json_object_get(r, "model")),
                         wr->gen == 2 ? "m2" : "m1");
        }
    }
    free(snap_of);
    json_decref(cur);
    json_decref(snaps);
}

/* ==== The verifier ==== */

/* Runs cmd with stderr to errfile; returns stdout (caller frees) and *status (exit). */
static char *run(const char *cmd, const char *errfile, int *status)
{
    char *full = rf_xasprintf("%s 2>'%s'", cmd, errfile);
    FILE *p = popen(full, "r");
    rf_buf_t out;
    char chunk[65536];
    size_t n;
    rf_buf_init(&out, 0);
    free(full);
    if (!p) {
        *status = -1;
        return rf_buf_take(&out, NULL);
    }
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        rf_buf_append(&out, chunk, n);
    *status = pclose(p);
    if (*status != -1 && WIFEXITED(*status))
        *status = WEXITSTATUS(*status);
    if (*status != 0) {
        char *e = rf_test_read_file(errfile, NULL);
        fprintf(stderr, "command failed (%d): %s\n%s\n", *status, cmd, e ? e : "");
        free(e);
    }
    return rf_buf_take(&out, NULL);
}

/* Fails the test with instructions when node or the verifier's modules are missing. */
static void require_node(void)
{
    char *errf = rf_xasprintf("%s/node.err", fx.dir);
    char *mods = rf_test_shared_path("tools/iceberg-verify/node_modules/avsc/package.json");
    struct stat st;
    int status = 0;
    free(run("node --version", errf, &status));
    if (status != 0)
        fprintf(stderr, "node >= 20.11 is required to read the table independently\n");
    RF_REQUIRE(status == 0);
    if (!mods || stat(mods, &st) != 0)
        fprintf(stderr, "missing %s: run `npm ci` in ../shared/tools/iceberg-verify\n",
                mods ? mods : "(RF_SHARED_DIR unset)");
    RF_REQUIRE(mods && stat(mods, &st) == 0);
    free(mods);
    free(errf);
}

/* The verifier over the whole table: no error, every snapshot read by DuckDB and icebird
 * with the rows expected, and icebird's rows of the current snapshot (which reads files
 * of every schema by field id) with each vector's generation, or null. */
static void verify(const want_t *w, const want_snap_t *ws, size_t n, int64_t old_hi)
{
    char *verifier = rf_test_shared_path("tools/iceberg-verify/verify.mjs");
    char *db = rf_xasprintf("%s/catalog.db", fx.state);
    char *errf = rf_xasprintf("%s/verify.err", fx.dir);
    char *cmd = rf_xasprintf("node '%s' '%s' ragfeed.records_history --icebird-all --compact "
                             "--rows 100000",
                             verifier, db);
    int status = 0;
    char *out = run(cmd, errf, &status), *line, *next;
    json_t *res = NULL, *e;
    int64_t rows = 0, gen2 = 0;
    size_t i;

    RF_CHECK_INT(status, 0);
    /* Row lines first, the summary last. */
    for (line = out; line && *line; line = next) {
        json_t *j;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (!*line)
            continue;
        j = json_loads(line, 0, NULL);
        RF_REQUIRE(j);
        if (json_object_get(j, "ok")) {
            json_decref(res);
            res = j;
            fprintf(stderr, "verifier summary: %.2000s\n", line);
            continue;
        }
        {
            const json_t *sq = json_object_get(j, "seq"), *g;
            int64_t q = json_is_integer(sq)  ? (int64_t)json_integer_value(sq)
                        : json_is_string(sq) ? strtoll(json_string_value(sq), NULL, 10)
                                             : -1;
            RF_REQUIRE(q >= 1 && q <= w->max_seq);
            g = json_object_get(j, "embedding_generation");
            if (w->rows[q].is_delete || q <= old_hi) {
                RF_CHECK(g == NULL || json_is_null(g));
            } else {
                int64_t gv = json_is_integer(g)  ? (int64_t)json_integer_value(g)
                             : json_is_string(g) ? strtoll(json_string_value(g), NULL, 10)
                                                 : -1;
                if (gv != w->rows[q].gen)
                    fprintf(stderr, "icebird row %s\n", line);
                RF_CHECK_INT(gv, w->rows[q].gen);
                gen2 += gv == 2;
            }
            rows++;
        }
        json_decref(j);
    }
    RF_REQUIRE(res);
    json_array_foreach(json_object_get(res, "errors"), i, e)
    {
        char *s = json_dumps(e, JSON_COMPACT);
        fprintf(stderr, "verifier error: %s\n", s);
        free(s);
    }
    RF_CHECK(json_is_true(json_object_get(res, "ok")));
    RF_CHECK_INT(json_array_size(json_object_get(res, "errors")), 0);
    RF_CHECK_INT(rows, w->max_seq);
    RF_CHECK(gen2 > 0);
    RF_REQUIRE(json_array_size(json_object_get(res, "snapshots")) == n);
    json_array_foreach(json_object_get(res, "snapshots"), i, e)
    {
        const json_t *sum = json_object_get(e, "summary");
        const char *cause = json_string_value(json_object_get(sum, "ragfeed.cause"));
        RF_CHECK_INT(json_integer_value(json_object_get(e, "rows_duckdb")), ws[i].hi);
        RF_CHECK_INT(json_integer_value(json_object_get(e, "rows_icebird")), ws[i].hi);
        RF_CHECK_STR(cause ? cause : "(null)", ws[i].reembed ? "reembed" : "events");
    }
    json_decref(res);
    free(out);
    free(cmd);
    free(errf);
    free(db);
    free(verifier);
}

/* ==== A table of an older release ==== */

/* The table as a release before model generations created it: the base columns up to
 * source_position, in that order. */
static void create_old_table(void)
{
    static const rf_iceberg_field_t fields[] = {
        {0, "seq", 1, "long", 0, NULL, 0, NULL},
        {0, "op", 1, "string", 0, NULL, 0, NULL},
        {0, "id", 1, "string", 0, NULL, 0, NULL},
        {0, "source", 0, "string", 0, NULL, 0, NULL},
        {0, "tenant", 0, "string", 0, NULL, 0, NULL},
        {0, "text", 0, "string", 0, NULL, 0, NULL},
        {0, "metadata", 0, "string", 0, NULL, 0, NULL},
        {0, "label", 0, "string", 0, NULL, 0, NULL},
        {0, "label_score", 0, "double", 0, NULL, 0, NULL},
        {0, "model", 0, "string", 0, NULL, 0, NULL},
        {0, "dim", 0, "int", 0, NULL, 0, NULL},
        {0, "content_hash", 0, "string", 0, NULL, 0, NULL},
        {0, "vector", 0, "list", 0, "float", 1, NULL},
        {0, "event_time", 0, "timestamptz", 0, NULL, 0, NULL},
        {0, "ingest_time", 1, "timestamptz", 0, NULL, 0, NULL},
        {0, "kafka_topic", 0, "string", 0, NULL, 0, NULL},
        {0, "kafka_partition", 0, "int", 0, NULL, 0, NULL},
        {0, "kafka_offset", 0, "long", 0, NULL, 0, NULL},
        {0, "source_position", 0, "string", 0, NULL, 0, NULL},
    };
    static const rf_iceberg_part_field_t day[] = {
        {"ingest_time", "day", "ingest_time_day", 1000},
    };
    static const rf_iceberg_kv_t props[] = {{"write.format.default", "parquet"},
                                            {"write.parquet.compression-codec", "zstd"}};
    rf_iceberg_hist_conf_t hc;
    rf_iceberg_catalog_t *cat = NULL;
    rf_iceberg_table_t *t = NULL;
    rf_iceberg_meta_t *m = NULL;
    rf_err_t err = {0};
    RF_REQUIRE(rf__iceberg_hist_conf_init(fx.cfg, &hc, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_meta_create(hc.location, fields, sizeof fields / sizeof fields[0], day,
                                       1, props, 2, &m, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_catalog_open(hc.catalog_path, hc.catalog_name, &cat, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_table_create(cat, hc.ns, hc.name, m, &t, &err) == RF_OK);
    RF_CHECK_INT(rf__iceberg_meta_field_id(t->meta, "embedding_generation"), 0);
    rf__iceberg_table_free(t);
    rf__iceberg_catalog_close(cat);
    rf__iceberg_hist_conf_fini(&hc);
}

/* One export cycle as an older release ran it: with the table's schema as it is. */
static int64_t export_as_old_release(void)
{
    struct rf_iceberg_exporter *exp = rf_xcalloc(1, sizeof(*exp));
    rf_err_t err = {0};
    int64_t added = 0;
    rf_rc rc;
    exp->cfg = fx.cfg;
    exp->snapshot_id = -1;
    pthread_mutex_init(&exp->mu, NULL);
    pthread_cond_init(&exp->cond, NULL);
    pthread_cond_init(&exp->done, NULL);
    RF_REQUIRE(rf__iceberg_hist_conf_init(fx.cfg, &exp->hc, &err) == RF_OK);
    RF_REQUIRE(rf_index_changelog_open(fx.state, &exp->cl, &err) == RF_OK);
    RF_REQUIRE(rf__iceberg_hist_open(fx.cfg, &exp->hc, 0, &exp->cat, &exp->t, &err) == RF_OK);
    rc = export_cycle(exp, &added, &err);
    if (rc)
        fprintf(stderr, "export: %s\n", err.msg);
    RF_REQUIRE(rc == RF_OK);
    exporter_free(exp);
    return added;
}

/* The exporter's exported_seq once it reaches want, or what it is at the deadline. */
static int64_t exported_seq_within(rf_iceberg_exporter_t *exp, int64_t want, int64_t timeout_ms)
{
    int64_t deadline = rf_mono_ms() + timeout_ms, seq = -1;
    for (;;) {
        char *st = rf_iceberg_exporter_status_json(exp);
        json_t *o = json_loads(st, 0, NULL);
        seq = jint(o, "exported_seq");
        json_decref(o);
        free(st);
        if (seq >= want || rf_mono_ms() >= deadline)
            return seq;
        {
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
}

/* ==== Tests ==== */

/* An older table evolved; events, a re-embedding and events again, exported at once. */
static void test_reembed_snapshots(void)
{
    static const want_snap_t ws[] = {
        {1, 9, 0, 0},   /* events, written with the older schema */
        {10, 12, 0, 0}, /* events of generation 1 */
        {13, 19, 1, 2}, /* the switch to generation 2: the 7 live records */
        {20, 21, 0, 0}, /* events of generation 2 */
    };
    want_t w = {0};
    int64_t rows = 0, commits = 0, gen;
    rf_err_t err = {0};
    rf_rc rc;

    fx_init("ice-reembed", "100000");
    require_node();
    for (int i = 0; i < 8; i++)
        event('u', i, "m1");
    event('d', 5, NULL);
    create_old_table();
    RF_CHECK_INT(export_as_old_release(), 9);

    event('u', 8, "m1");
    event('u', 0, "m1");
    event('d', 6, NULL);
    gen = build_gen();
    RF_CHECK_INT(gen, 2);
    activate(gen);
    RF_CHECK_INT(rf_index_record_count(fx.ix), 7);
    event('u', 9, "m2");
    event('d', 1, NULL);
    RF_REQUIRE(rf_index_seq(fx.ix) == 21);

    /* The exporter's start evolves the schema; one run exports the rest as three
     * snapshots, cut where the cause changes. */
    rc = rf_iceberg_export_run(fx.cfg, &rows, &commits, &err);
    if (rc)
        fprintf(stderr, "export: %s\n", err.msg);
    RF_REQUIRE(rc == RF_OK);
    RF_CHECK_INT(rows, 12);
    RF_CHECK_INT(commits, 3);

    /* A new schema with a new field id, made current; the old one stays for old files. */
    {
        rf_iceberg_history_t *h = NULL;
        const rf_iceberg_meta_t *m;
        const json_t *root, *schemas, *f;
        size_t i;
        int found = 0;
        RF_REQUIRE(rf_iceberg_history_open(fx.cfg, &h, &err) == RF_OK);
        m = rf__iceberg_history_table(h)->meta;
        root = rf__iceberg_meta_json(m);
        schemas = json_object_get(root, "schemas");
        RF_CHECK_INT(json_array_size(schemas), 2);
        RF_CHECK_INT(jint(root, "current-schema-id"), 1);
        RF_CHECK_INT(rf__iceberg_meta_field_id(m, "embedding_generation"), 21);
        RF_CHECK_INT(jint(root, "last-column-id"), 21);
        json_array_foreach(json_object_get(rf__iceberg_meta_schema(m), "fields"), i, f)
        {
            if (strcmp(json_string_value(json_object_get(f, "name")), "embedding_generation"))
                continue;
            found = 1;
            RF_CHECK_STR(json_string_value(json_object_get(f, "type")), "long");
            RF_CHECK(json_is_false(json_object_get(f, "required")));
        }
        RF_CHECK(found);
        /* The first snapshot was written with schema 0, the later ones with schema 1. */
        RF_CHECK_INT(jint(json_array_get(json_object_get(root, "snapshots"), 0), "schema-id"), 0);
        RF_CHECK_INT(jint(json_array_get(json_object_get(root, "snapshots"), 3), "schema-id"), 1);
        rf_iceberg_history_close(h);
    }

    want_load(&w);
    check_snapshots(&w, ws, 4, 9);
    verify(&w, ws, 4, 9);
    /* Nothing left to export: a second run adds no snapshot. */
    RF_REQUIRE(rf_iceberg_export_run(fx.cfg, &rows, &commits, &err) == RF_OK);
    RF_CHECK_INT(commits, 0);
    free(w.rows);
    fx_fini();
}

/* A new table; commits of at most 3 rows, a switch to generation 2 and at once back to 1
 * (two re-embeddings with nothing between), exported by the exporter's thread, which
 * goes on at once after a cut whatever its interval (10 minutes here). */
static void test_reembed_split_and_rollback(void)
{
    static const want_snap_t ws[] = {
        {1, 3, 0, 0},   {4, 5, 0, 0},   /* 5 events */
        {6, 8, 1, 2},   {9, 10, 1, 2},  /* the switch to 2: 5 live records */
        {11, 13, 1, 1}, {14, 15, 1, 1}, /* the rollback to 1 */
        {16, 17, 0, 0},                 /* an upsert and a delete */
    };
    want_t w = {0};
    rf_iceberg_exporter_t *exp = NULL;
    int64_t gen;
    rf_err_t err = {0};
    rf_rc rc;

    fx_init("ice-rollback", "3");
    require_node();
    for (int i = 0; i < 5; i++)
        event('u', i, "m1");
    gen = build_gen();
    activate(gen);
    activate(1);
    event('u', 5, "m1");
    event('d', 0, NULL);
    RF_REQUIRE(rf_index_seq(fx.ix) == 17);

    /* A flush up to seq 3 only; the commit rows then keep the exporter going until 2
     * rows are left, after a cut: those must follow at once, not an interval later. */
    RF_REQUIRE(rf_iceberg_exporter_start(fx.cfg, &exp, &err) == RF_OK);
    rc = rf_iceberg_exporter_flush(exp, 3, 30000, &err);
    if (rc)
        fprintf(stderr, "flush: %s\n", err.msg);
    RF_CHECK_INT(rc, RF_OK);
    RF_CHECK_INT(exported_seq_within(exp, 17, 30000), 17);
    rf_iceberg_exporter_stop(exp);

    {
        rf_iceberg_history_t *h = NULL;
        const json_t *root;
        RF_REQUIRE(rf_iceberg_history_open(fx.cfg, &h, &err) == RF_OK);
        root = rf__iceberg_meta_json(rf__iceberg_history_table(h)->meta);
        /* Created with the column: no evolution was needed. */
        RF_CHECK_INT(json_array_size(json_object_get(root, "schemas")), 1);
        RF_CHECK(rf__iceberg_meta_field_id(rf__iceberg_history_table(h)->meta,
                                           "embedding_generation") > 0);
        rf_iceberg_history_close(h);
    }
    want_load(&w);
    check_snapshots(&w, ws, sizeof ws / sizeof ws[0], 0);
    verify(&w, ws, sizeof ws / sizeof ws[0], 0);
    free(w.rows);
    fx_fini();
}

RF_TEST_MAIN(test_reembed_snapshots, test_reembed_split_and_rollback)
