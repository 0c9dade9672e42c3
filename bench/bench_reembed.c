/* bench_reembed.c - re-embedding a store into a new model generation.
 *
 * Loads N records (built-in embedder, dim 384), then migrates them twice through the
 * same code `ragfeed reembed` runs (rf__app_rebatch_prepare + rf_index_apply, then the
 * switch): to the built-in embedder at dim 256, and to an OpenAI-compatible endpoint (the
 * fake provider at a fixed latency, dim 384).  Each rate sits beside its baseline from
 * the same run: the embedder alone (hash: texts/s in-process; endpoint: the ceiling
 * concurrency x batch / latency).  Searches run in another thread the whole time: their
 * p99 while idle and during each migration is reported.
 *
 * Usage: bench_reembed [--records N] [--fake PATH] [--latency-ms L] [--json FILE]
 */
#include "app/app_reembed.h"
#include "fake/fake_spawn.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#define DIM0 384

static const char *const words[] = {"kafka", "stream",  "vector", "index",  "search", "record",
                                    "table", "change",  "event",  "model",  "embed",  "query",
                                    "fresh", "context", "offset", "commit", "store",  "replay",
                                    "audit", "history", "schema", "column", "tenant", "filter"};

static void text_of(int i, char *buf, size_t n)
{
    uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ull;
    size_t off = (size_t)snprintf(buf, n, "item %d", i);
    for (int w = 0; w < 12 && off < n; w++) {
        x ^= x >> 29;
        x *= 0xBF58476D1CE4E5B9ull;
        off += (size_t)snprintf(buf + off, n - off, " %s", words[x % 24]);
    }
}

/* ==== Searches in the background ==== */

typedef struct searcher {
    rf_index_t *ix;
    volatile int stop;
    pthread_mutex_t mu;
    double *lat; /* ms */
    size_t n, cap;
    int records;
    int64_t failures, empty;
} searcher_t;

static void *search_main(void *arg)
{
    searcher_t *s = arg;
    uint64_t x = 12345;
    char text[256];
    float q[1024];
    while (!__atomic_load_n(&s->stop, __ATOMIC_RELAXED)) {
        int dim = 0;
        int64_t gen = rf_index_gen_active(s->ix, &dim), t0;
        rf_index_query_t query;
        rf_index_results_t res;
        rf_rc rc;
        double ms;
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        text_of((int)((x >> 33) % (uint64_t)s->records), text, sizeof(text));
        /* Searches are measured only while the built-in generation is served. */
        rf_embed_hash(text, strlen(text), dim, q);
        memset(&query, 0, sizeof(query));
        query.vec = q;
        query.k = 10;
        query.min_score = -2;
        query.gen = gen;
        t0 = rf_mono_us();
        rc = rf_index_query(s->ix, &query, &res, NULL);
        ms = (double)(rf_mono_us() - t0) / 1000.0;
        if (rc == RF_EAGAIN)
            continue;
        pthread_mutex_lock(&s->mu);
        if (rc)
            s->failures++;
        else if (!res.cnt)
            s->empty++;
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 4096;
            s->lat = rf_xrealloc(s->lat, s->cap * sizeof(*s->lat));
        }
        s->lat[s->n++] = ms;
        pthread_mutex_unlock(&s->mu);
        if (!rc)
            rf_index_results_fini(&res);
    }
    return NULL;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* p50 / p99 of the latencies recorded since *from; moves *from to the end. */
static void window(searcher_t *s, size_t *from, double *p50, double *p99, size_t *cnt)
{
    double *w;
    size_t n;
    pthread_mutex_lock(&s->mu);
    n = s->n - *from;
    w = rf_xmalloc((n ? n : 1) * sizeof(*w));
    memcpy(w, s->lat + *from, n * sizeof(*w));
    *from = s->n;
    pthread_mutex_unlock(&s->mu);
    qsort(w, n, sizeof(*w), dbl_cmp);
    *p50 = n ? w[n / 2] : 0;
    *p99 = n ? w[(size_t)((double)(n - 1) * 0.99)] : 0;
    *cnt = n;
    free(w);
}

