/* bench_ready.c - time to ready after a restart at scale: a store of N records (default
 * 1000000 x 384, loaded through rf_index_apply in large batches, no embedding calls) with
 * its checkpoint, then rf_index_open timed against two baselines measured in the same run:
 * reading the checkpoint files (the newest manifest and the segment files) from disk, and
 * opening with no checkpoint (a full rebuild from the store's records).  Serves
 * INVARIANT(index-is-a-view) by measuring what a checkpoint saves.
 *
 * Usage: bench_ready [--n N] [--dim D] [--batch B] [--runs R] [--rebuild-runs R2]
 *                    [--factory F] [--segment-size S] [--dir DIR]
 * Prints a short table and `key=value` lines (medians of R runs, in ms) for bench/run.sh.
 */
#include "index/index.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"
#include "index/index_int.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void die(const char *what, const rf_err_t *err)
{
    fprintf(stderr, "bench_ready: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
    exit(1);
}

/* A random unit vector: the values do not matter to loading, only the bytes. */
static void vec_make(float *v, int dim)
{
    double n = 0;
    for (int d = 0; d < dim; d++) {
        v[d] = (float)((double)(rnd() >> 11) / 9007199254740992.0 - 0.5);
        n += (double)v[d] * v[d];
    }
    n = sqrt(n);
    for (int d = 0; d < dim; d++)
        v[d] = (float)(v[d] / n);
}

/* Upserts records 0..n-1 in batches of `batch`, each batch with its Kafka offset. */
static void load(rf_index_t *ix, int n, int dim, int batch)
{
    rf_index_op_t *ops = rf_xcalloc((size_t)batch, sizeof(*ops));
    float *vecs = rf_xmalloc((size_t)batch * (size_t)dim * sizeof(float));
    char(*ids)[24] = rf_xmalloc((size_t)batch * sizeof(*ids));
    char(*texts)[96] = rf_xmalloc((size_t)batch * sizeof(*texts));
    char(*meta)[32] = rf_xmalloc((size_t)batch * sizeof(*meta));
    rf_err_t err;
    for (int base = 0; base < n; base += batch) {
        int cnt = n - base < batch ? n - base : batch;
        rf_index_offset_t off = {"bench", 0, base + cnt};
        rf_index_batch_t b = {.ops = ops, .op_cnt = (size_t)cnt, .offsets = &off, .offset_cnt = 1};
        for (int i = 0; i < cnt; i++) {
            float *v = vecs + (size_t)i * (size_t)dim;
            vec_make(v, dim);
            snprintf(ids[i], sizeof(ids[i]), "bench.items:%d", base + i);
            snprintf(texts[i], sizeof(texts[i]),
                     "item %d: a record of the time-to-ready benchmark, about eighty bytes long",
                     base + i);
            snprintf(meta[i], sizeof(meta[i]), "{\"cat\":\"c%d\"}", (base + i) % 100);
            ops[i] = bench_upsert(ids[i], "bench.items", texts[i], meta[i], v, "bench", base + i);
        }
        if (rf_index_apply(ix, &b, NULL, &err))
            die("apply", &err);
    }
    free(ops);
    free(vecs);
    free(ids);
    free(texts);
    free(meta);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_dbl);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Opens the index and returns the milliseconds rf_index_open took (then closes it). */
static double open_ms(const rf_index_opts_t *o, int64_t *records)
{
    rf_index_t *ix = NULL;
    rf_err_t err;
    int64_t t0 = rf_mono_us();
    double ms;
    if (rf_index_open(o, &ix, &err))
        die("open", &err);
    ms = (double)(rf_mono_us() - t0) / 1000.0;
    if (records)
        *records = rf_index_record_count(ix);
    /* Background work started by the open (none for flat segments) must not leak into
     * the next measurement. */
    if (rf__index_maint_wait(ix, 3600 * 1000))
        die("maintenance did not finish", NULL);
    rf_index_close(ix);
    return ms;
}

/* Reads one file with read() into buf; returns its size. */
static size_t read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t total = 0;
    ssize_t r;
    if (fd < 0)
        die(path, NULL);
    while ((r = read(fd, buf, cap)) > 0)
        total += (size_t)r;
    close(fd);
    if (r < 0)
        die(path, NULL);
    return total;
}

/* The baseline: reads the newest manifest and every segment file; returns ms and bytes. */
static double files_ms(const char *dir, int64_t *bytes)
{
    size_t cap = (size_t)16 << 20;
    char *buf = rf_xmalloc(cap), *newest = NULL;
    DIR *d = opendir(dir);
    struct dirent *de;
    long long best = -1;
    int64_t t0, total = 0;
    if (!d)
        die(dir, NULL);
    while ((de = readdir(d))) {
        long long seq;
        if (sscanf(de->d_name, "index-%lld.ckpt", &seq) == 1 &&
            strstr(de->d_name, ".tmp") == NULL && seq > best) {
            best = seq;
            free(newest);
            newest = rf_xstrdup(de->d_name);
        }
    }
    if (!newest)
        die("no checkpoint written", NULL);
    t0 = rf_mono_us();
    {
        char *p = rf_xasprintf("%s/%s", dir, newest);
        total += (int64_t)read_file(p, buf, cap);
        free(p);
    }
    rewinddir(d);
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (!strncmp(de->d_name, "seg-", 4) && l > 4 && !strcmp(de->d_name + l - 4, ".seg")) {
            char *p = rf_xasprintf("%s/%s", dir, de->d_name);
            total += (int64_t)read_file(p, buf, cap);
            free(p);
        }
    }
    *bytes = total;
    closedir(d);
    free(newest);
    free(buf);
    return (double)(rf_mono_us() - t0) / 1000.0;
}

