/* test_index_crash.c - crash safety: a child process (this binary re-executed with
 * --child) applies deterministic batches in a loop, acknowledging each on a pipe, with a
 * background checkpoint thread running; the parent SIGKILLs it at a random moment, then
 * reopens the store and checks it holds exactly whole batches (never part of one), at
 * least every acknowledged one, with offsets, seq and the vector index to match.
 * Covers INVARIANT(offsets-with-state) and INVARIANT(index-is-a-view).
 */
#include "index/index.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "index/index_int.h"
#include "index_testlib.h"
#include "rf_test.h"

#define DIM  16
#define NIDS 200
#define NSRC 3
#define RUNS 12

/* ==== The deterministic workload ==== */

typedef struct gen {
    rf_index_op_t ops[24];
    char names[24][16], srcs[24][8], texts[24][32];
    float vecs[24][DIM];
    size_t n;
    rf_index_offset_t off;
    rf_index_dead_t dead;
    rf_index_batch_t b;
} gen_t;

/* Batch number bn: 1..20 ops, the offset bn + 1, a dead letter every 5th batch. */
static void gen_batch(int64_t bn, gen_t *g)
{
    uint64_t rng = (uint64_t)bn * 7919 + 17;
    memset(g, 0, sizeof(*g));
    g->n = 1 + tl_below(&rng, 20);
    for (size_t j = 0; j < g->n; j++) {
        uint32_t kind = tl_below(&rng, 100);
        int id = (int)tl_below(&rng, NIDS);
        snprintf(g->names[j], sizeof(g->names[j]), "s%d:%d", id % NSRC, id);
        snprintf(g->srcs[j], sizeof(g->srcs[j]), "s%d", id % NSRC);
        if (kind < 72) {
            snprintf(g->texts[j], sizeof(g->texts[j]), "%lld:%zu", (long long)bn, j);
            tl_vec_for((uint64_t)bn, j, DIM, g->vecs[j]);
            g->ops[j] = tl_upsert(g->names[j], g->srcs[j], g->texts[j], g->vecs[j]);
        } else if (kind < 98) {
            g->ops[j] = tl_delete(g->names[j], g->srcs[j]);
        } else {
            g->ops[j] = tl_truncate(g->srcs[j]);
        }
        g->ops[j].offset = bn;
    }
    g->off.topic = "t";
    g->off.partition = 0;
    g->off.next_offset = bn + 1;
    g->b.ops = g->ops;
    g->b.op_cnt = g->n;
    g->b.offsets = &g->off;
    g->b.offset_cnt = 1;
    if (bn % 5 == 0) {
        g->dead.topic = "t";
        g->dead.offset = bn;
        g->dead.value = rf_slice("x", 1);
        g->dead.reason = "test";
        g->b.dead = &g->dead;
        g->b.dead_cnt = 1;
    }
}

/* The state after batches 0..cnt-1: text per id ("" absent), seq, dead letters. */
typedef struct model {
    char text[NIDS][32];
    int64_t seq, dead;
} model_t;

static void model_build(int64_t cnt, model_t *m)
{
    static gen_t g;
    memset(m, 0, sizeof(*m));
    for (int64_t bn = 0; bn < cnt; bn++) {
        gen_batch(bn, &g);
        m->dead += (int64_t)g.b.dead_cnt;
        for (size_t j = 0; j < g.n; j++) {
            const rf_index_op_t *op = &g.ops[j];
            if (op->kind == RF_INDEX_TRUNCATE) {
                int s = op->source[1] - '0';
                for (int i = s; i < NIDS; i += NSRC) {
                    if (m->text[i][0])
                        m->seq++;
                    m->text[i][0] = '\0';
                }
                continue;
            }
            int id = (int)strtol(strchr(op->id, ':') + 1, NULL, 10);
            if (op->kind == RF_INDEX_UPSERT) {
                snprintf(m->text[id], sizeof(m->text[id]), "%s", op->text);
                m->seq++;
            } else {
                if (m->text[id][0])
                    m->seq++;
                m->text[id][0] = '\0';
            }
        }
    }
}

/* ==== The child: apply and acknowledge until killed ==== */

static int child_main(const char *dir, int fd)
{
    rf_index_opts_t o = {.dir = dir, .dim = DIM, .checkpoint_interval_ms = 5};
    rf_index_t *ix = NULL;
    rf_err_t err;
    static gen_t g;
    int64_t bn;
    if (rf_index_open(&o, &ix, &err)) {
        fprintf(stderr, "child: open: %s\n", err.msg);
        return 2;
    }
    bn = rf_index_offset_get(ix, "t", 0);
    if (bn < 0)
        bn = 0;
    for (;; bn++) {
        gen_batch(bn, &g);
        if (rf_index_apply(ix, &g.b, NULL, &err)) {
            fprintf(stderr, "child: apply %lld: %s\n", (long long)bn, err.msg);
            return 3;
        }
        /* Acknowledged only after apply returned: the store must hold it from now on. */
        if (write(fd, &bn, sizeof(bn)) != (ssize_t)sizeof(bn))
            return 4;
        if (bn % 7 == 0 && rf_index_checkpoint(ix, &err)) {
            fprintf(stderr, "child: checkpoint: %s\n", err.msg);
            return 5;
        }
    }
}

/* ==== The parent ==== */

/* Reads acks until `want` more arrived or the pipe closed; returns the last one (or
 * last unchanged) and sets *eof at end of stream.  Fails the test on a stall. */
