/* test_index_store.c - the store and the vector index through the public API: round
 * trips, updates that replace, deletes, truncates, offsets in the batch's transaction,
 * the dim check, the state-dir lock and input validation.  Covers
 * INVARIANT(offsets-with-state), INVARIANT(one-record-per-key), INVARIANT(index-is-a-view).
 */
#include "index/index.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "index/index_int.h"
#include "index_testlib.h"
#include "rf_test.h"

#define DIM 8

static void axis(int i, float *v)
{
    memset(v, 0, DIM * sizeof(float));
    v[i] = 1.0f;
}

static void test_roundtrip(void)
{
    char *dir = rf_test_tmpdir("ixrt");
    rf_index_t *ix = tl_open(dir, DIM, 0);
    float va[DIM], vb[DIM], vc[DIM];
    uint8_t hash[32];
    rf_index_op_t ops[3];
    rf_index_offset_t off = {"t", 0, 3};
    rf_index_results_t res;
    int64_t seq = -1;
    char *js = NULL, *st = NULL;
    json_t *o;
    axis(0, va);
    axis(1, vb);
    axis(2, vc);
    memset(hash, 0xab, sizeof(hash));
    ops[0] = tl_upsert("s:a", "s", "alpha", va);
    ops[0].metadata_json = "{\"color\":\"red\"}";
    ops[0].content_hash = hash;
    ops[0].label = "fruit";
    ops[0].label_score = 0.5;
    ops[0].tenant = "acme";
    ops[0].event_time_ms = 1700000000000;
    ops[0].source_pos = "lsn:42";
    ops[0].partition = 0;
    ops[0].offset = 0;
    ops[1] = tl_upsert("s:b", "s", "beta", vb);
    ops[1].offset = 1;
    ops[2] = tl_upsert("s:c", "s", "gamma", vc);
    ops[2].offset = 2;
    RF_REQUIRE(tl_apply(ix, ops, 3, &off, 1, &seq) == RF_OK);
    RF_CHECK_INT(seq, 3);
    RF_CHECK_INT(rf_index_seq(ix), 3);
    RF_CHECK_INT(rf_index_record_count(ix), 3);
    RF_CHECK_INT(rf_index_offset_get(ix, "t", 0), 3);
    RF_CHECK_INT(rf_index_offset_get(ix, "t", 1), -1);
    RF_CHECK_INT(rf_index_offset_get(ix, "other", 0), -1);

    RF_REQUIRE(rf_index_search(ix, vb, 2, &res, NULL) == RF_OK);
    RF_REQUIRE(res.cnt == 2);
    RF_CHECK_STR(res.hits[0].id, "s:b");
    RF_CHECK_STR(res.hits[0].text, "beta");
    RF_CHECK(fabsf(res.hits[0].score - 1.0f) < 1e-6f);
    RF_CHECK(fabsf(res.hits[1].score) < 1e-6f);
    RF_CHECK_INT(res.seq, 3);
    RF_CHECK_INT(res.hits[0].seq, 2);
    RF_CHECK_INT(res.hits[0].offset, 1);
    RF_CHECK_STR(res.hits[0].topic, "t");
    rf_index_results_fini(&res);

    RF_REQUIRE(rf_index_search(ix, va, 1, &res, NULL) == RF_OK);
    RF_REQUIRE(res.cnt == 1);
    RF_CHECK_STR(res.hits[0].id, "s:a");
    RF_CHECK_STR(res.hits[0].metadata_json, "{\"color\":\"red\"}");
    RF_CHECK_STR(res.hits[0].label, "fruit");
    RF_CHECK_STR(res.hits[0].tenant, "acme");
    RF_CHECK_INT(res.hits[0].event_time_ms, 1700000000000);
    rf_index_results_fini(&res);

    RF_REQUIRE(rf_index_record_get(ix, "s:a", &js, NULL) == RF_OK);
    o = json_loads(js, 0, NULL);
    RF_REQUIRE(o);
    RF_CHECK_STR(json_string_value(json_object_get(o, "id")), "s:a");
    RF_CHECK_STR(json_string_value(json_object_get(o, "text")), "alpha");
    RF_CHECK_STR(json_string_value(json_object_get(json_object_get(o, "metadata"), "color")),
                 "red");
    RF_CHECK_STR(json_string_value(json_object_get(o, "tenant")), "acme");
    RF_CHECK_STR(json_string_value(json_object_get(o, "label")), "fruit");
    RF_CHECK_STR(json_string_value(json_object_get(o, "model")), "test-model");
    RF_CHECK_STR(json_string_value(json_object_get(o, "content_hash")),
                 "abababababababababababababababababababababababababababababababab");
    RF_CHECK_INT(json_integer_value(json_object_get(o, "event_time")), 1700000000000);
    RF_CHECK_STR(json_string_value(json_object_get(o, "source_position")), "lsn:42");
    RF_CHECK_STR(json_string_value(json_object_get(json_object_get(o, "kafka"), "topic")), "t");
    RF_CHECK_INT(json_integer_value(json_object_get(o, "seq")), 1);
    RF_CHECK(json_integer_value(json_object_get(o, "updated_at")) > 0);
    json_decref(o);
    free(js);
    js = NULL;
    RF_CHECK(rf_index_record_get(ix, "s:zzz", &js, NULL) == RF_ENOTFOUND);
    RF_CHECK(js == NULL);

    st = rf_index_status_json(ix);
    RF_REQUIRE(st);
    o = json_loads(st, 0, NULL);
    RF_REQUIRE(o);
    RF_CHECK_INT(json_integer_value(json_object_get(o, "records")), 3);
    RF_CHECK_INT(json_integer_value(json_object_get(o, "seq")), 3);
    RF_CHECK_INT(json_integer_value(json_object_get(json_object_get(o, "offsets"), "t/0")), 3);
    RF_CHECK_INT(json_integer_value(json_object_get(o, "dead_letters")), 0);
    RF_CHECK_INT(json_integer_value(json_object_get(o, "newest_event_time_ms")), 1700000000000);
    RF_CHECK_INT(json_integer_value(json_object_get(o, "checkpoint_seq")), -1);
    json_decref(o);
    free(st);

    /* Closing writes a checkpoint; reopening sees the same state. */
    rf_index_close(ix);
    ix = tl_open(dir, DIM, 0);
    RF_CHECK_INT(rf_index_seq(ix), 3);
    RF_CHECK_INT(rf_index_record_count(ix), 3);
    RF_CHECK_INT(rf_index_offset_get(ix, "t", 0), 3);
    st = rf_index_status_json(ix);
    RF_CHECK(st && strstr(st, "\"checkpoint_seq\":3"));
    free(st);
    RF_REQUIRE(rf_index_search(ix, vc, 1, &res, NULL) == RF_OK);
    RF_CHECK(res.cnt == 1 && strcmp(res.hits[0].id, "s:c") == 0);
    rf_index_results_fini(&res);
    RF_CHECK(tl_vectors_match_store(ix, dir));
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

/* INVARIANT(one-record-per-key): an update replaces text and vector; the old version is
 * never found again, even by its old vector. */
static void test_update_replaces(void)
{
    char *dir = rf_test_tmpdir("ixup");
    rf_index_t *ix = tl_open(dir, DIM, 0);
    float v1[DIM], v2[DIM], v3[DIM];
    rf_index_op_t ops[2];
    rf_index_results_t res;
    axis(0, v1);
    axis(1, v2);
    axis(2, v3);
    ops[0] = tl_upsert("s:a", "s", "old text", v1);
    ops[1] = tl_upsert("s:b", "s", "other", v3);
    RF_REQUIRE(tl_apply(ix, ops, 2, NULL, 0, NULL) == RF_OK);
    ops[0] = tl_upsert("s:a", "s", "new text", v2);
    RF_REQUIRE(tl_apply(ix, ops, 1, NULL, 0, NULL) == RF_OK);
    RF_CHECK_INT(rf_index_record_count(ix), 2);
    RF_CHECK_INT(rf_index_seq(ix), 3);
    RF_REQUIRE(rf_index_search(ix, v1, 5, &res, NULL) == RF_OK);
    RF_CHECK_INT(res.cnt, 2);
    for (size_t i = 0; i < res.cnt; i++) {
        RF_CHECK(strcmp(res.hits[i].text, "old text") != 0);
        RF_CHECK(res.hits[i].score < 0.5f); /* the old vector is gone */
    }
    rf_index_results_fini(&res);
    RF_REQUIRE(rf_index_search(ix, v2, 1, &res, NULL) == RF_OK);
    RF_REQUIRE(res.cnt == 1);
    RF_CHECK_STR(res.hits[0].id, "s:a");
    RF_CHECK_STR(res.hits[0].text, "new text");
    RF_CHECK_INT(res.hits[0].seq, 3);
    rf_index_results_fini(&res);
    /* Two versions of one id in a batch: the last wins. */
    ops[0] = tl_upsert("s:c", "s", "first", v1);
    ops[1] = tl_upsert("s:c", "s", "second", v3);
    RF_REQUIRE(tl_apply(ix, ops, 2, NULL, 0, NULL) == RF_OK);
    RF_REQUIRE(rf_index_search(ix, v1, 5, &res, NULL) == RF_OK);
    for (size_t i = 0; i < res.cnt; i++)
        RF_CHECK(strcmp(res.hits[i].text, "first") != 0);
    rf_index_results_fini(&res);
    RF_CHECK_INT(rf_index_record_count(ix), 3);
    RF_CHECK_INT(tl_count(dir, "records"), 3);
    RF_CHECK_INT(tl_count(dir, "changelog"), 5);
    /* An update that names another source moves the record to it (truncates follow). */
    ops[0] = tl_upsert("s:b", "t", "other, from t", v3);
    RF_REQUIRE(tl_apply(ix, ops, 1, NULL, 0, NULL) == RF_OK);
    RF_CHECK_INT(tl_count(dir, "records WHERE id = 's:b' AND source = 't'"), 1);
    RF_CHECK_INT(tl_count(dir, "records WHERE id = 's:a' AND source = 's' AND text = 'new text'"),
                 1);
    RF_CHECK(tl_vectors_match_store(ix, dir));
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

static void test_delete(void)
{
    char *dir = rf_test_tmpdir("ixdel");
    rf_index_t *ix = tl_open(dir, DIM, 0);
    float v1[DIM], v2[DIM];
    rf_index_op_t ops[2];
    rf_index_results_t res;
    int64_t seq = 0;
    axis(0, v1);
    axis(1, v2);
    ops[0] = tl_upsert("s:a", "s", "a", v1);
    ops[1] = tl_upsert("s:b", "s", "b", v2);
    RF_REQUIRE(tl_apply(ix, ops, 2, NULL, 0, &seq) == RF_OK);
    ops[0] = tl_delete("s:a", "s");
    RF_REQUIRE(tl_apply(ix, ops, 1, NULL, 0, &seq) == RF_OK);
    RF_CHECK_INT(seq, 3);
    RF_CHECK_INT(rf_index_record_count(ix), 1);
    RF_CHECK_INT(tl_count(dir, "changelog WHERE op = 'delete' AND id = 's:a'"), 1);
    RF_REQUIRE(rf_index_search(ix, v1, 10, &res, NULL) == RF_OK);
    RF_REQUIRE(res.cnt == 1);
    RF_CHECK_STR(res.hits[0].id, "s:b");
    rf_index_results_fini(&res);
    /* A delete of a missing id writes no changelog row and keeps seq. */
    ops[0] = tl_delete("s:missing", "s");
    ops[1] = tl_delete("s:a", "s");
    RF_REQUIRE(tl_apply(ix, ops, 2, NULL, 0, &seq) == RF_OK);
    RF_CHECK_INT(seq, 3);
    RF_CHECK_INT(rf_index_seq(ix), 3);
    RF_CHECK_INT(tl_count(dir, "changelog"), 3);
    /* Upsert then delete in one batch: nothing remains. */
    ops[0] = tl_upsert("s:c", "s", "c", v1);
    ops[1] = tl_delete("s:c", "s");
    RF_REQUIRE(tl_apply(ix, ops, 2, NULL, 0, &seq) == RF_OK);
    RF_CHECK_INT(seq, 5);
    RF_CHECK_INT(rf_index_record_count(ix), 1);
    RF_REQUIRE(rf_index_search(ix, v1, 10, &res, NULL) == RF_OK);
    RF_CHECK_INT(res.cnt, 1);
    rf_index_results_fini(&res);
    RF_CHECK(tl_vectors_match_store(ix, dir));
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

static void test_truncate(void)
{
    char *dir = rf_test_tmpdir("ixtr");
    rf_index_t *ix = tl_open(dir, DIM, 0);
    float v[5][DIM];
    const char *ids[5] = {"s1:a", "s1:b", "s1:c", "s2:a", "s2:b"};
    rf_index_op_t ops[5];
    rf_index_results_t res;
    int64_t seq = 0;
    for (int i = 0; i < 5; i++) {
        axis(i, v[i]);
        ops[i] = tl_upsert(ids[i], i < 3 ? "s1" : "s2", ids[i], v[i]);
    }
    RF_REQUIRE(tl_apply(ix, ops, 5, NULL, 0, NULL) == RF_OK);
    ops[0] = tl_truncate("s1");
    RF_REQUIRE(tl_apply(ix, ops, 1, NULL, 0, &seq) == RF_OK);
    RF_CHECK_INT(seq, 8);
    RF_CHECK_INT(rf_index_record_count(ix), 2);
    RF_CHECK_INT(tl_count(dir, "changelog WHERE op = 'delete' AND source = 's1'"), 3);
    RF_CHECK_INT(tl_count(dir, "records WHERE source = 's2'"), 2);
    RF_REQUIRE(rf_index_search(ix, v[0], 10, &res, NULL) == RF_OK);
    RF_CHECK_INT(res.cnt, 2);
    for (size_t i = 0; i < res.cnt; i++)
        RF_CHECK(strncmp(res.hits[i].id, "s2:", 3) == 0);
    rf_index_results_fini(&res);
    /* Truncating an empty source changes nothing. */
    RF_REQUIRE(tl_apply(ix, ops, 1, NULL, 0, &seq) == RF_OK);
    RF_CHECK_INT(seq, 8);
    RF_CHECK(tl_vectors_match_store(ix, dir));
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

static void raw_exec(const char *dir, const char *sql)
{
    char *path = rf_xasprintf("%s/store.db", dir);
    sqlite3 *db = NULL;
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
    RF_CHECK(rc == SQLITE_OK);
    sqlite3_close(db);
    free(path);
}

/* INVARIANT(offsets-with-state): offsets, records, changelog and dead letters commit
 * together or not at all. */
static void test_offsets_txn(void)
{
    char *dir = rf_test_tmpdir("ixoff");
    rf_index_t *ix = tl_open(dir, DIM, 0);
    float v[DIM];
    rf_index_op_t ops[2];
    rf_index_offset_t offs[2] = {{"t", 0, 10}, {"t", 1, 7}};
    rf_index_dead_t dead = {"t", 1, 6, RF_SLICE_NULL, {(const uint8_t *)"junk", 4}, "bad json"};
    rf_index_batch_t b = {0};
    rf_err_t err = {0};
    int64_t seq = 0;
    axis(0, v);
    ops[0] = tl_upsert("s:a", "s", "a", v);
    ops[1] = tl_upsert("s:b", "s", "b", v);
    b.ops = ops;
    b.op_cnt = 2;
    b.dead = &dead;
    b.dead_cnt = 1;
    b.offsets = offs;
    b.offset_cnt = 2;
    RF_REQUIRE(rf_index_apply(ix, &b, &seq, &err) == RF_OK);
    RF_CHECK_INT(tl_count(dir, "offsets WHERE topic = 't' AND \"partition\" = 0 AND"
                               " next_offset = 10"),
                 1);
    RF_CHECK_INT(tl_count(dir, "offsets WHERE \"partition\" = 1 AND next_offset = 7"), 1);
    RF_CHECK_INT(tl_count(dir, "dead_letters WHERE key IS NULL AND value = CAST('junk' AS BLOB)"
                               " AND reason = 'bad json'"),
                 1);
    RF_CHECK_INT(rf_index_dead_count(ix), 1);

    /* Make the store refuse the second record of the next batch: the first record, the
     * offsets and the dead letter of that batch must not be visible either. */
    raw_exec(dir, "CREATE TRIGGER boom BEFORE INSERT ON records WHEN NEW.id = 's:bad'"
                  " BEGIN SELECT RAISE(ABORT, 'refused'); END");
    ops[0] = tl_upsert("s:ok", "s", "ok", v);
    ops[1] = tl_upsert("s:bad", "s", "bad", v);
    offs[0].next_offset = 20;
    RF_CHECK(rf_index_apply(ix, &b, &seq, &err) != RF_OK);
    RF_CHECK(strstr(err.msg, "refused") != NULL);
    RF_CHECK_INT(tl_count(dir, "records WHERE id = 's:ok'"), 0);
    RF_CHECK_INT(tl_count(dir, "offsets WHERE \"partition\" = 0 AND next_offset = 10"), 1);
    RF_CHECK_INT(tl_count(dir, "dead_letters"), 1);
    RF_CHECK_INT(tl_count(dir, "changelog"), 2);
    RF_CHECK_INT(rf_index_offset_get(ix, "t", 0), 10);
    RF_CHECK_INT(rf_index_seq(ix), 2);
    RF_CHECK_INT(rf_index_record_count(ix), 2);
    RF_CHECK_INT(rf_index_dead_count(ix), 1);
    RF_CHECK(tl_vectors_match_store(ix, dir));

    /* An offset write refused at the end rolls back the records before it. */
    raw_exec(dir, "DROP TRIGGER boom; CREATE TRIGGER boom2 BEFORE UPDATE ON offsets"
                  " WHEN NEW.next_offset = 30 BEGIN SELECT RAISE(ABORT, 'no offset'); END");
    ops[1] = tl_upsert("s:fine", "s", "fine", v);
    offs[0].next_offset = 30;
    RF_CHECK(rf_index_apply(ix, &b, &seq, &err) != RF_OK);
    RF_CHECK_INT(tl_count(dir, "records"), 2);
    RF_CHECK_INT(rf_index_seq(ix), 2);
    /* The same batch goes through once the store accepts it. */
    raw_exec(dir, "DROP TRIGGER boom2");
    RF_REQUIRE(rf_index_apply(ix, &b, &seq, &err) == RF_OK);
    RF_CHECK_INT(seq, 4);
    RF_CHECK_INT(tl_count(dir, "records"), 4);
    RF_CHECK_INT(rf_index_offset_get(ix, "t", 0), 30);
    RF_CHECK_INT(rf_index_dead_count(ix), 2);
    RF_CHECK(tl_vectors_match_store(ix, dir));
    rf_index_close(ix);

    /* Offsets survive a reopen. */
    ix = tl_open(dir, DIM, 0);
    RF_CHECK_INT(rf_index_offset_get(ix, "t", 0), 30);
    RF_CHECK_INT(rf_index_offset_get(ix, "t", 1), 7);
    RF_CHECK_INT(rf_index_dead_count(ix), 2);
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

static void test_dim_mismatch(void)
{
    char *dir = rf_test_tmpdir("ixdim");
    rf_index_t *ix = tl_open(dir, DIM, 0), *ix2 = NULL;
    rf_index_opts_t o = {.dir = dir, .dim = DIM * 2};
    rf_err_t err = {0};
    rf_index_close(ix);
    RF_CHECK(rf_index_open(&o, &ix2, &err) == RF_ECONFIG);
    RF_CHECK(ix2 == NULL);
    RF_CHECK(strstr(err.msg, "dim") != NULL);
    /* The refused open left the store usable with its own dim. */
    ix = tl_open(dir, DIM, 0);
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

static void test_lock(void)
{
    char *dir = rf_test_tmpdir("ixlock");
    rf_index_t *ix = tl_open(dir, DIM, 0), *ix2 = NULL;
    rf_index_opts_t o = {.dir = dir, .dim = DIM};
    rf_err_t err = {0};
    pid_t pid;
    int status = 0;
    RF_CHECK(rf_index_open(&o, &ix2, &err) == RF_EBUSY);
    RF_CHECK(strstr(err.msg, "in use") != NULL);
    /* Another process is refused too. */
    pid = fork();
    RF_REQUIRE(pid >= 0);
    if (pid == 0) {
        rf_index_t *c = NULL;
        _exit(rf_index_open(&o, &c, NULL) == RF_EBUSY ? 0 : 1);
    }
    RF_REQUIRE(waitpid(pid, &status, 0) == pid);
    RF_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    rf_index_close(ix);
    RF_CHECK(rf_index_open(&o, &ix2, &err) == RF_OK);
    rf_index_close(ix2);
    rf_test_rmtree(dir);
    free(dir);
}

static void test_validation(void)
{
    char *dir = rf_test_tmpdir("ixval");
    rf_index_t *ix = tl_open(dir, DIM, 0);
    float v[DIM];
    rf_index_op_t ops[2];
    rf_index_results_t res;
    rf_index_offset_t off = {"t", 0, 5};
    rf_err_t err = {0};
    rf_index_batch_t b = {0};
    axis(0, v);
    ops[0] = tl_upsert("s:a", "s", "a", v);
    ops[1] = tl_upsert("s:b", "s", "b", NULL);
    RF_CHECK(tl_apply(ix, ops, 2, &off, 1, NULL) == RF_EINVAL);
    v[3] = NAN;
    ops[1] = tl_upsert("s:b", "s", "b", v);
    RF_CHECK(tl_apply(ix, ops, 2, &off, 1, NULL) == RF_EINVAL);
    ops[1] = tl_truncate(NULL);
    RF_CHECK(tl_apply(ix, ops, 2, &off, 1, NULL) == RF_EINVAL);
    RF_CHECK_INT(rf_index_record_count(ix), 0);
    RF_CHECK_INT(rf_index_offset_get(ix, "t", 0), -1);
    RF_CHECK_INT(tl_count(dir, "records"), 0);
    b.op_cnt = 1; /* ops NULL */
    RF_CHECK(rf_index_apply(ix, &b, NULL, &err) == RF_EINVAL);
    RF_CHECK(rf_index_search(ix, v, 0, &res, &err) == RF_EINVAL);
    RF_CHECK(rf_index_search(ix, v, RF__INDEX_K_MAX + 1, &res, &err) == RF_ETOOBIG);
    /* An empty index answers with nothing. */
    axis(0, v);
    RF_REQUIRE(rf_index_search(ix, v, 3, &res, &err) == RF_OK);
    RF_CHECK_INT(res.cnt, 0);
    RF_CHECK_INT(res.seq, 0);
    rf_index_results_fini(&res);
    /* A batch with only offsets keeps seq and stores the offsets. */
    RF_REQUIRE(tl_apply(ix, NULL, 0, &off, 1, NULL) == RF_OK);
    RF_CHECK_INT(rf_index_seq(ix), 0);
    RF_CHECK_INT(rf_index_offset_get(ix, "t", 0), 5);
    rf_index_close(ix);
    rf_index_close(NULL);
    rf_index_results_fini(NULL);
    rf_test_rmtree(dir);
    free(dir);
}

static void test_corrupt_store(void)
{
    char *dir = rf_test_tmpdir("ixbad");
    char *path = rf_xasprintf("%s/store.db", dir);
    rf_index_opts_t o = {.dir = dir, .dim = DIM};
    rf_index_t *ix = NULL;
    rf_err_t err = {0};
    FILE *fp = fopen(path, "wb");
    RF_REQUIRE(fp);
    for (int i = 0; i < 4096; i++)
        fputc('x', fp);
    fclose(fp);
    RF_CHECK(rf_index_open(&o, &ix, &err) == RF_ECORRUPT);
    RF_CHECK(ix == NULL);
    free(path);
    rf_test_rmtree(dir);
    free(dir);
}

/* A store of schema version 2 (with its indexes on records.seq and content_hash) opens as
 * the current version without them, and the readers that went by seq give the same
 * answers through the changelog: the recent records newest first, each once, never a
 * deleted one. */
static void test_schema_upgrade(void)
{
    char *dir = rf_test_tmpdir("ixver");
    char *path = rf_xasprintf("%s/store.db", dir);
    rf_index_t *ix = tl_open(dir, DIM, 0);
    rf_index_op_t ops[4];
    float v[4][DIM];
    char *js = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    json_t *arr;
    for (int i = 0; i < 4; i++)
        axis(i, v[i]);
    ops[0] = tl_upsert("s:a", "s", "alpha", v[0]);
    ops[1] = tl_upsert("s:b", "s", "beta", v[1]);
    ops[2] = tl_upsert("s:c", "s", "gamma", v[2]);
    RF_REQUIRE(tl_apply(ix, ops, 3, NULL, 0, NULL) == RF_OK);
    rf_index_close(ix);
    RF_REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    RF_REQUIRE(sqlite3_exec(db,
                            "CREATE INDEX records_seq ON records(seq);"
                            "CREATE INDEX records_hash ON records(content_hash);"
                            "UPDATE meta SET value = 2 WHERE key = 'schema_version'",
                            NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);

    ix = tl_open(dir, DIM, 0);
    /* a updated (newest), c deleted, b untouched: recent is a then b. */
    ops[0] = tl_upsert("s:a", "s", "alpha two", v[3]);
    ops[1] = tl_delete("s:c", "s");
    RF_REQUIRE(tl_apply(ix, ops, 2, NULL, 0, NULL) == RF_OK);
    RF_REQUIRE(rf_index_recent_json(ix, 10, 100, &js, NULL) == RF_OK);
    arr = json_loads(js, 0, NULL);
    RF_REQUIRE(arr && json_array_size(arr) == 2);
    RF_CHECK_STR(json_string_value(json_object_get(json_array_get(arr, 0), "id")), "s:a");
    RF_CHECK_STR(json_string_value(json_object_get(json_array_get(arr, 1), "id")), "s:b");
    json_decref(arr);
    free(js);
    rf_index_close(ix);

    RF_REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    RF_REQUIRE(sqlite3_prepare_v2(db,
                                  "SELECT (SELECT value FROM meta WHERE key = 'schema_version'),"
                                  " (SELECT COUNT(*) FROM sqlite_master"
                                  "  WHERE name IN ('records_seq', 'records_hash'))",
                                  -1, &st, NULL) == SQLITE_OK);
    RF_REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    RF_CHECK_INT(sqlite3_column_int(st, 0), RF__INDEX_SCHEMA_VERSION);
    RF_CHECK_INT(sqlite3_column_int(st, 1), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* Every record deleted: the recent records are none. */
    ix = tl_open(dir, DIM, 0);
    ops[0] = tl_delete("s:a", "s");
    ops[1] = tl_delete("s:b", "s");
    RF_REQUIRE(tl_apply(ix, ops, 2, NULL, 0, NULL) == RF_OK);
    RF_REQUIRE(rf_index_recent_json(ix, 10, 100, &js, NULL) == RF_OK);
    RF_CHECK_STR(js, "[]");
    free(js);
    rf_index_close(ix);
    free(path);
    rf_test_rmtree(dir);
    free(dir);
}

/* Applies a batch of dead letters only from another thread after a short while. */
typedef struct late_apply {
    rf_index_t *ix;
    int64_t next;
} late_apply_t;

static void *late_apply_main(void *arg)
{
    late_apply_t *la = arg;
    rf_index_offset_t off = {"p", 3, la->next};
    rf_index_dead_t dead = {"p", 3, la->next - 1, RF_SLICE_NULL, RF_SLICE_NULL, "bad"};
    rf_index_batch_t b = {0};
    rf_sleep_ms(50);
    b.dead = &dead;
    b.dead_cnt = 1;
    b.offsets = &off;
    b.offset_cnt = 1;
    rf_index_apply(la->ix, &b, NULL, NULL);
    return NULL;
}

/* INVARIANT(fresh-is-measurable): searches carry the position they reflect, and a
 * waiter wakes when a batch reaches its offset, even a batch of dead letters only. */
static void test_position_and_wait(void)
{
    char *dir = rf_test_tmpdir("ixpos");
    rf_index_t *ix = tl_open(dir, DIM, 0);
    float v[DIM];
    rf_index_op_t op;
    rf_index_offset_t offs[1] = {{"p", 3, 5}}, want = {"p", 3, 5};
    rf_index_results_t res;
    rf_index_position_t pos;
    late_apply_t la = {ix, 9};
    pthread_t thr;
    int64_t seq = 0, t0;
    axis(1, v);
    op = tl_upsert("s:x", "s", "x", v);
    RF_CHECK_INT(rf_index_position_wait(ix, -1, &want, 1, 30), RF_ETIMEDOUT);
    RF_REQUIRE(tl_apply(ix, &op, 1, offs, 1, &seq) == RF_OK);
    RF_CHECK_INT(rf_index_position_wait(ix, seq, &want, 1, 0), RF_OK);
    RF_REQUIRE(rf_index_search(ix, v, 1, &res, NULL) == RF_OK);
    RF_CHECK_INT(res.pos.seq, seq);
    RF_REQUIRE(res.pos.offset_cnt == 1);
    RF_CHECK_STR(res.pos.offsets[0].topic, "p");
    RF_CHECK_INT(res.pos.offsets[0].next_offset, 5);
    rf_index_results_fini(&res);

    want.next_offset = 9;
    t0 = rf_mono_ms();
    pthread_create(&thr, NULL, late_apply_main, &la);
    RF_CHECK_INT(rf_index_position_wait(ix, -1, &want, 1, 10000), RF_OK);
    RF_CHECK(rf_mono_ms() - t0 < 5000);
    pthread_join(thr, NULL);
    rf_index_position_get(ix, &pos);
    RF_CHECK_INT(pos.seq, seq); /* dead letters move offsets, not the seq */
    RF_CHECK_INT(pos.offsets[0].next_offset, 9);
    rf_index_position_fini(&pos);
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

/* The embedding cache: a current record's vector is found by its content hash, and a
 * deleted record's is not. */
static void test_vector_by_hash(void)
{
    char *dir = rf_test_tmpdir("ixhash");
    rf_index_t *ix = tl_open(dir, DIM, 0);
    float v[DIM], got[DIM];
    uint8_t h1[32], h2[32];
    rf_index_op_t op;
    memset(h1, 1, sizeof(h1));
    memset(h2, 2, sizeof(h2));
    axis(3, v);
    op = tl_upsert("s:h", "s", "h", v);
    op.content_hash = h1;
    RF_REQUIRE(tl_apply(ix, &op, 1, NULL, 0, NULL) == RF_OK);
    RF_CHECK_INT(rf_index_vector_by_hash(ix, h1, DIM, got, NULL), RF_OK);
    RF_CHECK(memcmp(got, v, sizeof(v)) == 0);
    RF_CHECK_INT(rf_index_vector_by_hash(ix, h2, DIM, got, NULL), RF_ENOTFOUND);
    op = tl_delete("s:h", "s");
    RF_REQUIRE(tl_apply(ix, &op, 1, NULL, 0, NULL) == RF_OK);
    RF_CHECK_INT(rf_index_vector_by_hash(ix, h1, DIM, got, NULL), RF_ENOTFOUND);
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

typedef struct wal_reader {
    rf_index_t *ix;
    int stop;
    int64_t searches;
} wal_reader_t;

static void *wal_reader_main(void *arg)
{
    wal_reader_t *r = arg;
    float v[DIM];
    rf_index_results_t res;
    axis(2, v);
    while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED)) {
        if (rf_index_search(r->ix, v, 5, &res, NULL) == RF_OK) {
            rf_index_results_fini(&res);
            r->searches++;
        }
    }
    return NULL;
}

/* What a commit does about the WAL: nothing below the kick; the tail the thread left,
 * itself; past the soft bound the rest, unless the thread's pass is running, which it then
 * leaves to finish (the commit goes on); past four times the bound the rest, waiting. */
static void test_wal_action(void)
{
    static const struct {
        int64_t frames, copied;
        int busy, want;
    } cases[] = {
        {999, 0, 0, RF__WAL_NONE},          {1000, 0, 0, RF__WAL_KICK},
        {1000, 0, 1, RF__WAL_NONE},         {5000, 4744, 0, RF__WAL_TAIL},
        {5000, 4743, 0, RF__WAL_KICK},      {16383, 9000, 1, RF__WAL_NONE},
        {16384, 9000, 0, RF__WAL_ALL},      {16384, 16300, 0, RF__WAL_ALL},
        {16384, 9000, 1, RF__WAL_NONE},     {32768, 9000, 1, RF__WAL_NONE},
        {65535, 9000, 1, RF__WAL_NONE},     {65536, 9000, 1, RF__WAL_ALL_WAIT},
        {65536, 9000, 0, RF__WAL_ALL_WAIT},
    };
    rf_index_t ix = {0};
    ix.wal_kick_frames = 1000;
    ix.wal_tail_frames = 256;
    ix.wal_max_frames = 16384;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        RF_CHECK_INT(rf__index_wal_action(&ix, cases[i].frames, cases[i].copied, cases[i].busy),
                     cases[i].want);
}

/* The WAL stays bounded under a writer that never pauses while searches read: the
 * checkpoint thread copies most of it, the commits copy the short tail, and the WAL starts
 * over.  (A thread alone never lets a busy writer restart the WAL; SQLite's own automatic
 * checkpoint lets it grow to 1,000 frames and copies them inside a commit.) */
static void test_wal_bounded(void)
{
    char *dir = rf_test_tmpdir("ixwal");
    rf_index_t *ix = tl_open(dir, DIM, 0);
    char path[1024], id[32], text[600];
    rf_index_op_t ops[100];
    float vecs[100][DIM];
    wal_reader_t rd = {ix, 0, 0};
    pthread_t thr;
    uint64_t rs = 7;
    off_t most = 0;
    struct stat stb;
    const off_t frame = 4096 + 24;

    ix->wal_kick_frames = 64;
    ix->wal_tail_frames = 16;
    ix->wal_max_frames = 400;
    snprintf(path, sizeof(path), "%s/store.db-wal", dir);
    memset(text, 'w', sizeof(text) - 1);
    text[sizeof(text) - 1] = 0;
    pthread_create(&thr, NULL, wal_reader_main, &rd);
    for (int b = 0; b < 300; b++) {
        for (int i = 0; i < 100; i++) {
            snprintf(id, sizeof(id), "s:%d", (b * 100 + i) % 15000);
            tl_vec_rand(&rs, DIM, vecs[i]);
            ops[i] = tl_upsert(rf_xstrdup(id), "s", text, vecs[i]);
        }
        RF_REQUIRE(tl_apply(ix, ops, 100, NULL, 0, NULL) == RF_OK);
        for (int i = 0; i < 100; i++)
            free((char *)ops[i].id);
        if (stat(path, &stb) == 0 && stb.st_size > most)
            most = stb.st_size;
    }
    __atomic_store_n(&rd.stop, 1, __ATOMIC_RELAXED);
    pthread_join(thr, NULL);
    /* One batch writes about 60 frames; 300 of them wrote some 18,000. */
    RF_CHECK(most > 0);
    RF_CHECK(most <= (4 * ix->wal_max_frames + 200) * frame);
    RF_CHECK(__atomic_load_n(&ix->wal_bg_runs, __ATOMIC_RELAXED) > 0);
    RF_CHECK(__atomic_load_n(&ix->wal_inline_runs, __ATOMIC_RELAXED) > 0);
    RF_CHECK(rd.searches > 0);
    fprintf(stderr,
            "wal: most %lld bytes, thread %lld, commits %lld (%lld frames), %lld searches\n",
            (long long)most, (long long)__atomic_load_n(&ix->wal_bg_runs, __ATOMIC_RELAXED),
            (long long)__atomic_load_n(&ix->wal_inline_runs, __ATOMIC_RELAXED),
            (long long)__atomic_load_n(&ix->wal_inline_frames, __ATOMIC_RELAXED),
            (long long)rd.searches);
    RF_CHECK(tl_vectors_match_store(ix, dir));
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

/* The writer's VFS (index_walvfs.c) against SQLite itself: a transaction larger than a
 * tiny cache spills frames into the WAL and reads them back before its commit (reads of
 * bytes still buffered), the WAL starts over and is truncated (journal_size_limit), and
 * after every commit another connection, on the default VFS, reads what was committed.
 * The writes must reach the file in far fewer calls than SQLite made. */
static void test_walvfs(void)
{
    char *dir = rf_test_tmpdir("walvfs");
    char path[512], *emsg = NULL;
    sqlite3 *w = NULL, *r = NULL;
    sqlite3_stmt *ins = NULL, *sum = NULL, *rsum = NULL;
    uint64_t calls0, writes0, calls1, writes1;
    unsigned char blob[1500];
    const char *vfs = rf__index_walvfs();

    RF_REQUIRE(vfs != NULL);
    RF_CHECK_STR(rf__index_walvfs(), vfs);
    snprintf(path, sizeof(path), "%s/t.db", dir);
    RF_REQUIRE(sqlite3_open_v2(path, &w, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs) ==
               SQLITE_OK);
    RF_REQUIRE(sqlite3_exec(w,
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                            "PRAGMA cache_size = 8; PRAGMA journal_size_limit = 100000;"
                            "CREATE TABLE t (k INTEGER PRIMARY KEY, n INTEGER, b BLOB);",
                            NULL, NULL, &emsg) == SQLITE_OK);
    RF_REQUIRE(sqlite3_open_v2(path, &r, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    RF_REQUIRE(sqlite3_prepare_v2(w, "INSERT OR REPLACE INTO t VALUES (?1, ?2, ?3)", -1, &ins,
                                  NULL) == SQLITE_OK);
    RF_REQUIRE(sqlite3_prepare_v2(w, "SELECT count(*), sum(n), sum(length(b)) FROM t", -1, &sum,
                                  NULL) == SQLITE_OK);
    RF_REQUIRE(sqlite3_prepare_v2(r, "SELECT count(*), sum(n), sum(length(b)) FROM t", -1, &rsum,
                                  NULL) == SQLITE_OK);
    rf__index_walvfs_stats(&calls0, &writes0);
    for (int round = 0; round < 6; round++) {
        long long want_n = 0;
        RF_REQUIRE(sqlite3_exec(w, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
        for (int k = 0; k < 400; k++) {
            memset(blob, 'a' + (k + round) % 26, sizeof(blob));
            sqlite3_bind_int(ins, 1, k);
            sqlite3_bind_int(ins, 2, k * 10 + round);
            sqlite3_bind_blob(ins, 3, blob, sizeof(blob), SQLITE_STATIC);
            RF_REQUIRE(sqlite3_step(ins) == SQLITE_DONE);
            sqlite3_reset(ins);
            want_n += k * 10 + round;
        }
        /* 400 rows of 1.5 KB in an 8-page cache: most pages were spilled to the WAL and
         * this reads them back, some from bytes the VFS still holds. */
        RF_REQUIRE(sqlite3_step(sum) == SQLITE_ROW);
        RF_CHECK_INT(sqlite3_column_int(sum, 0), 400);
        RF_CHECK_INT(sqlite3_column_int64(sum, 1), want_n);
        RF_CHECK_INT(sqlite3_column_int64(sum, 2), 400 * (long long)sizeof(blob));
        sqlite3_reset(sum);
        RF_REQUIRE(sqlite3_exec(w, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
        RF_REQUIRE(sqlite3_step(rsum) == SQLITE_ROW);
        RF_CHECK_INT(sqlite3_column_int(rsum, 0), 400);
        RF_CHECK_INT(sqlite3_column_int64(rsum, 1), want_n);
        RF_CHECK_INT(sqlite3_column_int64(rsum, 2), 400 * (long long)sizeof(blob));
        sqlite3_reset(rsum);
        /* Every other round the WAL is copied back, so the next write starts it over (and,
         * past journal_size_limit, truncates it). */
        if (round % 2)
            RF_CHECK_INT(sqlite3_wal_checkpoint_v2(w, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL),
                         SQLITE_OK);
    }
    rf__index_walvfs_stats(&calls1, &writes1);
    fprintf(stderr, "walvfs: %llu writes in %llu calls\n", (unsigned long long)(writes1 - writes0),
            (unsigned long long)(calls1 - calls0));
    RF_CHECK(writes1 - writes0 > 1000);
    RF_CHECK((calls1 - calls0) * 10 < writes1 - writes0);
    {
        sqlite3_stmt *ic = NULL;
        RF_REQUIRE(sqlite3_prepare_v2(r, "PRAGMA integrity_check", -1, &ic, NULL) == SQLITE_OK);
        RF_REQUIRE(sqlite3_step(ic) == SQLITE_ROW);
        RF_CHECK_STR((const char *)sqlite3_column_text(ic, 0), "ok");
        sqlite3_finalize(ic);
    }
    sqlite3_finalize(ins);
    sqlite3_finalize(sum);
    sqlite3_finalize(rsum);
    sqlite3_free(emsg);
    RF_CHECK_INT(sqlite3_close(r), SQLITE_OK);
    RF_CHECK_INT(sqlite3_close(w), SQLITE_OK);
    rf_test_rmtree(dir);
    free(dir);
}

RF_TEST_MAIN(test_roundtrip, test_update_replaces, test_delete, test_truncate, test_offsets_txn,
             test_dim_mismatch, test_lock, test_validation, test_corrupt_store,
             test_position_and_wait, test_vector_by_hash, test_wal_action, test_wal_bounded,
             test_schema_upgrade, test_walvfs)
