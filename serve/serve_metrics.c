/* serve_metrics.c - request counters and the search-duration histogram kept with
 * relaxed atomics by the HTTP threads, and the Prometheus text (format 0.0.4) of
 * /metrics, which also shows the pipeline's counters and the store's size and sequence.
 * INVARIANT(bad-input-dead-letters): dead-lettered events appear in
 * ragfeed_events_dead_lettered_total.
 */
#include "serve/serve_int.h"

#include <inttypes.h>

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

static const char *const route_labels[RF__SERVE_R_COUNT] = {
    "/v1/search", "/v1/records", "/v1/status", "/healthz", "/readyz", "/metrics", "other",
};

const char *rf__serve_route_label(rf__serve_route route)
{
    return (unsigned)route < RF__SERVE_R_COUNT ? route_labels[route] : "other";
}

void rf__serve_metrics_init(rf__serve_metrics_t *m)
{
    for (int r = 0; r < RF__SERVE_R_COUNT; r++)
        for (int s = 0; s < RF__SERVE_S_COUNT; s++)
            atomic_init(&m->http[r][s], 0);
    for (int b = 0; b <= RF__SERVE_BUCKETS; b++)
        atomic_init(&m->search_bucket[b], 0);
    atomic_init(&m->search_sum_us, 0);
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

static rf_rc counter(rf_buf_t *out, const char *name, const char *type, const char *help, int64_t v)
{
    return rf_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRId64 "\n", name, help, name,
                         type, name, v);
}

rf_rc rf__serve_metrics_render(rf__serve_metrics_t *m, const rf_serve_counters_t *counters,
                               rf_index_t *ix, rf_buf_t *out)
{
    rf_rc rc = RF_OK;
    uint64_t cum = 0;
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

    for (size_t i = 0; i < sizeof(pipe) / sizeof(pipe[0]) && !rc; i++) {
        int64_t v = 0;
        if (counters)
            v = rf__serve_counter_get(
                (const volatile int64_t *)((const char *)counters + pipe[i].off));
        rc = counter(out, pipe[i].name, "counter", pipe[i].help, v);
    }
    if (!rc)
        rc = counter(out, "ragfeed_records", "gauge", "Records currently in the store.",
                     rf_index_record_count(ix));
    if (!rc)
        rc = counter(out, "ragfeed_store_seq", "gauge", "Store sequence number of the last batch.",
                     rf_index_seq(ix));
    if (!rc)
        rc = counter(out, "ragfeed_ready", "gauge",
                     "1 once recovery is done and the pipeline is consuming.",
                     counters ? rf__serve_counter_get(&counters->ready) == 1 : 1);

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

    /* The count is the sum of the buckets read here, so _count and the +Inf bucket
     * always agree even while searches are being observed. */
    if (!rc)
        rc = rf_buf_puts(out, "# HELP ragfeed_search_duration_seconds Time to answer a search "
                              "(embedding included).\n# TYPE ragfeed_search_duration_seconds "
                              "histogram\n");
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
    return rc;
}