/* ==== Migration ==== */

typedef struct mig {
    double seconds, switch_ms, rate;
    int64_t tokens, embedded;
} mig_t;

static int migrate(rf_index_t *ix, const rf_conf_t *base, const char *desc, int dim, mig_t *m)
{
    rf__app_gen_t *g = NULL;
    rf_err_t err = {0};
    int64_t cursor = 0, t0 = rf_mono_ms(), gen = 0, missing = -1;
    memset(m, 0, sizeof(*m));
    if (rf__app_gen_open(base, 0, dim, desc, &g, &err) ||
        rf_index_gen_create(ix, dim, desc, &gen, &err)) {
        fprintf(stderr, "bench_reembed: %s\n", err.msg);
        rf__app_gen_free(g);
        return -1;
    }
    g->gen = gen;
    for (;;) {
        rf__app_rebatch_t rb;
        rf_index_batch_t b;
        if (rf__app_rebatch_prepare(ix, g, &cursor, 256, &rb, &err)) {
            fprintf(stderr, "bench_reembed: %s\n", err.msg);
            rf__app_rebatch_clear(&rb);
            rf__app_gen_free(g);
            return -1;
        }
        if (!rb.n) {
            rf__app_rebatch_clear(&rb);
            break;
        }
        rf__app_rebatch_batch(&rb, gen, &b);
        if (rf_index_apply(ix, &b, NULL, &err)) {
            fprintf(stderr, "bench_reembed: %s\n", err.msg);
            rf__app_rebatch_clear(&rb);
            rf__app_gen_free(g);
            return -1;
        }
        m->embedded += (int64_t)rb.ngv;
        m->tokens += rb.tokens;
        rf__app_rebatch_clear(&rb);
    }
    m->seconds = (double)(rf_mono_ms() - t0) / 1000.0;
    m->rate = (double)m->embedded / m->seconds;
    rf_index_gen_missing(ix, gen, &missing, NULL, NULL);
    if (missing != 0) {
        fprintf(stderr, "bench_reembed: %lld records lack a vector\n", (long long)missing);
        rf__app_gen_free(g);
        return -1;
    }
    rf__app_gen_free(g);
    return 0;
}

static int activate(rf_index_t *ix, mig_t *m)
{
    rf_err_t err = {0};
    int64_t t0 = rf_mono_us();
    if (rf_index_gen_activate(ix, rf_index_gen_second(ix, NULL, NULL), NULL, &err)) {
        fprintf(stderr, "bench_reembed: switch: %s\n", err.msg);
        return -1;
    }
    m->switch_ms = (double)(rf_mono_us() - t0) / 1000.0;
    return 0;
}

int main(int argc, char **argv)
{
    int records = 100000, latency = 50;
    const char *fake_bin = NULL, *json_path = NULL;
    char *dir = NULL, tmpl[] = "/tmp/rf-bench-reembed-XXXXXX", text[256];
    rf_conf_t *base = rf_conf_new();
    rf_index_t *ix = NULL;
    rf_index_opts_t io;
    rf_err_t err = {0};
    searcher_t s;
    pthread_t thr;
    size_t from = 0, cnt_idle, cnt_h, cnt_f;
    double p50_idle, p99_idle, p50_h, p99_h, p50_f, p99_f, hash_rate, ceiling;
    mig_t mh, mf;
    fake_t fk;
    char *desc0, *desc_h, *desc_f, url[128];
    int64_t t0;
    int conc = 4, batch = 64;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--records") && i + 1 < argc)
            records = (int)strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--fake") && i + 1 < argc)
            fake_bin = argv[++i];
        else if (!strcmp(argv[i], "--latency-ms") && i + 1 < argc)
            latency = (int)strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json_path = argv[++i];
        else {
            fprintf(stderr, "usage: bench_reembed [--records N] [--fake PATH] [--latency-ms L] "
                            "[--json FILE]\n");
            return 2;
        }
    }
#ifdef RF_FAKE_PROVIDER
    if (!fake_bin)
        fake_bin = RF_FAKE_PROVIDER;
