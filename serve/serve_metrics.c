/* serve_metrics.c - request counters, the search-duration and per-stage freshness
 * histograms and per-topic event counters, kept with relaxed atomics, and the Prometheus
 * text (format 0.0.4) of /metrics, which also shows the pipeline's counters, the store's
 * size and sequence, and whatever the sections (embedding, consumer, exporter) append.
 * INVARIANT(bad-input-dead-letters): dead-lettered events appear in
 * ragfeed_events_dead_lettered_total (and per topic in ragfeed_topic_events_total).
 * INVARIANT(fresh-is-measurable): ragfeed_freshness_seconds measures each stage's delay.
 */
#include "serve/serve_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <string.h>

static const unsigned status_codes[] = {
#define RF__SERVE_STATUS_NUM(n) n,
    RF__SERVE_STATUS_MAP(RF__SERVE_STATUS_NUM)
#undef RF__SERVE_STATUS_NUM
};

static const double bucket_le[] = {
#define RF__SERVE_BUCKET_LE(x) x,
    RF__SERVE_BUCKETS_MAP(RF__SERVE_BUCKET_LE)
#undef RF__SERVE_BUCKET_LE
};

static const double fresh_le[] = {
#define RF__SERVE_FRESH_LE(x) x,
    RF__SERVE_FRESH_BUCKETS_MAP(RF__SERVE_FRESH_LE)
#undef RF__SERVE_FRESH_LE
};

static const char *const stage_names[RF_SERVE_STAGE_COUNT] = {"consumed", "embedded", "applied",
                                                              "exported"};
static const char *const outcome_names[RF_SERVE_EVENTS_COUNT] = {"consumed", "applied",
                                                                 "dead_lettered"};
static const char *const wait_names[3] = {"at_once", "reached", "timeout"};

/* The path label of each route: the documented path, with every record id as one. */
static const char *const route_labels[RF__SERVE_R_COUNT] = {
    "/v1/search", "/v1/context", "/v1/records", "/v1/status", "/healthz",
    "/readyz",    "/metrics",    "/",           "/v1/admin",  "other",
};

const char *rf__serve_route_label(rf__serve_route route)
{
    return (unsigned)route < RF__SERVE_R_COUNT ? route_labels[route] : "other";
}

void rf__serve_metrics_init(rf__serve_metrics_t *m)
{
    pthread_mutex_t *mu = rf_xmalloc(sizeof(*mu));

    for (int r = 0; r < RF__SERVE_R_COUNT; r++)
        for (int s = 0; s < RF__SERVE_S_COUNT; s++)
            atomic_init(&m->http[r][s], 0);
    for (int b = 0; b <= RF__SERVE_BUCKETS; b++)
        atomic_init(&m->search_bucket[b], 0);
    atomic_init(&m->search_sum_us, 0);
    for (int s = 0; s < RF_SERVE_STAGE_COUNT; s++) {
        for (int b = 0; b <= RF__SERVE_FRESH_BUCKETS; b++)
            atomic_init(&m->fresh_bucket[s][b], 0);
        atomic_init(&m->fresh_sum_ms[s], 0);
    }
    for (int i = 0; i < 3; i++)
        atomic_init(&m->waits[i], 0);
    pthread_mutex_init(mu, NULL);
    m->topic_lock = mu;
    memset(m->topics, 0, sizeof(m->topics));
    atomic_init(&m->topic_cnt, 0);
    for (int t = 0; t <= RF__SERVE_TOPICS_MAX; t++)
        for (int o = 0; o < RF_SERVE_EVENTS_COUNT; o++)
            atomic_init(&m->topic_events[t][o], 0);
}

void rf__serve_metrics_fini(rf__serve_metrics_t *m)
{
    if (!m || !m->topic_lock)
        return;
    for (int t = 0; t <= RF__SERVE_TOPICS_MAX; t++)
        free(m->topics[t]);
    pthread_mutex_destroy(m->topic_lock);
    free(m->topic_lock);
    m->topic_lock = NULL;
}

void rf__serve_metrics_count(rf__serve_metrics_t *m, rf__serve_route route, unsigned status)
{
    int s = RF__SERVE_S_OTHER;
    if ((unsigned)route >= RF__SERVE_R_COUNT)
        route = RF__SERVE_R_OTHER;
    for (int i = 0; i < RF__SERVE_S_OTHER; i++)
        if (status_codes[i] == status)
            s = i;
    atomic_fetch_add_explicit(&m->http[route][s], 1, memory_order_relaxed);
}

