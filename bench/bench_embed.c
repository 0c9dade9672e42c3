/* bench_embed.c - embedding throughput through rf_embed_run.
 *
 * Against tests/fake/fake_provider with a fixed latency per request, texts/s is compared
 * with the theoretical ceiling concurrency x batch / latency.  With --use-server DIR (a
 * directory holding tools/use-server with its node_modules installed), texts/s through
 * the openai provider is compared with that server's own in-process maximum.
 *
 * Usage: bench_embed [--fake PATH] [--latency-ms L] [--seconds S] [--use-server DIR]
 */
#include "embed/embed.h"
#include "fake/fake_spawn.h"

#include <string.h>
#include <sys/resource.h>

#define DIM 64

typedef struct result {
    size_t texts;
    double seconds;
    double cpu; /* this process's CPU seconds (user + system) during the run */
    rf_embed_stats_t st;
} result_t;

static rf_conf_t *mkcfg(const char *url, const char *model, int dim, int conc, int batch)
{
    rf_conf_t *cfg = rf_conf_new();
    rf_err_t err;
    char v[32];
    int rc = 0;
    rc |= rf_conf_set(cfg, "embed.provider", "openai", RF_CONF_ORIGIN_CLI, "bench", &err);
    rc |= rf_conf_set(cfg, "embed.url", url, RF_CONF_ORIGIN_CLI, "bench", &err);
    rc |= rf_conf_set(cfg, "embed.model", model, RF_CONF_ORIGIN_CLI, "bench", &err);
    snprintf(v, sizeof(v), "%d", dim);
    rc |= rf_conf_set(cfg, "embed.dim", v, RF_CONF_ORIGIN_CLI, "bench", &err);
    snprintf(v, sizeof(v), "%d", conc);
    rc |= rf_conf_set(cfg, "embed.concurrency", v, RF_CONF_ORIGIN_CLI, "bench", &err);
    snprintf(v, sizeof(v), "%d", batch);
    rc |= rf_conf_set(cfg, "embed.batch.size", v, RF_CONF_ORIGIN_CLI, "bench", &err);
    rc |= rf_conf_set(cfg, "embed.batch.chars", "1000000", RF_CONF_ORIGIN_CLI, "bench", &err);
    if (rc || rf_conf_finalize(cfg, 0, &err)) {
        fprintf(stderr, "bench_embed: config: %s\n", err.msg);
        exit(1);
    }
    return cfg;
}

/* Embeds n distinct texts in one rf_embed_run and times it. */
static result_t run_once(const rf_conf_t *cfg, size_t n, int dim)
{
    rf_embed_t *e = NULL;
    rf_err_t err;
    rf_embed_item_t *it = rf_xcalloc(n, sizeof(*it));
    float *vecs = rf_xmalloc(n * (size_t)dim * sizeof(float));
    char **texts = rf_xcalloc(n, sizeof(char *));
    result_t r = {n, 0, 0, {0}};
    int64_t t0;
    struct rusage u0, u1;
    for (size_t i = 0; i < n; i++) {
        texts[i] = rf_xasprintf("record %zu: order shipped to customer with tracking number %zu", i,
                                i * 7919);
        it[i].text = texts[i];
        it[i].len = strlen(texts[i]);
        it[i].out = vecs + i * (size_t)dim;
    }
    if (rf_embed_new(cfg, &e, &err)) {
        fprintf(stderr, "bench_embed: %s\n", err.msg);
        exit(1);
    }
    getrusage(RUSAGE_SELF, &u0);
    t0 = rf_mono_us();
    if (rf_embed_run(e, it, n, 60000, &err)) {
        fprintf(stderr, "bench_embed: run: %s\n", err.msg);
        exit(1);
    }
    r.seconds = (double)(rf_mono_us() - t0) / 1e6;
    getrusage(RUSAGE_SELF, &u1);
    r.cpu = (double)(u1.ru_utime.tv_sec - u0.ru_utime.tv_sec + u1.ru_stime.tv_sec -
                     u0.ru_stime.tv_sec) +
            (double)(u1.ru_utime.tv_usec - u0.ru_utime.tv_usec + u1.ru_stime.tv_usec -
                     u0.ru_stime.tv_usec) /
                1e6;
    rf_embed_stats_get(e, &r.st);
    for (size_t i = 0; i < n; i++) {
        if (!it[i].done) {
            fprintf(stderr, "bench_embed: item %zu not embedded: %s\n", i, it[i].reason);
            exit(1);
        }
        free(texts[i]);
    }
    rf_embed_free(e);
    free(texts);
    free(vecs);
    free(it);
    return r;
}

