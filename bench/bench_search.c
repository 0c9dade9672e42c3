/* bench_search.c - the in-process baseline of the HTTP search benchmark (bench/http.sh):
 * opens the state directory `ragfeed run` left (rf_index_open, the server stopped) and runs
 * the same query texts the wrk script sends, from the same number of threads, for a fixed
 * time, in three depths:
 *   embed+search  rf_embed_hash + rf_index_search (k): what POST /v1/search does, minus HTTP
 *   search        rf_index_search on vectors embedded beforehand (no embedding)
 *   faiss         FAISS alone: faiss_Index_search (k) on each sealed ANN segment, top k
 *                 merged; no embedding, no tombstone selector, no store reads, and not the
 *                 flat tail (the index module scans that itself; the line says how many
 *                 of the vectors the FAISS segments hold)
 * Thread t of T takes queries t, t+T, ... as the wrk script does.
 *
 * usage: bench_search --dir STATE --queries FILE [--threads T] [--secs S] [--k K]
 *                     [--dim D] [--warmup S] [--modes embed,search,faiss]
 * Before the measured modes, embed+search runs unmeasured for --warmup seconds (default 1):
 * the first searches after an open fill the store's read connections and page cache.
 * prints one line per mode: bench_search mode=M threads=T queries=N seconds=S qps=X
 *                           p50_ms=X p99_ms=X empty=N vectors=N of=N
 * (empty counts searches that returned fewer than k hits: it must be 0; vectors is how many
 * of the `of` live vectors the mode searched).
 */
#include "embed/embed.h"
#include "index/index.h"

#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/index_int.h"

#define MAX_QUERIES  100000
#define MAX_LINE     4096
#define MAX_LAT      4000000 /* latencies kept per thread */
#define MAX_SEGMENTS 1024

enum { MODE_EMBED = 1, MODE_SEARCH = 2, MODE_FAISS = 3 };

/* The FAISS indexes of one snapshot: its sealed ANN segments (the flat tail is scanned by
 * the index module's own code, not by FAISS, so it has no FAISS part to measure). */
typedef struct raw_ix {
    FaissIndex *ix[MAX_SEGMENTS];
    size_t cnt;
    size_t vectors, total; /* vectors in those segments, and in the whole snapshot */
    rf__index_snap_t *snap;
} raw_ix_t;

typedef struct shared {
    rf_index_t *ix;
    raw_ix_t raw;
    char **texts;
    float *vecs;
    size_t nq;
    int dim, k, threads, mode;
    int64_t deadline_us;
    atomic_int failed;
} shared_t;

typedef struct worker {
    shared_t *sh;
    int tid;
    int64_t *lat;
    size_t n;
    long empty;
    pthread_t thr;
} worker_t;

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_search: %s%s%s\n", what, msg ? ": " : "", msg ? msg : "");
    exit(1);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Reads up to MAX_QUERIES non-empty lines; *n is their count. */
static char **queries_read(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    char line[MAX_LINE];
    char **out = rf_xcalloc(MAX_QUERIES, sizeof(*out));
    size_t cnt = 0;
    if (!f)
        die("cannot open the query file", path);
    while (cnt < MAX_QUERIES && fgets(line, sizeof(line), f)) {
        size_t len = strcspn(line, "\r\n");
        line[len] = '\0';
        if (len)
            out[cnt++] = rf_xstrdup(line);
    }
    fclose(f);
    if (!cnt)
        die("no queries in", path);
    *n = cnt;
    return out;
}

static void raw_open(shared_t *sh)
{
    raw_ix_t *raw = &sh->raw;
    raw->snap = rf__index_snap_acquire(sh->ix);
    if (!raw->snap)
        die("no vector index snapshot", NULL);
    for (size_t i = 0; i < raw->snap->cnt; i++) {
        const rf__index_view_t *v = &raw->snap->v[i];
        raw->total += v->live_n;
        if (v->seg->kind == RF__SEG_ANN && v->n && raw->cnt < MAX_SEGMENTS) {
            raw->ix[raw->cnt++] = v->seg->ann;
            raw->vectors += v->live_n;
        }
    }
}