void rf__serve_metrics_observe_search(rf__serve_metrics_t *m, int64_t us)
{
    int b = RF__SERVE_BUCKETS;
    if (us < 0)
        us = 0;
    for (int i = 0; i < RF__SERVE_BUCKETS; i++)
        if ((double)us <= bucket_le[i] * 1e6) {
            b = i;
            break;
        }
    atomic_fetch_add_explicit(&m->search_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->search_sum_us, (uint_fast64_t)us, memory_order_relaxed);
}

void rf__serve_metrics_observe_fresh(rf__serve_metrics_t *m, int stage, int64_t ms)
{
    int b = RF__SERVE_FRESH_BUCKETS;
    if (stage < 0 || stage >= RF_SERVE_STAGE_COUNT)
        return;
    if (ms < 0)
        ms = 0;
    for (int i = 0; i < RF__SERVE_FRESH_BUCKETS; i++)
        if ((double)ms <= fresh_le[i] * 1e3) {
            b = i;
            break;
        }
    atomic_fetch_add_explicit(&m->fresh_bucket[stage][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->fresh_sum_ms[stage], (uint_fast64_t)ms, memory_order_relaxed);
}

/* The slot of topic, adding it when there is room; RF__SERVE_TOPICS_MAX is "_other". */
static size_t topic_slot(rf__serve_metrics_t *m, const char *topic)
{
    size_t n = atomic_load_explicit(&m->topic_cnt, memory_order_acquire), i;

    for (i = 0; i < n; i++)
        if (!strcmp(m->topics[i], topic))
            return i;
    pthread_mutex_lock(m->topic_lock);
    n = atomic_load_explicit(&m->topic_cnt, memory_order_relaxed);
    for (i = 0; i < n; i++)
        if (!strcmp(m->topics[i], topic))
            break;
    if (i == n && n < RF__SERVE_TOPICS_MAX) {
        m->topics[n] = rf_xstrndup(topic, strnlen(topic, 249));
        /* Published after the name is written, so lock-free readers see it whole. */
        atomic_store_explicit(&m->topic_cnt, n + 1, memory_order_release);
    } else if (i == n) {
        i = RF__SERVE_TOPICS_MAX;
    }
    pthread_mutex_unlock(m->topic_lock);
    return i;
}

void rf__serve_metrics_count_topic(rf__serve_metrics_t *m, const char *topic, int outcome,
                                   int64_t n)
{
    if (!topic || outcome < 0 || outcome >= RF_SERVE_EVENTS_COUNT || n <= 0)
        return;
    atomic_fetch_add_explicit(&m->topic_events[topic_slot(m, topic)][outcome], (uint_fast64_t)n,
                              memory_order_relaxed);
}

static rf_rc counter(rf_buf_t *out, const char *name, const char *type, const char *help, int64_t v)
{
    return rf_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRId64 "\n", name, help, name,
                         type, name, v);
}

/* A label value with the three characters the text format escapes. */
static rf_rc label_value(rf_buf_t *out, const char *s)
{
    rf_rc rc = RF_OK;
    for (; *s && !rc; s++) {
        if (*s == '\\' || *s == '"')
            rc = rf_buf_printf(out, "\\%c", *s);
        else if (*s == '\n')
            rc = rf_buf_puts(out, "\\n");
        else
            rc = rf_buf_append(out, s, 1);
    }
    return rc;
}

