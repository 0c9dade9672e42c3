/* bench_latency.c - produce-to-visible latency through read-your-writes
 * (INVARIANT(fresh-is-measurable), DESIGN.md #6), for bench/http.sh.
 *
 * Produces JSON rows {"body": TEXT} with keys PREFIX-<i> to TOPIC at a fixed rate for a
 * fixed time.  For every SAMPLE-th event, as soon as the producer's delivery report gives
 * its offset, a pool of worker threads (one libcurl easy handle each, kept alive) sends
 *   POST URL/v1/search {"query": TEXT, "k": 1,
 *                       "min_position": {"offsets": {"TOPIC/PARTITION": OFFSET}},
 *                       "wait_ms": WAIT}
 * and checks that the answer holds the record ID_PREFIX PREFIX-<i>.  Latency is the
 * response time minus the time of the produce call.  The baseline is Kafka alone: a plain
 * librdkafka consumer (fetch.wait.max.ms=20, as ragfeed's consumer) reading the same
 * topic in this process; its latency is the consume time minus the same produce time.
 *
 * usage: bench_latency --bootstrap HOST:PORT --topic T --url URL --rate R --secs S
 *          [--sample N] [--workers W] [--prefix P] [--id-prefix bench:] [--wait-ms MS]
 *          [--dump FILE]
 * --dump writes one line per sampled event: index, produce time (ms since the start),
 * produce-to-visible ms, produce-to-consume ms, and its state (ok, miss, timeout, ...).
 * prints one line: bench_latency rate=... achieved=... produced=... sampled=... ok=...
 *   misses=... timeouts=... errors=... p50_ms=... p99_ms=... max_ms=... kafka_p50_ms=...
 *   kafka_p99_ms=... send_delay_p99_ms=...
 * Exit status 0 when every sampled event was found, 3 when some were not, 1 on failure.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BODY  (64 * 1024) /* largest search answer kept (k=1: about 1 KiB) */
#define MAX_PARTS 1024
#define WORDS     6

enum {
    PROBE_NEW = 0,
    PROBE_QUEUED,
    PROBE_OK,       /* visible: the answer holds the id */
    PROBE_MISS,     /* answered 200 without the id */
    PROBE_TIMEOUT,  /* 504 position_timeout */
    PROBE_ERROR,    /* any other answer or transport failure */
    PROBE_NOT_SENT, /* the produce failed */
};

typedef struct probe {
    int64_t t_produce_us;
    int64_t t_dr_us;
    int64_t t_send_us;
    int64_t t_visible_us;
    _Atomic int64_t t_consumed_us; /* set by the baseline consumer, 0 until then */
    int32_t partition;
    int64_t offset;
    int state;
    char key[64];
    char text[192];
} probe_t;

typedef struct bench {
    const char *bootstrap, *topic, *url, *prefix, *id_prefix, *dump;
    double rate;
    int secs, sample, workers, wait_ms;
    probe_t *probes;
    size_t probe_cap;
    /* Work queue of probe indexes whose offsets are known, and completion count. */
    pthread_mutex_t mu;
    pthread_cond_t cond, done_cond;
    size_t *queue;
    size_t q_head, q_tail, finished;
    int stop;
    /* Baseline consumer. */
    atomic_int consumer_stop, consumer_ready;
    atomic_long produce_failed;
    char first_error[256];
} bench_t;

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_latency: %s%s%s\n", what, msg ? ": " : "", msg ? msg : "");
    exit(1);
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p)
        die("out of memory", NULL);
    return p;
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* "probe PREFIX I" and a few pseudo-words: unique per event, so a k=1 search for the
 * text finds exactly that record (its own vector scores 1). */