static int64_t read_acks(int fd, int64_t last, int want, int *eof)
{
    int64_t deadline = rf_mono_ms() + 20000;
    int got = 0;
    *eof = 0;
    while (want < 0 || got < want) {
        struct pollfd p = {fd, POLLIN, 0};
        int64_t v;
        ssize_t n;
        int left = (int)(deadline - rf_mono_ms());
        RF_REQUIRE(left > 0);
        if (poll(&p, 1, left) < 0 && errno != EINTR)
            RF_REQUIRE(0);
        if (!p.revents)
            continue;
        n = read(fd, &v, sizeof(v));
        if (n == 0) {
            *eof = 1;
            break;
        }
        if (n < 0 && errno == EINTR)
            continue;
        RF_REQUIRE(n == (ssize_t)sizeof(v));
        RF_CHECK_INT(v, last + 1);
        last = v;
        got++;
    }
    return last;
}

static void check_store(const char *dir, int64_t acked)
{
    static model_t m;
    rf_index_t *ix = tl_open(dir, DIM, 0);
    char *path = rf_xasprintf("%s/store.db", dir);
    int64_t cnt = rf_index_offset_get(ix, "t", 0), present = 0;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int seen[NIDS] = {0};
    if (cnt < 0)
        cnt = 0;
    /* Every acknowledged batch is there; at most the one in flight beyond. */
    RF_CHECK(cnt >= acked + 1 && cnt <= acked + 2);
    model_build(cnt, &m);
    fprintf(stderr, "store holds %lld batches (%s)\n", (long long)cnt,
            cnt == acked + 2 ? "one committed but not acknowledged" : "all acknowledged");
    RF_CHECK_INT(rf_index_seq(ix), m.seq);
    RF_CHECK_INT(rf_index_dead_count(ix), m.dead);
    RF_CHECK_INT(tl_count(dir, "changelog"), m.seq);
    RF_REQUIRE(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    RF_REQUIRE(sqlite3_prepare_v2(db, "SELECT id, text FROM records", -1, &st, NULL) == SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        int n = (int)strtol(strchr(id, ':') + 1, NULL, 10);
        RF_CHECK(n >= 0 && n < NIDS && !seen[n]);
        seen[n] = 1;
        RF_CHECK_STR((const char *)sqlite3_column_text(st, 1), m.text[n]);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    for (int i = 0; i < NIDS; i++) {
        RF_CHECK(seen[i] == (m.text[i][0] != '\0'));
        present += seen[i];
    }
    RF_CHECK_INT(rf_index_record_count(ix), present);
    /* The vector index holds exactly the records, and each one's current version. */
    RF_CHECK(tl_vectors_match_store(ix, dir));
    for (int i = 0; i < NIDS; i++) {
        rf_index_results_t res;
        long long bn;
        size_t j;
        float q[DIM];
        if (!m.text[i][0])
            continue;
        RF_REQUIRE(sscanf(m.text[i], "%lld:%zu", &bn, &j) == 2);
        tl_vec_for((uint64_t)bn, j, DIM, q);
        RF_REQUIRE(rf_index_search(ix, q, 1, &res, NULL) == RF_OK);
        RF_CHECK(res.cnt == 1 && strcmp(res.hits[0].text, m.text[i]) == 0);
        rf_index_results_fini(&res);
    }
    rf_index_close(ix);
    free(path);
}

static void test_kill9(void)
{
    char *dir = rf_test_tmpdir("ixcrash");
    uint64_t rng = 99;
    int64_t acked = -1;
    for (int run = 0; run < RUNS; run++) {
        int fds[2], status = 0, eof = 0;
        char fdarg[16];
        pid_t pid;
        int64_t spin;
        RF_REQUIRE(pipe(fds) == 0);
        snprintf(fdarg, sizeof(fdarg), "%d", fds[1]);
        pid = fork();
        RF_REQUIRE(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            execl("/proc/self/exe", "test_index_crash", "--child", dir, fdarg, (char *)NULL);
            _exit(127);
        }
        close(fds[1]);
        /* Let a random number of batches through, then kill at a random instant. */
        acked = read_acks(fds[0], acked, 1 + (int)tl_below(&rng, 60), &eof);
        RF_REQUIRE(!eof);
        spin = rf_mono_us() + (int64_t)tl_below(&rng, 4000);
        while (rf_mono_us() < spin)
            ;
        kill(pid, SIGKILL);
        RF_REQUIRE(waitpid(pid, &status, 0) == pid);
        RF_CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        acked = read_acks(fds[0], acked, -1, &eof); /* acks written before the kill */
        close(fds[0]);
        fprintf(stderr, "run %d: killed after batch %lld was acknowledged\n", run,
                (long long)acked);
        check_store(dir, acked);
        /* check_store may leave one unacknowledged batch in: the next child continues
         * from the store's offset, so the acks continue from there. */
        {
            rf_index_t *ix = tl_open(dir, DIM, 0);
            acked = rf_index_offset_get(ix, "t", 0) - 1;
            rf_index_close(ix);
        }
    }
    RF_CHECK(acked > RUNS);
    rf_test_rmtree(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    static const rf_test_case_t cases[] = {{"test_kill9", test_kill9}};
    if (argc == 4 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2], (int)strtol(argv[3], NULL, 10));
    return rf__test_run(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));
}
