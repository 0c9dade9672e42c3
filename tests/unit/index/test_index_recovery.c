/* test_index_recovery.c - recovery of the vector index: checkpoint + changelog replay
 * after a crash, corrupt, truncated, foreign and missing checkpoints, and checkpoint
 * retention.  Covers INVARIANT(index-is-a-view): a bad checkpoint costs time, never data.
 */
#include "index/index.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/index_int.h"
#include "index_testlib.h"
#include "rf_test.h"

#define DIM  12
#define NIDS 80

/* Per-id expected state. */
typedef struct expect {
    int present[NIDS];
    int version[NIDS];
} expect_t;

static int id_num(const char *name)
{
    char *end;
    long v;
    if (strncmp(name, "s:", 2) != 0)
        return -1;
    v = strtol(name + 2, &end, 10);
    return *end ? -1 : (int)v;
}

static int64_t present_cnt(const expect_t *e)
{
    int64_t n = 0;
    for (int i = 0; i < NIDS; i++)
        n += e->present[i];
    return n;
}

/* Applies one batch: upserts ids [from, to) at version ver, then deletes [dfrom, dto). */
static void batch(rf_index_t *ix, expect_t *e, int from, int to, int ver, int dfrom, int dto)
{
    static rf_index_op_t ops[NIDS * 2];
    static char names[NIDS * 2][16], texts[NIDS][32];
    static float vecs[NIDS][DIM];
    size_t n = 0;
    for (int i = from; i < to; i++) {
        snprintf(names[n], sizeof(names[n]), "s:%d", i);
        snprintf(texts[i], sizeof(texts[i]), "s:%d v%d", i, ver);
        tl_vec_for((uint64_t)i, (uint64_t)ver, DIM, vecs[i]);
        ops[n] = tl_upsert(names[n], "s", texts[i], vecs[i]);
        n++;
        e->present[i] = 1;
        e->version[i] = ver;
    }
    for (int i = dfrom; i < dto; i++) {
        snprintf(names[n], sizeof(names[n]), "s:%d", i);
        ops[n] = tl_delete(names[n], "s");
        n++;
        e->present[i] = 0;
    }
    RF_REQUIRE(tl_apply(ix, ops, n, NULL, 0, NULL) == RF_OK);
}

/* Every present id is found first by its own vector, with its current text; absent ids
 * never appear; the vector index holds exactly the store's records. */
static void check_state(rf_index_t *ix, const char *dir, const expect_t *e)
{
    int64_t cnt = present_cnt(e);
    rf_index_results_t res;
    for (int i = 0; i < NIDS; i++) {
        float q[DIM];
        char text[32];
        if (!e->present[i])
            continue;
        tl_vec_for((uint64_t)i, (uint64_t)e->version[i], DIM, q);
        snprintf(text, sizeof(text), "s:%d v%d", i, e->version[i]);
        RF_REQUIRE(rf_index_search(ix, q, NIDS, &res, NULL) == RF_OK);
        RF_CHECK_INT(res.cnt, cnt);
        RF_CHECK(res.cnt > 0 && strcmp(res.hits[0].text, text) == 0);
        for (size_t j = 0; j < res.cnt; j++) {
            int id = id_num(res.hits[j].id);
            RF_CHECK(id >= 0 && id < NIDS && e->present[id]);
        }
        rf_index_results_fini(&res);
    }
    RF_CHECK_INT(rf_index_record_count(ix), cnt);
    RF_CHECK(tl_vectors_match_store(ix, dir));
}

/* Log capture: recovery says which checkpoint it used and what it skipped. */
static char *log_buf;
static size_t log_len;
static FILE *log_fp;

static void log_capture(void)
{
    log_fp = open_memstream(&log_buf, &log_len);
    rf_log_set_stream(log_fp);
}

/* Stops capturing; returns the captured text (caller frees). */
static char *log_take(void)
{
    char *s;
    rf_log_set_stream(stderr);
    fclose(log_fp);
    s = log_buf;
    log_buf = NULL;
    fputs(s, stderr);
    return s;
}

static rf_index_t *open_logged(const char *dir, char **log)
{
    rf_index_t *ix;
    log_capture();
    ix = tl_open(dir, DIM, 0);
    *log = log_take();
    return ix;
}

static int ckpt_files(const char *dir, int64_t *seqs, int max)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;
    if (!d)
        return -1;
    while ((de = readdir(d))) {
        long long s;
        char tail[8];
        if (sscanf(de->d_name, "index-%lld%7s", &s, tail) == 2 && strcmp(tail, ".ckpt") == 0 &&
            n < max)
            seqs[n++] = s;
        else if (strstr(de->d_name, ".ckpt"))
            n += 1000; /* any other checkpoint-like file is a failure */
    }
    closedir(d);
    return n;
}

