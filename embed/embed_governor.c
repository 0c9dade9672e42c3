/* embed_governor.c - the rate governor of one provider client: requests-per-minute and
 * tokens-per-minute token buckets, backoff (Retry-After when the server gives one,
 * otherwise exponential with full jitter) and AIMD concurrency (halve on 429/503/timeout,
 * one more after a window of successes, up to embed.concurrency).
 *
 * Upholds DESIGN.md invariant 5: a saturated endpoint slows the client down instead of
 * turning into failed items.  Thread-safe: rf_embed_run and queries share it.
 */
#include "embed_int.h"

#include <string.h>

/* First backoff step when the server names no delay, in ms; doubled per failure. */
#define BACKOFF_BASE_MS 100
/* The buckets hold this many seconds of budget, so short bursts are allowed. */
#define BUCKET_SECONDS 10.0

static uint64_t next_rand(rf__embed_gov_t *g)
{
    /* xorshift64*: jitter needs spread, not secrecy. */
    uint64_t x = g->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    g->rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}

void rf__embed_gov_init(rf__embed_gov_t *g, const rf_conf_t *cfg)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->mu, NULL);
    g->max = (int)cfg->embed_concurrency;
    g->limit = g->max;
    g->retry_max_ms = cfg->embed_retry_max_ms;
    g->rpm = (double)cfg->embed_rpm;
    g->tpm = (double)cfg->embed_tpm;
    g->req_level = g->rpm / 60.0 * BUCKET_SECONDS;
    g->tok_level = g->tpm / 60.0 * BUCKET_SECONDS;
    g->refill_us = rf_mono_us();
    g->rng = (uint64_t)rf_mono_us() * 0x9e3779b97f4a7c15ULL | 1;
}

void rf__embed_gov_fini(rf__embed_gov_t *g)
{
    pthread_mutex_destroy(&g->mu);
}

static double bucket_cap(double per_min)
{
    double cap = per_min / 60.0 * BUCKET_SECONDS;
    return cap < 1 ? 1 : cap;
}

static void refill(rf__embed_gov_t *g, int64_t now_us)
{
    double dt_min = (double)(now_us - g->refill_us) / 60e6;
    if (dt_min <= 0)
        return;
    g->refill_us = now_us;
    if (g->rpm > 0) {
        g->req_level += g->rpm * dt_min;
        if (g->req_level > bucket_cap(g->rpm))
            g->req_level = bucket_cap(g->rpm);
    }
    if (g->tpm > 0) {
        g->tok_level += g->tpm * dt_min;
        if (g->tok_level > bucket_cap(g->tpm))
            g->tok_level = bucket_cap(g->tpm);
    }
}

/* Microseconds until the bucket holds `need` at `per_min`. */
static int64_t wait_for(double level, double need, double per_min)
{
    double us = (need - level) / per_min * 60e6;
    return us < 1000 ? 1000 : (int64_t)us;
}

int64_t rf__embed_gov_admit(rf__embed_gov_t *g, int64_t now_us, int own_in_flight,
                            int64_t est_tokens)
{
    int64_t wait = 0;
    pthread_mutex_lock(&g->mu);
    refill(g, now_us);
    if (now_us < g->backoff_until_us) {
        wait = g->backoff_until_us - now_us;
        goto out;
    }
    if (own_in_flight >= 0 && own_in_flight >= g->limit) {
        /* Woken by a finishing request, not by time; ask again soon. */
        wait = 1000;
        goto out;
    }
    if (g->rpm > 0 && g->req_level < 1) {
        wait = wait_for(g->req_level, 1, g->rpm);
        goto out;
    }
    if (g->tpm > 0) {
        /* A request larger than the whole bucket may start when the bucket is full; it
         * drives the level negative and later requests wait for the debt. */
        double need = (double)est_tokens;
        double cap = bucket_cap(g->tpm);
        if (need > cap)
            need = cap;
        if (g->tok_level < need) {
            wait = wait_for(g->tok_level, need, g->tpm);
            goto out;
        }
        g->tok_level -= (double)est_tokens;
    }
    if (g->rpm > 0)
        g->req_level -= 1;
    g->in_flight++;
    g->st.requests++;
out:
    pthread_mutex_unlock(&g->mu);
    return wait;
}