static void raw_close(raw_ix_t *raw)
{
    rf__index_snap_release(raw->snap);
    memset(raw, 0, sizeof(*raw));
}

/* Top k over every FAISS index of the snapshot; returns the number of hits. */
static int raw_search(const shared_t *sh, const float *q, float *dist, idx_t *lab, float *best)
{
    int got = 0;
    for (size_t i = 0; i < sh->raw.cnt; i++) {
        if (faiss_Index_search(sh->raw.ix[i], 1, q, sh->k, dist, lab))
            die("faiss search", faiss_get_last_error());
        for (int j = 0; j < sh->k && lab[j] >= 0; j++) {
            float d = dist[j];
            int at;
            if (got == sh->k && d <= best[got - 1])
                continue;
            at = got < sh->k ? got++ : got - 1;
            while (at > 0 && best[at - 1] < d) {
                best[at] = best[at - 1];
                at--;
            }
            best[at] = d;
        }
    }
    return got;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    shared_t *sh = w->sh;
    float *vec = rf_xmalloc((size_t)sh->dim * sizeof(float));
    float *dist = rf_xmalloc((size_t)sh->k * sizeof(float));
    float *best = rf_xmalloc((size_t)sh->k * sizeof(float));
    idx_t *lab = rf_xmalloc((size_t)sh->k * sizeof(idx_t));
    size_t qi = (size_t)w->tid % sh->nq;
    /* FAISS would start an OpenMP team for a single query; rf_index_query sets the same. */
    omp_set_num_threads(1);
    w->lat = rf_xmalloc(MAX_LAT * sizeof(*w->lat));
    while (w->n < MAX_LAT && rf_mono_us() < sh->deadline_us) {
        int64_t t0 = rf_mono_us();
        size_t hits;
        if (sh->mode == MODE_FAISS) {
            hits = (size_t)raw_search(sh, sh->vecs + qi * (size_t)sh->dim, dist, lab, best);
        } else {
            rf_index_results_t res;
            rf_err_t err;
            const float *q = sh->vecs + qi * (size_t)sh->dim;
            if (sh->mode == MODE_EMBED) {
                rf_embed_hash(sh->texts[qi], strlen(sh->texts[qi]), sh->dim, vec);
                q = vec;
            }
            if (rf_index_search(sh->ix, q, sh->k, &res, &err)) {
                fprintf(stderr, "bench_search: search: %s\n", err.msg);
                atomic_store(&sh->failed, 1);
                break;
            }
            hits = res.cnt;
            rf_index_results_fini(&res);
        }
        w->lat[w->n++] = rf_mono_us() - t0;
        w->empty += hits < (size_t)sh->k;
        qi = (qi + (size_t)sh->threads) % sh->nq;
    }
    free(vec);
    free(dist);
    free(best);
    free(lab);
    return NULL;
}