static void text_make(const bench_t *b, long i, char *out, size_t cap)
{
    static const char *const syl[] = {"ka", "lo", "mi", "re", "su", "ta", "ne", "vo", "pi", "da",
                                      "ge", "ru", "fa", "si", "no", "be", "tu", "ma", "xe", "zo"};
    uint64_t s = (uint64_t)i * 7919u + 17u;
    size_t at = (size_t)snprintf(out, cap, "probe %s %ld", b->prefix, i);
    for (int w = 0; w < WORDS && at + 16 < cap; w++) {
        int n = 2 + (int)(rnd(&s) % 3);
        out[at++] = ' ';
        for (int k = 0; k < n; k++) {
            const char *p = syl[rnd(&s) % (sizeof(syl) / sizeof(syl[0]))];
            out[at++] = p[0];
            out[at++] = p[1];
        }
        out[at] = '\0';
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* p-th percentile in ms of v[0..n) (sorted in place); -1 when n is 0. */
static double pct_ms(int64_t *v, size_t n, double p)
{
    if (!n)
        return -1;
    qsort(v, n, sizeof(*v), cmp_i64);
    return (double)v[(size_t)((double)(n - 1) * p)] / 1000.0;
}

/* ==== Workers: one search per probe ==== */

typedef struct resp {
    char *buf;
    size_t len;
    int over;
} resp_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *opaque)
{
    resp_t *r = opaque;
    size_t n = size * nmemb;
    if (r->len + n > MAX_BODY) {
        r->over = 1;
        return n;
    }
    memcpy(r->buf + r->len, ptr, n);
    r->len += n;
    r->buf[r->len] = '\0';
    return n;
}

/* Keeps the first failure's description for the report. */
static void error_note(bench_t *b, const char *what, const char *detail, long code)
{
    pthread_mutex_lock(&b->mu);
    if (!b->first_error[0])
        snprintf(b->first_error, sizeof(b->first_error), "%s %.200s (%ld)", what, detail, code);
    pthread_mutex_unlock(&b->mu);
}

/* Whether the answer's results hold the id. */
static int answer_has(const char *body, const char *id)
{
    json_error_t jerr;
    json_t *doc = json_loads(body, 0, &jerr), *results;
    int found = 0;
    size_t i;
    json_t *hit;
    if (!doc)
        return 0;
    results = json_object_get(doc, "results");
    json_array_foreach(results, i, hit)
    {
        const char *got = json_string_value(json_object_get(hit, "id"));
        if (got && !strcmp(got, id))
            found = 1;
    }
    json_decref(doc);
    return found;
}

static void probe_send(bench_t *b, CURL *h, probe_t *p, resp_t *r)
{
    char tp[512], id[160];
    json_t *body;
    char *text;
    long code = 0;
    CURLcode cc;
    snprintf(tp, sizeof(tp), "%s/%d", b->topic, (int)p->partition);
    snprintf(id, sizeof(id), "%s%s", b->id_prefix, p->key);
    body = json_pack("{s:s, s:i, s:{s:{s:I}}, s:i}", "query", p->text, "k", 1, "min_position",
                     "offsets", tp, (json_int_t)p->offset, "wait_ms", b->wait_ms);
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        die("json_pack", NULL);
    r->len = 0;
    r->over = 0;
    r->buf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
    p->t_send_us = mono_us();
    cc = curl_easy_perform(h);
    p->t_visible_us = mono_us();
    free(text);
    if (cc != CURLE_OK) {
        p->state = PROBE_ERROR;
        error_note(b, "curl:", curl_easy_strerror(cc), (long)cc);
        return;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (code == 200 && !r->over)
        p->state = answer_has(r->buf, id) ? PROBE_OK : PROBE_MISS;
    else if (code == 504)
        p->state = PROBE_TIMEOUT;
    else {
        p->state = PROBE_ERROR;
        error_note(b, "HTTP answer", r->buf, code);
    }
}

static void *worker_main(void *arg)
{
    bench_t *b = arg;
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    char *url = xcalloc(strlen(b->url) + 16, 1);
    resp_t r = {xcalloc(MAX_BODY + 1, 1), 0, 0};
    if (!h || !hdr)
        die("curl_easy_init", NULL);
    snprintf(url, strlen(b->url) + 16, "%s/v1/search", b->url);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)b->wait_ms + 10000L);
    for (;;) {
        probe_t *p;
        pthread_mutex_lock(&b->mu);
        while (b->q_head == b->q_tail && !b->stop)
            pthread_cond_wait(&b->cond, &b->mu);
        if (b->q_head == b->q_tail) {
            pthread_mutex_unlock(&b->mu);
            break;
        }
        p = &b->probes[b->queue[b->q_head++]];
        pthread_mutex_unlock(&b->mu);
        probe_send(b, h, p, &r);
        pthread_mutex_lock(&b->mu);
        b->finished++;
        pthread_cond_broadcast(&b->done_cond);
        pthread_mutex_unlock(&b->mu);
    }
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    free(url);
    free(r.buf);
    return NULL;
}

/* ==== Producer ==== */