void rf__embed_gov_done(rf__embed_gov_t *g, int64_t now_us, int64_t started_us,
                        rf__embed_outcome oc, int64_t retry_after_ms, int64_t est_tokens,
                        int64_t tokens)
{
    pthread_mutex_lock(&g->mu);
    g->in_flight--;
    if (tokens > 0) {
        /* The endpoint counted; settle the difference with the estimate. */
        if (g->tpm > 0)
            g->tok_level += (double)(est_tokens - tokens);
        g->st.tokens += (uint64_t)tokens;
    } else {
        g->st.tokens += (uint64_t)est_tokens;
    }
    switch (oc) {
    case RF__EMBED_OK:
    case RF__EMBED_INPUT:
        /* The endpoint answered: growth is additive, one more request in flight per
         * window of `limit` successes (about one round trip at the current limit). */
        g->attempt = 0;
        if (oc == RF__EMBED_OK && g->limit < g->max && ++g->successes >= g->limit) {
            g->limit++;
            g->successes = 0;
        }
        break;
    case RF__EMBED_THROTTLED:
    case RF__EMBED_TIMEOUT:
    case RF__EMBED_TRANSIENT: {
        int64_t delay_ms;
        if (oc == RF__EMBED_THROTTLED)
            g->st.throttled++;
        else if (oc == RF__EMBED_TIMEOUT)
            g->st.timeouts++;
        else
            g->st.errors++;
        /* Decrease once per window: requests already in flight when the limit was
         * halved report the same congestion and must not halve it again. */
        if (oc != RF__EMBED_TRANSIENT && started_us >= g->last_decrease_us) {
            g->limit = g->limit / 2 < 1 ? 1 : g->limit / 2;
            g->last_decrease_us = now_us;
            g->successes = 0;
        }
        if (retry_after_ms >= 0) {
            delay_ms = retry_after_ms < g->retry_max_ms ? retry_after_ms : g->retry_max_ms;
        } else {
            /* Full jitter: uniform in [0, min(cap, base * 2^attempt)]. */
            int64_t ceil_ms = BACKOFF_BASE_MS;
            for (int i = 0; i < g->attempt && ceil_ms < g->retry_max_ms; i++)
                ceil_ms *= 2;
            if (ceil_ms > g->retry_max_ms)
                ceil_ms = g->retry_max_ms;
            delay_ms = (int64_t)(next_rand(g) % (uint64_t)(ceil_ms + 1));
        }
        if (g->attempt < 30)
            g->attempt++;
        if (now_us + delay_ms * 1000 > g->backoff_until_us)
            g->backoff_until_us = now_us + delay_ms * 1000;
        break;
    }
    case RF__EMBED_AUTH:
    case RF__EMBED_FATAL:
        break;
    }
    pthread_mutex_unlock(&g->mu);
}

int rf__embed_gov_limit(rf__embed_gov_t *g)
{
    int l;
    pthread_mutex_lock(&g->mu);
    l = g->limit;
    pthread_mutex_unlock(&g->mu);
    return l;
}

void rf__embed_gov_count(rf__embed_gov_t *g, uint64_t texts, uint64_t deduped, uint64_t failed,
                         uint64_t retries)
{
    pthread_mutex_lock(&g->mu);
    g->st.texts += texts;
    g->st.deduped += deduped;
    g->st.failed += failed;
    g->st.retries += retries;
    pthread_mutex_unlock(&g->mu);
}

void rf_embed_stats_get(rf_embed_t *e, rf_embed_stats_t *out)
{
    rf__embed_gov_t *g = &e->gov;
    int64_t now_us = rf_mono_us();
    pthread_mutex_lock(&g->mu);
    *out = g->st;
    out->concurrency = g->limit;
    out->concurrency_max = g->max;
    out->in_flight = g->in_flight;
    out->backoff_until_ms = g->backoff_until_us > now_us ? g->backoff_until_us / 1000 : 0;
    pthread_mutex_unlock(&g->mu);
}