static rf_rc render_pipeline(const rf__serve_metrics_src_t *src, rf_buf_t *out)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } pipe[] = {
        {"ragfeed_events_consumed_total", "Change events read from Kafka.",
         offsetof(rf_serve_counters_t, events_consumed)},
        {"ragfeed_events_applied_total", "Change events applied to the store.",
         offsetof(rf_serve_counters_t, events_applied)},
        {"ragfeed_events_dead_lettered_total", "Change events sent to the dead-letter destination.",
         offsetof(rf_serve_counters_t, events_dead)},
        {"ragfeed_events_skipped_total", "Change events skipped (no effect on any record).",
         offsetof(rf_serve_counters_t, events_skipped)},
        {"ragfeed_batches_applied_total", "Store transactions committed by the writer.",
         offsetof(rf_serve_counters_t, batches_applied)},
    };
    const rf_serve_counters_t *c = src->counters;
    rf_index_position_t pos;
    int64_t age;
    rf_rc rc = RF_OK;

    for (size_t i = 0; i < sizeof(pipe) / sizeof(pipe[0]) && !rc; i++) {
        int64_t v = 0;
        if (c)
            v = rf__serve_counter_get((const volatile int64_t *)((const char *)c + pipe[i].off));
        rc = counter(out, pipe[i].name, "counter", pipe[i].help, v);
    }
    if (!rc)
        rc = counter(out, "ragfeed_records", "gauge", "Records currently in the store.",
                     rf_index_record_count(src->ix));
    if (!rc)
        rc = counter(out, "ragfeed_dead_letters", "gauge", "Dead letters kept in the store.",
                     rf_index_dead_count(src->ix));
    if (!rc)
        rc = counter(out, "ragfeed_store_seq", "gauge", "Store sequence number of the last batch.",
                     rf_index_seq(src->ix));
    rf_index_position_get(src->ix, &pos);
    if (!rc)
        rc = counter(out, "ragfeed_index_seq", "gauge",
                     "Store sequence number the searchable index reflects.", pos.seq);
    age = pos.newest_event_time_ms > 0 && src->now_ms > pos.newest_event_time_ms
              ? src->now_ms - pos.newest_event_time_ms
              : 0;
    if (!rc && pos.newest_event_time_ms > 0)
        rc = rf_buf_printf(out,
                           "# HELP ragfeed_newest_event_age_seconds Age of the newest event the "
                           "searchable index reflects.\n# TYPE ragfeed_newest_event_age_seconds "
                           "gauge\nragfeed_newest_event_age_seconds %.3f\n",
                           (double)age / 1e3);
    rf_index_position_fini(&pos);
    if (!rc) {
        /* The vector index's size: what the memory estimate is made of, per record. */
        static const struct {
            const char *name, *help;
            size_t off;
        } ixs[] = {
            {"ragfeed_index_vectors", "Live vectors in the searchable index.",
             offsetof(rf_index_stats_t, vectors)},
            {"ragfeed_index_dead_vectors",
             "Deleted or superseded vectors the index still holds (tombstoned).",
             offsetof(rf_index_stats_t, dead_vectors)},
            {"ragfeed_index_segments", "Segments of the index.",
             offsetof(rf_index_stats_t, segments)},
            {"ragfeed_index_segments_pending",
             "Sealed segments waiting for their index to be built or rebuilt.",
             offsetof(rf_index_stats_t, segments_pending)},
            {"ragfeed_index_memory_bytes",
             "Memory the index holds: vectors, graphs or lists, id and content-hash maps, "
             "tombstones, filterable metadata.",
             offsetof(rf_index_stats_t, memory_bytes)},
            {"ragfeed_index_bytes_per_record", "ragfeed_index_memory_bytes per live vector.",
             offsetof(rf_index_stats_t, bytes_per_record)},
        };
        rf_index_stats_t st;
        rf_index_stats(src->ix, &st);
        for (size_t i = 0; i < sizeof(ixs) / sizeof(ixs[0]) && !rc; i++)
            rc = counter(out, ixs[i].name, "gauge", ixs[i].help,
                         *(const int64_t *)((const char *)&st + ixs[i].off));
    }
    if (!rc)
        rc = counter(out, "ragfeed_ready", "gauge",
                     "1 once recovery is done and the pipeline is consuming.",
                     c ? rf__serve_counter_get(&c->ready) == 1 : 1);
    return rc;
}

static rf_rc render_topics(rf__serve_metrics_t *m, rf_buf_t *out)
{
    size_t n = atomic_load_explicit(&m->topic_cnt, memory_order_acquire);
    rf_rc rc = rf_buf_puts(out, "# HELP ragfeed_topic_events_total Change events per topic and "
                                "outcome.\n# TYPE ragfeed_topic_events_total counter\n");

    for (size_t t = 0; t <= RF__SERVE_TOPICS_MAX && !rc; t++) {
        const char *name = t < n ? m->topics[t] : t == RF__SERVE_TOPICS_MAX ? "_other" : NULL;
        if (!name)
            continue;
        for (int o = 0; o < RF_SERVE_EVENTS_COUNT && !rc; o++) {
            uint64_t v = atomic_load_explicit(&m->topic_events[t][o], memory_order_relaxed);
            if (t == RF__SERVE_TOPICS_MAX && !v)
                continue;
            rc = rf_buf_puts(out, "ragfeed_topic_events_total{topic=\"");
            if (!rc)
                rc = label_value(out, name);
            if (!rc)
                rc = rf_buf_printf(out, "\",outcome=\"%s\"} %" PRIu64 "\n", outcome_names[o], v);
        }
    }
    return rc;
}