/* Removes the checkpoint files, so that the next open rebuilds from the store. */
static void ckpt_remove(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    if (!d)
        die(dir, NULL);
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if ((!strncmp(de->d_name, "index-", 6) && l > 5 && !strcmp(de->d_name + l - 5, ".ckpt")) ||
            (!strncmp(de->d_name, "seg-", 4) && l > 4 && !strcmp(de->d_name + l - 4, ".seg"))) {
            char *p = rf_xasprintf("%s/%s", dir, de->d_name);
            if (unlink(p))
                die(p, NULL);
            free(p);
        }
    }
    closedir(d);
}

static int64_t dir_bytes(const char *dir, const char *name)
{
    char *p = rf_xasprintf("%s/%s", dir, name);
    struct stat sb;
    int64_t v = stat(p, &sb) == 0 ? (int64_t)sb.st_size : 0;
    free(p);
    return v;
}

int main(int argc, char **argv)
{
    int n = 1000000, dim = 384, batch = 5000, runs = 3, rebuild_runs = 1, made = 0;
    int64_t seg = 0, records = 0, bytes = 0, t0;
    const char *factory = "Flat";
    char *dir = NULL;
    rf_index_opts_t o = {0};
    rf_index_t *ix = NULL;
    rf_err_t err;
    double *ready, *files, *rebuild, t_load, ready_med, files_med, rebuild_med;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n"))
            n = (int)strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--dim"))
            dim = (int)strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--batch"))
            batch = (int)strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--runs"))
            runs = (int)strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--rebuild-runs"))
            rebuild_runs = (int)strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--segment-size"))
            seg = strtoll(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--factory"))
            factory = argv[i + 1];
        else if (!strcmp(argv[i], "--dir"))
            dir = rf_xstrdup(argv[i + 1]);
        else {
            fprintf(stderr, "bench_ready: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (n < 1 || n > 100000000 || dim < 8 || dim > 8192 || batch < 1 || batch > 100000 ||
        runs < 1 || runs > 100 || rebuild_runs < 0 || rebuild_runs > 100) {
        fprintf(stderr, "bench_ready: bad sizes\n");
        return 2;
    }
    if (!dir) {
        const char *base = getenv("TMPDIR");
        dir = rf_xasprintf("%s/rf-bench-ready-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(dir))
            die("mkdtemp", NULL);
        made = 1;
    }
    rf_log_setup(RF_LOG_WARN, RF_LOG_FORMAT_TEXT, getenv("RF_BENCH_DEBUG") ? "index" : NULL, NULL);
    o.dir = dir;
    o.dim = dim;
    o.segment_size = seg;
    o.factory = factory;

    /* The store and its checkpoint: everything applied, background builds done, and the
     * final checkpoint written by rf_index_close. */
    if (rf_index_open(&o, &ix, &err))
        die("open", &err);
    t0 = rf_mono_us();
    load(ix, n, dim, batch);
    t_load = (double)(rf_mono_us() - t0) / 1e6;
    if (rf__index_maint_wait(ix, 4 * 3600 * 1000))
        die("segment builds did not finish", NULL);
    rf_index_close(ix);

    ready = rf_xcalloc((size_t)runs, sizeof(*ready));
    files = rf_xcalloc((size_t)runs, sizeof(*files));
    rebuild = rf_xcalloc((size_t)(rebuild_runs ? rebuild_runs : 1), sizeof(*rebuild));
    /* Interleaved, so that both see the same page cache and machine load. */
    for (int r = 0; r < runs; r++) {
        files[r] = files_ms(dir, &bytes);
        ready[r] = open_ms(&o, &records);
        if (records != n) {
            fprintf(stderr, "bench_ready: %lld records after the open, expected %d\n",
                    (long long)records, n);
            return 1;
        }
        fprintf(stderr, "bench_ready: run %d: read files %.0f ms, open %.0f ms\n", r + 1, files[r],
                ready[r]);
    }
    for (int r = 0; r < rebuild_runs; r++) {
        ckpt_remove(dir);
        rebuild[r] = open_ms(&o, &records);
        if (records != n)
            die("the rebuild lost records", NULL);
        fprintf(stderr, "bench_ready: rebuild %d: %.0f ms\n", r + 1, rebuild[r]);
    }
    ready_med = median(ready, runs);
    files_med = median(files, runs);
    rebuild_med = rebuild_runs ? median(rebuild, rebuild_runs) : 0;

    printf("bench_ready: %d x %d, factory %s, batches of %d, %d runs\n", n, dim, factory, batch,
           runs);
    printf("%-52s %12s\n", "measure", "value");
    printf("%-52s %12.0f\n", "load through rf_index_apply, records/s", n / t_load);
    printf("%-52s %12.1f\n", "store.db, MB", (double)dir_bytes(dir, "store.db") / 1e6);
    printf("%-52s %12.1f\n", "checkpoint files read, MB", (double)bytes / 1e6);
    printf("%-52s %12.0f\n", "read the checkpoint files, ms", files_med);
    printf("%-52s %12.0f\n", "rf_index_open from the checkpoint, ms", ready_med);
    if (rebuild_runs)
        printf("%-52s %12.0f\n", "rf_index_open without a checkpoint (rebuild), ms", rebuild_med);
    printf("n=%d\ndim=%d\nfactory=%s\nruns=%d\nrebuild_runs=%d\nload_per_s=%.0f\n"
           "ckpt_bytes=%lld\nfiles_ms=%.0f\nready_ms=%.0f\nrebuild_ms=%.0f\n",
           n, dim, factory, runs, rebuild_runs, n / t_load, (long long)bytes, files_med, ready_med,
           rebuild_med);
    if (made)
        rf_rmtree(dir);
    free(ready);
    free(files);
    free(rebuild);
    free(dir);
    return 0;
}