/* Delivery report (producer thread, inside rd_kafka_poll): a sampled event's offset is
 * known, so its search can go. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    bench_t *b = opaque;
    probe_t *p = m->_private;
    (void)rk;
    if (m->err)
        atomic_fetch_add(&b->produce_failed, 1);
    if (!p)
        return;
    pthread_mutex_lock(&b->mu);
    if (m->err) {
        p->state = PROBE_NOT_SENT;
        b->finished++;
        pthread_cond_broadcast(&b->done_cond);
    } else {
        p->t_dr_us = mono_us();
        p->partition = m->partition;
        p->offset = m->offset;
        p->state = PROBE_QUEUED;
        b->queue[b->q_tail++] = (size_t)(p - b->probes);
        pthread_cond_signal(&b->cond);
    }
    pthread_mutex_unlock(&b->mu);
}

static rd_kafka_conf_t *conf_make(const bench_t *b, const char *const *kv)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    if (rd_kafka_conf_set(conf, "bootstrap.servers", b->bootstrap, errstr, sizeof(errstr)))
        die("kafka config", errstr);
    for (; kv[0]; kv += 2)
        if (rd_kafka_conf_set(conf, kv[0], kv[1], errstr, sizeof(errstr)))
            die("kafka config", errstr);
    return conf;
}

/* The topic's partition count (the test broker creates a missing topic on request). */
static int partitions_get(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int64_t deadline = mono_us() + 20000000;
    int n = 0;
    while (!n && mono_us() < deadline) {
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && !md->topics[0].err)
                n = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
        }
        if (!n)
            rd_kafka_poll(rk, 100); /* the broker is creating the topic: ask again */
    }
    rd_kafka_topic_destroy(rkt);
    if (n <= 0 || n > MAX_PARTS)
        die("no partitions for the topic", topic);
    return n;
}

/* ==== Baseline: a plain consumer ==== */

typedef struct consumer {
    bench_t *b;
    rd_kafka_t *rk;
    pthread_t thr;
} consumer_t;