static rf_rc render_histograms(rf__serve_metrics_t *m, rf_buf_t *out)
{
    uint64_t cum = 0;
    rf_rc rc;

    /* The count is the sum of the buckets read here, so _count and the +Inf bucket
     * always agree even while searches are being observed. */
    rc = rf_buf_puts(out, "# HELP ragfeed_search_duration_seconds Time to answer a search or "
                          "context request (embedding included, waiting for a position "
                          "not).\n# TYPE ragfeed_search_duration_seconds histogram\n");
    for (int b = 0; b <= RF__SERVE_BUCKETS && !rc; b++) {
        cum += atomic_load_explicit(&m->search_bucket[b], memory_order_relaxed);
        if (b < RF__SERVE_BUCKETS)
            rc = rf_buf_printf(out,
                               "ragfeed_search_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                               bucket_le[b], cum);
        else
            rc = rf_buf_printf(
                out, "ragfeed_search_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
    }
    if (!rc)
        rc = rf_buf_printf(
            out,
            "ragfeed_search_duration_seconds_sum %.6f\nragfeed_search_duration_seconds_count "
            "%" PRIu64 "\n",
            (double)atomic_load_explicit(&m->search_sum_us, memory_order_relaxed) / 1e6, cum);

    if (!rc)
        rc = rf_buf_puts(out, "# HELP ragfeed_freshness_seconds Time from a change's event time "
                              "at the source to the moment it reached a stage.\n# TYPE "
                              "ragfeed_freshness_seconds histogram\n");
    for (int s = 0; s < RF_SERVE_STAGE_COUNT && !rc; s++) {
        cum = 0;
        for (int b = 0; b <= RF__SERVE_FRESH_BUCKETS && !rc; b++) {
            cum += atomic_load_explicit(&m->fresh_bucket[s][b], memory_order_relaxed);
            if (b < RF__SERVE_FRESH_BUCKETS)
                rc = rf_buf_printf(out,
                                   "ragfeed_freshness_seconds_bucket{stage=\"%s\",le=\"%g\"} "
                                   "%" PRIu64 "\n",
                                   stage_names[s], fresh_le[b], cum);
            else
                rc = rf_buf_printf(out,
                                   "ragfeed_freshness_seconds_bucket{stage=\"%s\",le=\"+Inf\"} "
                                   "%" PRIu64 "\n",
                                   stage_names[s], cum);
        }
        if (!rc)
            rc = rf_buf_printf(
                out,
                "ragfeed_freshness_seconds_sum{stage=\"%s\"} %.3f\n"
                "ragfeed_freshness_seconds_count{stage=\"%s\"} %" PRIu64 "\n",
                stage_names[s],
                (double)atomic_load_explicit(&m->fresh_sum_ms[s], memory_order_relaxed) / 1e3,
                stage_names[s], cum);
    }
    return rc;
}

rf_rc rf__serve_metrics_render(rf__serve_metrics_t *m, const rf__serve_metrics_src_t *src,
                               rf_buf_t *out)
{
    rf_rc rc = render_pipeline(src, out);

    if (!rc)
        rc = render_topics(m, out);
    if (!rc)
        rc = rf_buf_puts(out, "# HELP ragfeed_http_requests_total HTTP responses by route and "
                              "status code.\n# TYPE ragfeed_http_requests_total counter\n");
    for (int r = 0; r < RF__SERVE_R_COUNT && !rc; r++)
        for (int s = 0; s < RF__SERVE_S_COUNT && !rc; s++) {
            uint64_t v = atomic_load_explicit(&m->http[r][s], memory_order_relaxed);
            char code[16];
            /* Only series that happened: the label sets are bounded but mostly empty. */
            if (!v)
                continue;
            if (s == RF__SERVE_S_OTHER)
                snprintf(code, sizeof(code), "other");
            else
                snprintf(code, sizeof(code), "%u", status_codes[s]);
            rc = rf_buf_printf(out,
                               "ragfeed_http_requests_total{path=\"%s\",code=\"%s\"} %" PRIu64 "\n",
                               route_labels[r], code, v);
        }
    if (!rc && src->connections >= 0)
        rc = counter(out, "ragfeed_http_connections", "gauge", "HTTP connections open now.",
                     src->connections);
    if (!rc)
        rc = counter(out, "ragfeed_position_waiting", "gauge",
                     "Requests waiting for their min_position now.", src->waiting);
    if (!rc)
        rc = rf_buf_puts(out, "# HELP ragfeed_position_waits_total Requests with a min_position, "
                              "by how it ended.\n# TYPE ragfeed_position_waits_total counter\n");
    for (int i = 0; i < 3 && !rc; i++)
        rc = rf_buf_printf(out, "ragfeed_position_waits_total{outcome=\"%s\"} %" PRIu64 "\n",
                           wait_names[i], atomic_load_explicit(&m->waits[i], memory_order_relaxed));
    if (!rc)
        rc = render_histograms(m, out);

    /* Other parts (embedding provider, consumer, exporter) append their own series. */
    for (size_t i = 0; i < src->section_cnt && !rc; i++) {
        size_t before = out->len;
        if (!src->sections[i].metrics)
            continue;
        src->sections[i].metrics(src->sections[i].opaque, out);
        if (out->len > before && out->ptr[out->len - 1] != '\n')
            rc = rf_buf_puts(out, "\n");
    }
    return rc;
}