/* Runs `mode` for secs seconds from sh->threads threads; prints its line unless quiet. */
static void run_mode(shared_t *sh, int mode, const char *name, int secs, int quiet)
{
    worker_t *ws = rf_xcalloc((size_t)sh->threads, sizeof(*ws));
    int64_t *all, t0, t1;
    size_t n = 0, at = 0;
    size_t vectors, total;
    long empty = 0;
    sh->mode = mode;
    raw_open(sh);
    total = sh->raw.total;
    vectors = mode == MODE_FAISS ? sh->raw.vectors : total;
    if (!vectors) {
        fprintf(stderr, "bench_search: mode %s: no vectors to search, skipped\n", name);
        raw_close(&sh->raw);
        free(ws);
        return;
    }
    t0 = rf_mono_us();
    sh->deadline_us = t0 + (int64_t)secs * 1000000;
    for (int i = 0; i < sh->threads; i++) {
        ws[i].sh = sh;
        ws[i].tid = i;
        if (pthread_create(&ws[i].thr, NULL, worker_main, &ws[i]))
            die("pthread_create", NULL);
    }
    for (int i = 0; i < sh->threads; i++) {
        pthread_join(ws[i].thr, NULL);
        n += ws[i].n;
        empty += ws[i].empty;
    }
    t1 = rf_mono_us();
    raw_close(&sh->raw);
    if (atomic_load(&sh->failed) || !n)
        die("searches failed", name);
    all = rf_xmalloc(n * sizeof(*all));
    for (int i = 0; i < sh->threads; i++) {
        memcpy(all + at, ws[i].lat, ws[i].n * sizeof(*all));
        at += ws[i].n;
        free(ws[i].lat);
    }
    qsort(all, n, sizeof(*all), cmp_i64);
    if (!quiet)
        printf("bench_search mode=%s threads=%d queries=%zu seconds=%.3f qps=%.1f p50_ms=%.3f "
               "p99_ms=%.3f empty=%ld vectors=%zu of=%zu\n",
               name, sh->threads, n, (double)(t1 - t0) / 1e6, (double)n / ((double)(t1 - t0) / 1e6),
               (double)all[(n - 1) / 2] / 1000.0,
               (double)all[(size_t)((double)(n - 1) * 0.99)] / 1000.0, empty, vectors, total);
    fflush(stdout);
    free(all);
    free(ws);
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *qfile = NULL, *modes = "embed,search,faiss";
    int secs = 5, warmup = 1;
    shared_t sh;
    rf_index_opts_t o;
    rf_err_t err;
    memset(&sh, 0, sizeof(sh));
    sh.threads = 2;
    sh.k = 10;
    sh.dim = 384;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "--queries"))
            qfile = argv[i + 1];
        else if (!strcmp(argv[i], "--threads"))
            sh.threads = (int)strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--secs"))
            secs = (int)strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--k"))
            sh.k = (int)strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--dim"))
            sh.dim = (int)strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--warmup"))
            warmup = (int)strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--modes"))
            modes = argv[i + 1];
        else {
            fprintf(stderr, "bench_search: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!dir || !qfile || argc % 2 != 1 || sh.threads < 1 || sh.threads > 256 || secs < 1 ||
        secs > 3600 || warmup < 0 || warmup > 60 || sh.k < 1 || sh.k > 1000 || sh.dim < 8 ||
        sh.dim > 8192) {
        fprintf(stderr, "usage: bench_search --dir STATE --queries FILE [--threads T] [--secs S] "
                        "[--k K] [--dim D] [--warmup S] [--modes embed,search,faiss]\n");
        return 2;
    }
    rf_log_setup(RF_LOG_WARN, RF_LOG_FORMAT_TEXT, NULL, NULL);
    sh.texts = queries_read(qfile, &sh.nq);
    sh.vecs = rf_xmalloc(sh.nq * (size_t)sh.dim * sizeof(float));
    for (size_t i = 0; i < sh.nq; i++)
        rf_embed_hash(sh.texts[i], strlen(sh.texts[i]), sh.dim, sh.vecs + i * (size_t)sh.dim);
    /* The options `ragfeed run` uses by default: a zero field takes the same default. */
    memset(&o, 0, sizeof(o));
    o.dir = dir;
    o.dim = sh.dim;
    if (rf_index_open(&o, &sh.ix, &err))
        die("rf_index_open", err.msg);
    /* Background work left over from the server (a segment not yet rebuilt) would compete
     * with the searches: wait for it, as http.sh waits before running wrk. */
    if (rf__index_maint_wait(sh.ix, 600000) != RF_OK)
        die("segment rebuild did not finish", NULL);
    if (warmup)
        run_mode(&sh, MODE_EMBED, "warmup", warmup, 1);
    if (strstr(modes, "embed"))
        run_mode(&sh, MODE_EMBED, "embed_search", secs, 0);
    if (strstr(modes, "search"))
        run_mode(&sh, MODE_SEARCH, "search", secs, 0);
    if (strstr(modes, "faiss"))
        run_mode(&sh, MODE_FAISS, "faiss", secs, 0);
    rf_index_close(sh.ix);
    for (size_t i = 0; i < sh.nq; i++)
        free(sh.texts[i]);
    free(sh.texts);
    free(sh.vecs);
    return 0;
}