static void *consumer_main(void *arg)
{
    consumer_t *c = arg;
    bench_t *b = c->b;
    size_t plen = strlen(b->prefix);
    while (!atomic_load(&b->consumer_stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 50);
        atomic_store(&b->consumer_ready, 1);
        if (!m)
            continue;
        if (!m->err && m->key && m->key_len > plen + 1 && m->key_len < 64 &&
            !memcmp(m->key, b->prefix, plen) && ((const char *)m->key)[plen] == '-') {
            char num[64];
            long i;
            memcpy(num, (const char *)m->key + plen + 1, m->key_len - plen - 1);
            num[m->key_len - plen - 1] = '\0';
            i = strtol(num, NULL, 10);
            if (i >= 0 && i % b->sample == 0 && (size_t)(i / b->sample) < b->probe_cap) {
                probe_t *p = &b->probes[i / b->sample];
                int64_t zero = 0;
                atomic_compare_exchange_strong(&p->t_consumed_us, &zero, mono_us());
            }
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

/* Assigns every partition at its current end, so the consumer sees exactly what is
 * produced from now on, and starts polling. */
static void consumer_start(bench_t *b, consumer_t *c, rd_kafka_t *prod, int nparts)
{
    static const char *const kv[] = {"group.id",
                                     "bench-latency",
                                     "enable.auto.commit",
                                     "false",
                                     "enable.partition.eof",
                                     "false",
                                     "fetch.wait.max.ms",
                                     "20",
                                     NULL};
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(nparts);
    char errstr[512];
    int64_t deadline;
    c->b = b;
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf_make(b, kv), errstr, sizeof(errstr));
    if (!c->rk)
        die("consumer", errstr);
    rd_kafka_poll_set_consumer(c->rk);
    for (int p = 0; p < nparts; p++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(prod, b->topic, p, &lo, &hi, 10000))
            die("watermarks", b->topic);
        rd_kafka_topic_partition_list_add(parts, b->topic, p)->offset = hi;
    }
    if (rd_kafka_assign(c->rk, parts))
        die("assign", NULL);
    rd_kafka_topic_partition_list_destroy(parts);
    if (pthread_create(&c->thr, NULL, consumer_main, c))
        die("pthread_create", NULL);
    deadline = mono_us() + 10000000;
    while (!atomic_load(&b->consumer_ready) && mono_us() < deadline)
        rd_kafka_poll(prod, 10);
}

static void consumer_stop(bench_t *b, consumer_t *c)
{
    atomic_store(&b->consumer_stop, 1);
    pthread_join(c->thr, NULL);
    rd_kafka_consumer_close(c->rk);
    rd_kafka_destroy(c->rk);
}

/* ==== Main ==== */

static void produce_one(bench_t *b, rd_kafka_t *rk, long i)
{
    char key[64], text[192], value[320];
    probe_t *p = NULL;
    rd_kafka_resp_err_t e;
    snprintf(key, sizeof(key), "%s-%ld", b->prefix, i);
    text_make(b, i, text, sizeof(text));
    snprintf(value, sizeof(value), "{\"body\":\"%s\"}", text);
    if (i % b->sample == 0 && (size_t)(i / b->sample) < b->probe_cap) {
        p = &b->probes[i / b->sample];
        snprintf(p->key, sizeof(p->key), "%s", key);
        snprintf(p->text, sizeof(p->text), "%s", text);
    }
    for (;;) {
        if (p)
            p->t_produce_us = mono_us();
        e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(b->topic), RD_KAFKA_V_KEY(key, strlen(key)),
                              RD_KAFKA_V_VALUE(value, strlen(value)),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(p),
                              RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(rk, 5);
    }
    if (e)
        die("produce", rd_kafka_err2str(e));
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_latency --bootstrap HOST:PORT --topic T --url URL --rate R "
                    "--secs S [--sample N] [--workers W] [--prefix P] [--id-prefix ID] "
                    "[--wait-ms MS] [--dump FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const char *const prod_kv[] = {"linger.ms", "5", "queue.buffering.max.messages",
                                          "1000000", NULL};
    bench_t b;
    rd_kafka_t *rk;
    char errstr[512];
    consumer_t cons;
    pthread_t *thr;
    int64_t t0, t_last = 0, end, deadline, *lat, *klat, *delay;
    long total, produced = 0;
    size_t nlat = 0, nk = 0, nd = 0, cnt[PROBE_NOT_SENT + 1] = {0};
    int nparts;
    memset(&b, 0, sizeof(b));
    b.prefix = "lat";
    b.id_prefix = "bench:";
    b.sample = 10;
    b.workers = 128;
    b.wait_ms = 10000;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (!strcmp(o, "--bootstrap"))
            b.bootstrap = v;
        else if (!strcmp(o, "--topic"))
            b.topic = v;
        else if (!strcmp(o, "--url"))
            b.url = v;
        else if (!strcmp(o, "--rate"))
            b.rate = strtod(v, NULL);
        else if (!strcmp(o, "--secs"))
            b.secs = (int)strtol(v, NULL, 10);
        else if (!strcmp(o, "--sample"))
            b.sample = (int)strtol(v, NULL, 10);
        else if (!strcmp(o, "--workers"))
            b.workers = (int)strtol(v, NULL, 10);
        else if (!strcmp(o, "--prefix"))
            b.prefix = v;
        else if (!strcmp(o, "--id-prefix"))
            b.id_prefix = v;
        else if (!strcmp(o, "--dump"))
            b.dump = v;
        else if (!strcmp(o, "--wait-ms"))
            b.wait_ms = (int)strtol(v, NULL, 10);
        else
            usage();
    }
    if (argc % 2 != 1 || !b.bootstrap || !b.topic || !b.url || !(b.rate >= 1 && b.rate <= 1e6) ||
        b.secs < 1 || b.secs > 3600 || b.sample < 1 || b.workers < 1 || b.workers > 4096 ||
        b.wait_ms < 0 || b.wait_ms > 600000 || strlen(b.prefix) > 20 || strlen(b.topic) > 249)
        usage();
    total = (long)(b.rate * b.secs);
    b.probe_cap = (size_t)(total / b.sample + 1);
    b.probes = xcalloc(b.probe_cap, sizeof(*b.probes));
    b.queue = xcalloc(b.probe_cap, sizeof(*b.queue));
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cond, NULL);
    pthread_cond_init(&b.done_cond, NULL);
    if (curl_global_init(CURL_GLOBAL_DEFAULT))
        die("curl_global_init", NULL);

    {
        rd_kafka_conf_t *conf = conf_make(&b, prod_kv);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        rd_kafka_conf_set_opaque(conf, &b);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk)
            die("producer", errstr);
    }
    nparts = partitions_get(rk, b.topic);
    consumer_start(&b, &cons, rk, nparts);
    thr = xcalloc((size_t)b.workers, sizeof(*thr));
    for (int i = 0; i < b.workers; i++)
        if (pthread_create(&thr[i], NULL, worker_main, &b))
            die("pthread_create", NULL);

    /* Pacing: produce every event that is due, then serve delivery reports for at most
     * a millisecond; the schedule is absolute, so a late loop catches up. */
    t0 = mono_us();
    end = t0 + (int64_t)b.secs * 1000000;
    while (produced < total) {
        int64_t now = mono_us();
        long due = (long)((double)(now - t0) * b.rate / 1e6) + 1;
        if (now >= end)
            break;
        while (produced < due && produced < total) {
            produce_one(&b, rk, produced++);
            t_last = mono_us();
        }
        rd_kafka_poll(rk, 1);
    }
    if (rd_kafka_flush(rk, 30000))
        die("flush", "messages still queued after 30 s");

    /* Every sampled event's search is answered within wait_ms (or fails); wait for all. */
    deadline = mono_us() + (int64_t)b.wait_ms * 1000 + 20000000;
    pthread_mutex_lock(&b.mu);
    while (b.finished < (size_t)((produced + b.sample - 1) / b.sample) && mono_us() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&b.done_cond, &b.mu, &ts);
    }
    b.stop = 1;
    pthread_cond_broadcast(&b.cond);
    pthread_mutex_unlock(&b.mu);
    for (int i = 0; i < b.workers; i++)
        pthread_join(thr[i], NULL);
    /* The baseline consumer has had the whole wait to catch up. */
    consumer_stop(&b, &cons);

    if (b.dump) {
        static const char *const names[] = {"new",     "queued", "ok",      "miss",
                                            "timeout", "error",  "not_sent"};
        FILE *f = fopen(b.dump, "w");
        if (!f)
            die("cannot write", b.dump);
        for (size_t i = 0; i < b.probe_cap && (long)i * b.sample < produced; i++) {
            const probe_t *p = &b.probes[i];
            int64_t tc = atomic_load(&p->t_consumed_us);
            fprintf(f, "%zu %.3f %.3f %.3f %s\n", i * (size_t)b.sample,
                    (double)(p->t_produce_us - t0) / 1000.0,
                    p->t_visible_us ? (double)(p->t_visible_us - p->t_produce_us) / 1000.0 : -1.0,
                    tc ? (double)(tc - p->t_produce_us) / 1000.0 : -1.0, names[p->state]);
        }
        fclose(f);
    }
    lat = xcalloc(b.probe_cap, sizeof(*lat));
    klat = xcalloc(b.probe_cap, sizeof(*klat));
    delay = xcalloc(b.probe_cap, sizeof(*delay));
    for (size_t i = 0; i < b.probe_cap && (long)i * b.sample < produced; i++) {
        probe_t *p = &b.probes[i];
        int64_t tc = atomic_load(&p->t_consumed_us);
        cnt[p->state]++;
        if (p->state == PROBE_OK)
            lat[nlat++] = p->t_visible_us - p->t_produce_us;
        if (p->t_send_us)
            delay[nd++] = p->t_send_us - p->t_dr_us;
        if (tc)
            klat[nk++] = tc - p->t_produce_us;
    }
    printf("bench_latency rate=%.0f achieved=%.1f produced=%ld seconds=%.3f sampled=%zu ok=%zu "
           "misses=%zu timeouts=%zu errors=%zu unanswered=%zu produce_failed=%ld p50_ms=%.3f "
           "p99_ms=%.3f max_ms=%.3f kafka_seen=%zu kafka_p50_ms=%.3f kafka_p99_ms=%.3f "
           "send_delay_p99_ms=%.3f\n",
           b.rate, t_last > t0 ? (double)produced / ((double)(t_last - t0) / 1e6) : 0.0, produced,
           (double)(t_last - t0) / 1e6, (size_t)((produced + b.sample - 1) / b.sample),
           cnt[PROBE_OK], cnt[PROBE_MISS], cnt[PROBE_TIMEOUT], cnt[PROBE_ERROR],
           cnt[PROBE_NEW] + cnt[PROBE_QUEUED], atomic_load(&b.produce_failed),
           pct_ms(lat, nlat, 0.5), pct_ms(lat, nlat, 0.99), pct_ms(lat, nlat, 1.0), nk,
           pct_ms(klat, nk, 0.5), pct_ms(klat, nk, 0.99), pct_ms(delay, nd, 0.99));
    if (b.first_error[0])
        fprintf(stderr, "bench_latency: first error: %s\n", b.first_error);
    fflush(stdout);
    rd_kafka_destroy(rk);
    curl_global_cleanup();
    free(lat);
    free(klat);
    free(delay);
    free(thr);
    free(b.probes);
    free(b.queue);
    return cnt[PROBE_OK] == (size_t)((produced + b.sample - 1) / b.sample) ? 0 : 3;
}
