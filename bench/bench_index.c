/* bench_index.c - measures index/: apply throughput (batches of 1000 x 384 dims),
 * flat search latency at 100k x 384, checkpoint write time and recovery time (from a
 * checkpoint, with a changelog replay, and a full rebuild from the store).
 *
 * Usage: bench_index [records (default 100000)] [dir (default a new one under $TMPDIR)]
 * Prints one table; every number is wall time on this machine.
 */
#include "index/index.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "index/index_int.h"

#define DIM   384
#define BATCH 1000

static uint64_t rng_state = 12345;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void vec_rand(float *v)
{
    double n = 0;
    for (int i = 0; i < DIM; i++) {
        v[i] = (float)((double)(rnd() >> 11) / 9007199254740992.0 - 0.5);
        n += (double)v[i] * v[i];
    }
    for (int i = 0; i < DIM; i++)
        v[i] = (float)(v[i] / __builtin_sqrt(n));
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void die(const char *what, const rf_err_t *err)
{
    fprintf(stderr, "bench_index: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

/* Applies records [from, to) (ids "b:<n>", version ver) in batches of BATCH. */
static double load(rf_index_t *ix, int from, int to, int ver)
{
    static float vecs[BATCH][DIM];
    static char ids[BATCH][24], texts[BATCH][64];
    rf_index_op_t ops[BATCH];
    int64_t t0 = rf_mono_us();
    rf_err_t err;
    for (int base = from; base < to; base += BATCH) {
        int n = to - base < BATCH ? to - base : BATCH;
        rf_index_offset_t off = {"bench", 0, base + n};
        rf_index_batch_t b = {ops, (size_t)n, NULL, 0, &off, 1};
        memset(ops, 0, sizeof(ops));
        for (int i = 0; i < n; i++) {
            snprintf(ids[i], sizeof(ids[i]), "b:%d", base + i);
            snprintf(texts[i], sizeof(texts[i]), "record %d version %d with some text", base + i,
                     ver);
            vec_rand(vecs[i]);
            ops[i].kind = RF_INDEX_UPSERT;
            ops[i].id = ids[i];
            ops[i].source = "b";
            ops[i].text = texts[i];
            ops[i].vec = vecs[i];
            ops[i].model = "bench";
            ops[i].topic = "bench";
            ops[i].offset = base + i;
        }
        if (rf_index_apply(ix, &b, NULL, &err))
            die("apply", &err);
    }
    return (double)(rf_mono_us() - t0) / 1e6;
}

static void rm_ckpts(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (strstr(de->d_name, ".ckpt")) {
            char *p = rf_xasprintf("%s/%s", dir, de->d_name);
            unlink(p);
            free(p);
        }
    }
    if (d)
        closedir(d);
}

static rf_index_t *open_timed(const char *dir, double *secs)
{
    rf_index_opts_t o = {dir, DIM, 0};
    rf_index_t *ix = NULL;
    rf_err_t err;
    int64_t t0 = rf_mono_us();
    if (rf_index_open(&o, &ix, &err))
        die("open", &err);
    *secs = (double)(rf_mono_us() - t0) / 1e6;
    return ix;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 100000;
    char *dir = argc > 2 ? rf_xstrdup(argv[2]) : NULL;
    int made = 0;
    rf_index_t *ix;
    rf_err_t err;
    double secs, t_ins, t_upd;
    int64_t lat[400];
    float q[DIM];
    struct stat sb;
    char *ck;
    if (n < BATCH)
        n = BATCH;
    if (!dir) {
        const char *base = getenv("TMPDIR");
        dir = rf_xasprintf("%s/rf-bench-index-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(dir))
            die("mkdtemp", NULL);
        made = 1;
    }
    rf_log_setup(RF_LOG_WARN, RF_LOG_FORMAT_TEXT, getenv("RF_BENCH_DEBUG") ? "index" : NULL, NULL);
    ix = open_timed(dir, &secs);
    t_ins = load(ix, 0, n, 1);
    t_upd = load(ix, 0, 10 * BATCH, 2); /* updates: remove + add in FAISS */

    for (int i = 0; i < 400; i++) {
        rf_index_results_t res;
        int64_t t0;
        vec_rand(q);
        t0 = rf_mono_us();
        if (rf_index_search(ix, q, 10, &res, &err))
            die("search", &err);
        lat[i] = rf_mono_us() - t0;
        rf_index_results_fini(&res);
    }
    qsort(lat, 400, sizeof(lat[0]), cmp_i64);

    printf("%-46s %12s\n",
           "measure ("
           "384 dims)",
           "value");
    printf("%-46s %12.0f\n", "apply insert, records/s (batches of 1000)", n / t_ins);
    printf("%-46s %12.0f\n", "apply update, records/s (batches of 1000)", 10 * BATCH / t_upd);
    printf("%-46s %12.2f\n", "search k=10 p50, ms", (double)lat[200] / 1000);
    printf("%-46s %12.2f\n", "search k=10 p99, ms", (double)lat[396] / 1000);
    {
        char *buf = NULL;
        size_t len = 0;
        int64_t seq, t0 = rf_mono_us();
        if (rf__index_vec_save(ix, 64, &buf, &len, &seq, &err))
            die("serialise", &err);
        printf("%-46s %12.3f\n", "checkpoint serialise incl. buffer setup, s",
               (double)(rf_mono_us() - t0) / 1e6);
        free(buf);
    }
    {
        int64_t t0 = rf_mono_us();
        if (rf_index_checkpoint(ix, &err))
            die("checkpoint", &err);
        secs = (double)(rf_mono_us() - t0) / 1e6;
    }
    ck = rf__index_ckpt_path(dir, rf_index_seq(ix));
    stat(ck, &sb);
    printf("%-46s %12.3f\n", "checkpoint write, s", secs);
    printf("%-46s %12.1f\n", "checkpoint size, MB", (double)sb.st_size / 1e6);
    rf__index_abandon(ix);

    ix = open_timed(dir, &secs);
    printf("%-46s %12.3f\n", "recovery from checkpoint, s", secs);
    load(ix, n - 10 * BATCH, n, 3);
    rf__index_abandon(ix);
    ix = open_timed(dir, &secs);
    printf("%-46s %12.3f\n", "recovery: checkpoint + replay 10000 rows, s", secs);
    rf__index_abandon(ix);
    rm_ckpts(dir);
    ix = open_timed(dir, &secs);
    printf("%-46s %12.3f\n", "recovery: full rebuild from the store, s", secs);
    printf("%-46s %12d\n", "records", (int)rf_index_record_count(ix));
    rf_index_close(ix);
    if (made) {
        /* Only the files an index creates live in a directory made here. */
        const char *names[] = {"store.db", "store.db-wal", "store.db-shm", "LOCK"};
        rm_ckpts(dir);
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            char *p = rf_xasprintf("%s/%s", dir, names[i]);
            unlink(p);
            free(p);
        }
        rmdir(dir);
    }
    free(ck);
    free(dir);
    return 0;
}