/* A crash after a checkpoint: reopen loads the checkpoint and replays the changelog. */
static void test_replay_after_crash(void)
{
    char *dir = rf_test_tmpdir("ixrep");
    expect_t e = {0};
    rf_index_t *ix = tl_open(dir, DIM, 0);
    char *log = NULL;
    batch(ix, &e, 0, 50, 1, 0, 0);
    RF_REQUIRE(rf_index_checkpoint(ix, NULL) == RF_OK);
    RF_CHECK_INT(rf_index_seq(ix), 50);
    batch(ix, &e, 0, 10, 2, 10, 20); /* 10 updates, 10 deletes */
    batch(ix, &e, 50, 70, 1, 0, 0);  /* 20 new */
    batch(ix, &e, 5, 15, 3, 0, 0);   /* updates and re-creations of deleted ids */
    rf__index_abandon(ix);           /* no final checkpoint */
    ix = open_logged(dir, &log);
    RF_CHECK(strstr(log, "checkpoint_seq=50 ") != NULL);
    RF_CHECK(strstr(log, "replayed_rows=50 ") != NULL);
    RF_CHECK(strstr(log, "skipped") == NULL);
    free(log);
    RF_CHECK_INT(rf_index_seq(ix), 100);
    check_state(ix, dir, &e);
    /* The recovered index goes on working and a clean close checkpoints it. */
    batch(ix, &e, 20, 30, 4, 60, 65);
    check_state(ix, dir, &e);
    rf_index_close(ix);
    ix = open_logged(dir, &log);
    RF_CHECK(strstr(log, "replayed_rows=0 ") != NULL);
    free(log);
    check_state(ix, dir, &e);
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

static void flip_byte(const char *path, long off)
{
    FILE *fp = fopen(path, "r+b");
    int c;
    RF_REQUIRE(fp);
    RF_REQUIRE(fseek(fp, off, SEEK_SET) == 0);
    c = fgetc(fp);
    RF_REQUIRE(c != EOF);
    RF_REQUIRE(fseek(fp, off, SEEK_SET) == 0);
    fputc(c ^ 0x40, fp);
    fclose(fp);
}

static void test_corrupt_checkpoints(void)
{
    char *dir = rf_test_tmpdir("ixcor");
    expect_t e = {0};
    rf_index_t *ix = tl_open(dir, DIM, 0);
    char *log = NULL, *p30, *p40;
    struct stat sb;
    batch(ix, &e, 0, 30, 1, 0, 0);
    RF_REQUIRE(rf_index_checkpoint(ix, NULL) == RF_OK); /* seq 30 */
    batch(ix, &e, 30, 40, 1, 0, 0);
    RF_REQUIRE(rf_index_checkpoint(ix, NULL) == RF_OK); /* seq 40 */
    batch(ix, &e, 0, 5, 2, 35, 40);
    rf__index_abandon(ix);
    p30 = rf__index_ckpt_path(dir, 30);
    p40 = rf__index_ckpt_path(dir, 40);
    RF_REQUIRE(stat(p40, &sb) == 0);

    /* A flipped payload byte: the newest is skipped, the older one is used. */
    flip_byte(p40, sb.st_size / 2);
    ix = open_logged(dir, &log);
    RF_CHECK(strstr(log, "hash mismatch") != NULL);
    RF_CHECK(strstr(log, "checkpoint_seq=30 ") != NULL);
    free(log);
    check_state(ix, dir, &e);
    rf__index_abandon(ix);

    /* A flipped header byte (the seq field) is caught too. */
    flip_byte(p40, sb.st_size / 2); /* payload restored */
    flip_byte(p40, 17);
    ix = open_logged(dir, &log);
    RF_CHECK(strstr(log, "checkpoint skipped") != NULL);
    RF_CHECK(strstr(log, "checkpoint_seq=30 ") != NULL);
    free(log);
    check_state(ix, dir, &e);
    rf__index_abandon(ix);
    flip_byte(p40, 17);
    ix = open_logged(dir, &log);
    RF_CHECK(strstr(log, "checkpoint_seq=40 ") != NULL);
    free(log);
    check_state(ix, dir, &e);
    rf__index_abandon(ix);

    /* A truncated newest checkpoint. */
    RF_REQUIRE(truncate(p40, sb.st_size - 100) == 0);
    ix = open_logged(dir, &log);
    RF_CHECK(strstr(log, "payload length") != NULL);
    RF_CHECK(strstr(log, "checkpoint_seq=30 ") != NULL);
    free(log);
    check_state(ix, dir, &e);
    rf__index_abandon(ix);
    RF_REQUIRE(truncate(p40, 10) == 0);
    ix = open_logged(dir, &log);
    RF_CHECK(strstr(log, "shorter than the header") != NULL);
    free(log);
    rf__index_abandon(ix);

    /* Both bad: a full rebuild from the store. */
    RF_REQUIRE(truncate(p30, 0) == 0);
    ix = open_logged(dir, &log);
    RF_CHECK(strstr(log, "checkpoint_seq=-1 ") != NULL);
    RF_CHECK(strstr(log, "full rebuild") != NULL);
    free(log);
    check_state(ix, dir, &e);
    rf__index_abandon(ix);

    /* None at all: a full rebuild too. */
    unlink(p30);
    unlink(p40);
    ix = open_logged(dir, &log);
    RF_CHECK(strstr(log, "full rebuild") != NULL);
    RF_CHECK(strstr(log, "skipped") == NULL);
    free(log);
    check_state(ix, dir, &e);
    rf_index_close(ix);
    free(p30);
    free(p40);
    rf_test_rmtree(dir);
    free(dir);
}

/* A checkpoint from another store that is ahead of this one is refused. */
static void test_foreign_checkpoint(void)
{
    char *a = rf_test_tmpdir("ixfa"), *b = rf_test_tmpdir("ixfb");
    expect_t ea = {0}, eb = {0};
    rf_index_t *ix = tl_open(a, DIM, 0);
    char *log = NULL, *src, *dst, *data;
    size_t len = 0;
    batch(ix, &ea, 0, 40, 1, 0, 0);
    rf_index_close(ix); /* index-40.ckpt */
    ix = tl_open(b, DIM, 0);
    batch(ix, &eb, 0, 5, 7, 0, 0);
    rf__index_abandon(ix);
    src = rf__index_ckpt_path(a, 40);
    dst = rf__index_ckpt_path(b, 40);
    data = rf_test_read_file(src, &len);
    RF_REQUIRE(data);
    RF_REQUIRE(rf_file_write_atomic(dst, data, len, NULL) == RF_OK);
    ix = open_logged(b, &log);
    RF_CHECK(strstr(log, "ahead of the store") != NULL);
    free(log);
    check_state(ix, b, &eb);
    /* The next checkpoint of b removes the stale foreign file. */
    batch(ix, &eb, 5, 6, 7, 0, 0);
    RF_REQUIRE(rf_index_checkpoint(ix, NULL) == RF_OK);
    RF_CHECK(access(dst, F_OK) != 0);
    rf_index_close(ix);
    free(data);
    free(src);
    free(dst);
    rf_test_rmtree(a);
    rf_test_rmtree(b);
    free(a);
    free(b);
}

/* At most two checkpoints are kept; interrupted writes are swept; a close without
 * changes writes nothing new; the background thread checkpoints on its own. */
static void test_retention_and_thread(void)
{
    char *dir = rf_test_tmpdir("ixret");
    expect_t e = {0};
    rf_index_t *ix = tl_open(dir, DIM, 0);
    int64_t seqs[8];
    char *tmp, *st;
    int n;
    for (int i = 0; i < 5; i++) {
        batch(ix, &e, i * 10, i * 10 + 10, 1, 0, 0);
        RF_REQUIRE(rf_index_checkpoint(ix, NULL) == RF_OK);
    }
    n = ckpt_files(dir, seqs, 8);
    RF_CHECK_INT(n, 2);
    RF_CHECK((seqs[0] == 40 && seqs[1] == 50) || (seqs[0] == 50 && seqs[1] == 40));
    rf_index_close(ix); /* nothing changed: no new file */
    RF_CHECK_INT(ckpt_files(dir, seqs, 8), 2);
    tmp = rf_xasprintf("%s/index-60.ckpt.tmp.12345", dir);
    RF_REQUIRE(rf_file_write_atomic(tmp, "partial", 7, NULL) == RF_OK);
    ix = tl_open(dir, DIM, 20);
    RF_CHECK(access(tmp, F_OK) != 0);
    check_state(ix, dir, &e);
    /* The checkpoint thread picks up a change without being asked. */
    batch(ix, &e, 50, 60, 1, 0, 0);
    {
        int64_t deadline = rf_mono_ms() + 10000;
        int found = 0;
        while (!found && rf_mono_ms() < deadline) {
            st = rf_index_status_json(ix);
            found = st && strstr(st, "\"checkpoint_seq\":60") != NULL;
            free(st);
            if (!found)
                rf_sleep_ms(5);
        }
        RF_CHECK(found);
    }
    RF_CHECK_INT(ckpt_files(dir, seqs, 8), 2);
    rf_index_close(ix);
    free(tmp);
    rf_test_rmtree(dir);
    free(dir);
}

RF_TEST_MAIN(test_replay_after_crash, test_corrupt_checkpoints, test_foreign_checkpoint,
             test_retention_and_thread)