#endif
    if (!fake_bin || records < 1000) {
        fprintf(stderr, "bench_reembed: --fake PATH and --records >= 1000 needed\n");
        return 2;
    }
    rf__log_level = getenv("RF_BENCH_VERBOSE") ? RF_LOG_DEBUG : RF_LOG_WARN;
    dir = mkdtemp(tmpl);
    {
        char v[32];
        snprintf(v, sizeof(v), "%d", conc);
        rf_conf_set(base, "embed.concurrency", v, RF_CONF_ORIGIN_CLI, "bench", &err);
        snprintf(v, sizeof(v), "%d", batch);
        rf_conf_set(base, "embed.batch.size", v, RF_CONF_ORIGIN_CLI, "bench", &err);
        rf_conf_set(base, "embed.batch.chars", "1000000", RF_CONF_ORIGIN_CLI, "bench", &err);
    }
    desc0 = rf__app_gen_desc_make(base, NULL, NULL, DIM0, NULL);
    memset(&io, 0, sizeof(io));
    io.dir = dir;
    io.dim = DIM0;
    io.gen_desc = desc0;
    io.factory = "IVF256,Flat";
    io.segment_size = 50000;
    if (rf_index_open(&io, &ix, &err)) {
        fprintf(stderr, "bench_reembed: %s\n", err.msg);
        return 1;
    }
    /* Load */
    t0 = rf_mono_ms();
    {
        enum { B = 2000 };
        rf_index_op_t *ops = rf_xcalloc(B, sizeof(*ops));
        float *vecs = rf_xmalloc((size_t)B * DIM0 * sizeof(float));
        char(*ids)[32] = rf_xmalloc((size_t)B * 32), (*texts)[256] = rf_xmalloc((size_t)B * 256);
        for (int i = 0; i < records; i += B) {
            int n = records - i < B ? records - i : B;
            rf_index_batch_t b;
            memset(&b, 0, sizeof(b));
            for (int j = 0; j < n; j++) {
                snprintf(ids[j], 32, "items:%d", i + j);
                text_of(i + j, texts[j], 256);
                rf_embed_hash(texts[j], strlen(texts[j]), DIM0, vecs + (size_t)j * DIM0);
                ops[j] =
                    bench_upsert(ids[j], "items", texts[j], NULL, vecs + (size_t)j * DIM0, NULL, 0);
                ops[j].model = "hash:hash-v1"; /* the built-in embedder made these */
            }
            b.ops = ops;
            b.op_cnt = (size_t)n;
            if (rf_index_apply(ix, &b, NULL, &err)) {
                fprintf(stderr, "bench_reembed: load: %s\n", err.msg);
                return 1;
            }
        }
        free(ops);
        free(vecs);
        free(ids);
        free(texts);
    }
    fprintf(stderr, "loaded %d records in %.1f s\n", records, (double)(rf_mono_ms() - t0) / 1000.0);

    /* Baseline of the built-in embedder: the same texts, in-process, nothing else. */
    {
        float v[256];
        t0 = rf_mono_us();
        for (int i = 0; i < records; i++) {
            text_of(i, text, sizeof(text));
            rf_embed_hash(text, strlen(text), 256, v);
        }
        hash_rate = (double)records / ((double)(rf_mono_us() - t0) / 1e6);
    }

    memset(&s, 0, sizeof(s));
    s.ix = ix;
    s.records = records;
    pthread_mutex_init(&s.mu, NULL);
    pthread_create(&thr, NULL, search_main, &s);
    rf_sleep_ms(3000);
    window(&s, &from, &p50_idle, &p99_idle, &cnt_idle);

    desc_h = rf__app_gen_desc_make(base, "hash", "hash-v2", 256, NULL);
    if (migrate(ix, base, desc_h, 256, &mh))
        return 1;
    window(&s, &from, &p50_h, &p99_h, &cnt_h);
    if (activate(ix, &mh))
        return 1;
    /* Back to the first generation (a rollback), so the second run starts from dim 384. */
    {
        mig_t tmp;
        if (activate(ix, &tmp) || rf_index_gen_drop(ix, rf_index_gen_second(ix, NULL, NULL), &err))
            return 1;
    }
    {
        char lat[16];
        const char *args[] = {"--dim", "384", "--latency-ms", lat, NULL};
        snprintf(lat, sizeof(lat), "%d", latency);
        if (fake_start(&fk, fake_bin, args, 10000)) {
            fprintf(stderr, "bench_reembed: cannot start %s\n", fake_bin);
            return 1;
        }
    }
    snprintf(url, sizeof(url), "%s/v1/embeddings", fk.base);
    desc_f = rf__app_gen_desc_make(base, "openai", "fake", 384, url);
    {
        /* Samples taken during the switches are not idle ones: dropped. */
        double a, b;
        size_t c;
        window(&s, &from, &a, &b, &c);
    }
    if (migrate(ix, base, desc_f, 384, &mf))
        return 1;
    window(&s, &from, &p50_f, &p99_f, &cnt_f);
    __atomic_store_n(&s.stop, 1, __ATOMIC_RELAXED);
    pthread_join(thr, NULL);
    if (activate(ix, &mf))
        return 1;
    fake_stop(&fk);
    ceiling = (double)conc * batch * 1000.0 / latency;

    printf("\n%-64s %12s %12s %8s\n", "re-embedding (records, searches in parallel)", "value",
           "baseline", "ratio");
    printf("%-64s %12.0f %12.0f %8.3f\n",
           "records/s, built-in embedder 384->256 vs the embedder alone", mh.rate, hash_rate,
           mh.rate / hash_rate);
    printf("%-64s %12.0f %12.0f %8.3f\n", "records/s, endpoint (fake, 50 ms) vs its ceiling",
           mf.rate, ceiling, mf.rate / ceiling);
    printf("%-64s %12.2f %12.2f %8.2f\n", "search p99 ms during the built-in migration vs idle",
           p99_h, p99_idle, p99_idle > 0 ? p99_h / p99_idle : 0);
    printf("%-64s %12.2f %12.2f %8.2f\n", "search p99 ms during the endpoint migration vs idle",
           p99_f, p99_idle, p99_idle > 0 ? p99_f / p99_idle : 0);
    printf("%-64s %12.0f %12s %8s\n", "switch (one transaction + index swap), ms, built-in",
           mh.switch_ms, "-", "-");
    printf("%-64s %12.0f %12s %8s\n", "switch (one transaction + index swap), ms, endpoint",
           mf.switch_ms, "-", "-");
    printf("records %d; searches: %zu idle, %zu + %zu during; %lld failed, %lld empty; "
           "endpoint tokens %lld\n",
           records, cnt_idle, cnt_h, cnt_f, (long long)s.failures, (long long)s.empty,
           (long long)mf.tokens);
    if (json_path) {
        FILE *fp = fopen(json_path, "w");
        if (fp) {
            fprintf(fp,
                    "{\"reembed\":{\"records\":%d,\"hash_records_per_s\":%.0f,"
                    "\"hash_embedder_per_s\":%.0f,\"endpoint_records_per_s\":%.0f,"
                    "\"endpoint_ceiling_per_s\":%.0f,\"latency_ms\":%d,\"search_p99_idle_ms\":%.3f,"
                    "\"search_p99_hash_ms\":%.3f,\"search_p99_endpoint_ms\":%.3f,"
                    "\"switch_ms_hash\":%.0f,\"switch_ms_endpoint\":%.0f,\"search_failures\":%lld,"
                    "\"search_empty\":%lld}}\n",
                    records, mh.rate, hash_rate, mf.rate, ceiling, latency, p99_idle, p99_h, p99_f,
                    mh.switch_ms, mf.switch_ms, (long long)s.failures, (long long)s.empty);
            fclose(fp);
        }
    }
    rf_index_close(ix);
    rf_rmtree(dir);
    free(desc0);
    free(desc_h);
    free(desc_f);
    free(s.lat);
    rf_conf_free(base);
    return s.failures || s.empty ? 1 : 0;
}