static void bench_fake(const char *bin, int latency_ms, double seconds)
{
    static const int confs[][2] = {{1, 16}, {4, 16}, {8, 32}, {16, 64}, {32, 64}};
    fake_t fk;
    char lat[16], url[128];
    const char *args[] = {"--latency-ms", lat, "--dim", "64", NULL};
    snprintf(lat, sizeof(lat), "%d", latency_ms);
    if (fake_start(&fk, bin, args, 10000)) {
        fprintf(stderr, "bench_embed: cannot start %s\n", bin);
        exit(1);
    }
    snprintf(url, sizeof(url), "%s/v1/embeddings", fk.base);
    printf("fake provider, %d ms per request, dim %d, base64\n", latency_ms, DIM);
    printf("%-6s %-6s %-8s %-9s %-10s %-10s %-6s %-8s %-7s\n", "conc", "batch", "texts", "seconds",
           "texts/s", "ceiling", "ratio", "requests", "cpu_s");
    for (size_t c = 0; c < sizeof(confs) / sizeof(confs[0]); c++) {
        int conc = confs[c][0], batch = confs[c][1];
        double ceiling = (double)conc * batch * 1000.0 / latency_ms;
        size_t n = (size_t)(ceiling * seconds);
        rf_conf_t *cfg = mkcfg(url, "fake", DIM, conc, batch);
        result_t r;
        n -= n % (size_t)batch;
        r = run_once(cfg, n, DIM);
        printf("%-6d %-6d %-8zu %-9.3f %-10.1f %-10.1f %-6.3f %-8llu %-7.3f\n", conc, batch,
               r.texts, r.seconds, (double)r.texts / r.seconds, ceiling,
               (double)r.texts / r.seconds / ceiling, (unsigned long long)r.st.requests, r.cpu);
        rf_conf_free(cfg);
    }
    fake_stop(&fk);
}

/* Runs `node server.mjs --selftest` and returns its texts_per_s. */
static double use_selftest(const char *dir, int batch, int texts)
{
    char *cmd = rf_xasprintf("cd '%s' && node server.mjs --selftest --batch %d --texts %d", dir,
                             batch, texts);
    FILE *p = popen(cmd, "r");
    char line[256];
    double tps = 0;
    free(cmd);
    if (!p)
        return 0;
    while (fgets(line, sizeof(line), p)) {
        const char *s = strstr(line, "texts_per_s=");
        if (s)
            tps = strtod(s + 12, NULL);
    }
    pclose(p);
    return tps;
}

static void bench_use(const char *dir)
{
    static const int confs[][2] = {{1, 32}, {2, 32}, {4, 16}};
    fake_t srv;
    char *script = rf_xasprintf("%s/server.mjs", dir), url[128];
    const char *argv[] = {"node", script, "--port", "0", "--watch-stdin", NULL};
    printf("\nUSE-Lite server (tools/use-server), dim 512, base64\n");
    printf("%-6s %-6s %-8s %-9s %-10s %-12s %-6s\n", "conc", "batch", "texts", "seconds", "texts/s",
           "server max", "ratio");
    for (size_t c = 0; c < sizeof(confs) / sizeof(confs[0]); c++) {
        int conc = confs[c][0], batch = confs[c][1];
        double max = use_selftest(dir, batch, 1024);
        rf_conf_t *cfg;
        result_t r;
        if (fake_spawn(&srv, argv, 60000)) {
            fprintf(stderr, "bench_embed: cannot start %s\n", script);
            exit(1);
        }
        snprintf(url, sizeof(url), "%s/v1/embeddings", srv.base);
        cfg = mkcfg(url, "use-lite", 512, conc, batch);
        run_once(cfg, (size_t)batch * 2, 512); /* warm-up */
        r = run_once(cfg, 1024, 512);
        printf("%-6d %-6d %-8zu %-9.3f %-10.1f %-12.1f %-6.3f\n", conc, batch, r.texts, r.seconds,
               (double)r.texts / r.seconds, max, max > 0 ? (double)r.texts / r.seconds / max : 0);
        rf_conf_free(cfg);
        fake_stop(&srv);
    }
    free(script);
}

int main(int argc, char **argv)
{
    const char *fake = RF_FAKE_PROVIDER, *use = NULL;
    int latency = 50;
    double seconds = 2.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--fake") && i + 1 < argc)
            fake = argv[++i];
        else if (!strcmp(argv[i], "--latency-ms") && i + 1 < argc)
            latency = (int)strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--use-server") && i + 1 < argc)
            use = argv[++i];
        else {
            fprintf(stderr, "usage: bench_embed [--fake PATH] [--latency-ms L] [--seconds S] "
                            "[--use-server DIR]\n");
            return 2;
        }
    }
    if (latency < 1)
        latency = 1;
    bench_fake(fake, latency, seconds);
    if (use)
        bench_use(use);
    return 0;
}
