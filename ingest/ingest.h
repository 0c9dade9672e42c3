/* ingest.h - the public face of ingest/: the Kafka consumer, the change-event
 * decoders (Debezium JSON, plain JSON upserts), the row-to-record mapping, dead
 * letters to a Kafka topic, and the development broker.
 *
 * INVARIANT(offsets-with-state): the consumer never decides where to start; it asks
 * the caller (who asks the store) for every partition it is given.
 * INVARIANT(bad-input-dead-letters): a message that cannot be decoded or mapped yields
 * an error with a reason, never a crash or a silent drop.
 */
#ifndef RF_INGEST_H
#define RF_INGEST_H

#include "core/core.h"

/* ==== Messages and events ==== */

typedef struct rf_ingest_header {
    const char *name; /* NUL-terminated */
    rf_slice_t value; /* ptr NULL for a NULL header value */
} rf_ingest_header_t;

/* A Kafka message as the decoder sees it; everything borrowed. */
typedef struct rf_ingest_msg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* Kafka message timestamp, -1 when absent */
    rf_slice_t key;       /* ptr NULL when the key is NULL */
    rf_slice_t value;     /* ptr NULL when the value is NULL (tombstone) */
    const rf_ingest_header_t *headers;
    size_t header_cnt;
} rf_ingest_msg_t;

typedef enum rf_event_op {
    RF_EVENT_UPSERT = 1,   /* create, update, snapshot read, JSON upsert */
    RF_EVENT_DELETE = 2,   /* delete or tombstone */
    RF_EVENT_TRUNCATE = 3, /* every record of `source` goes */
    RF_EVENT_SKIP = 4,     /* a message that carries no record change (op "m", heartbeat) */
} rf_event_op;

/* A decoded and mapped change.  Every string is owned by the event; free with
 * rf_event_fini(). */
typedef struct rf_event {
    rf_event_op op;
    char *id;                /* "<source>:<key>"; NULL for TRUNCATE and SKIP */
    char *source;            /* record namespace, e.g. "inventory.products" */
    char *text;              /* UPSERT: the rendered text, never empty */
    char *metadata_json;     /* UPSERT: JSON object of the selected fields, or NULL */
    char *tenant;            /* UPSERT: or NULL */
    char *source_pos;        /* "lsn=..." / "mysql-bin.000003:154" / NULL */
    int64_t event_time_ms;   /* source ts_ms, else the Kafka timestamp, else 0 */
    const char *skip_reason; /* SKIP: static text */
} rf_event_t;

void rf_event_fini(rf_event_t *ev);

/* The decoder and mapper, configured once from rf_conf_t (source.format,
 * source.id.fields, source.name, source.text, source.metadata.fields,
 * source.tenant.field, source.max.value.bytes). */
typedef struct rf_ingest_mapper rf_ingest_mapper_t;

/* Caller frees with rf_ingest_mapper_free(). RF_ECONFIG on a bad template. */
rf_rc rf_ingest_mapper_new(const rf_conf_t *cfg, rf_ingest_mapper_t **out, rf_err_t *err);
void rf_ingest_mapper_free(rf_ingest_mapper_t *m);

/* Decodes and maps one message.  On RF_OK *ev is filled (caller calls rf_event_fini);
 * Debezium heartbeats, transaction metadata and op "m" give RF_EVENT_SKIP.
 * On failure (RF_EPARSE, RF_ETOOBIG, RF_EINVAL) err->msg holds the dead-letter reason
 * and *ev holds nothing to free.  Thread-safe for a shared mapper. */
rf_rc rf_ingest_decode(const rf_ingest_mapper_t *m, const rf_ingest_msg_t *msg, rf_event_t *ev,
                       rf_err_t *err);

/* ==== Consumer ==== */

typedef struct rf_ingest_consumer rf_ingest_consumer_t;

/* Where to resume a partition: the next offset, or -1 when the store has none (the
 * consumer then applies source.start).  Called from the consumer's thread. */
typedef int64_t (*rf_ingest_offset_fn)(void *opaque, const char *topic, int32_t partition);

/* Creates the consumer (and a producer when source.dlq.topic is set) and starts
 * reading: source.assignment=all assigns every partition of source.topics from
 * metadata; =group subscribes (cooperative-sticky).  Either way each partition starts
 * at offset_fn's answer.  kafka.* options are passed to librdkafka and rejected with
 * RF_ECONFIG when librdkafka refuses them; RF_EUNAVAIL when the brokers or topics
 * cannot be reached within the startup timeout.  cfg is borrowed for the consumer's
 * lifetime.  Caller frees with rf_ingest_consumer_free(), after clearing every batch it
 * filled (the messages hold references to the consumer). */
rf_rc rf_ingest_consumer_new(const rf_conf_t *cfg, rf_ingest_offset_fn offset_fn, void *opaque,
                             rf_ingest_consumer_t **out, rf_err_t *err);
void rf_ingest_consumer_free(rf_ingest_consumer_t *c);

/* A polled batch: messages in partition order.  msgs[] views stay valid until
 * rf_ingest_batch_clear(). */
typedef struct rf_ingest_batch {
    rf_ingest_msg_t *msgs;
    size_t cnt;
    /* private */
    void **rkmessages;
    rf_ingest_header_t *hdrs;
    size_t cap, hdr_cap, hdr_cnt;
} rf_ingest_batch_t;

void rf_ingest_batch_init(rf_ingest_batch_t *b);
void rf_ingest_batch_clear(rf_ingest_batch_t *b);
void rf_ingest_batch_fini(rf_ingest_batch_t *b);

/* Appends up to max messages, waiting at most timeout_ms for the first and then
 * returning what has arrived.  Partition EOFs and transient broker errors are logged,
 * not returned.  Messages of partitions revoked during the wait are dropped (they
 * will be re-read by their new owner from the store's offsets).  The msgs array may
 * move on the next poll; the bytes it points to stay until rf_ingest_batch_clear().
 * A fatal Kafka error returns RF_EKAFKA; messages appended before it stay in b. */
rf_rc rf_ingest_consumer_poll(rf_ingest_consumer_t *c, rf_ingest_batch_t *b, size_t max,
                              int timeout_ms, rf_err_t *err);

/* Commits offsets to the consumer group as a courtesy for lag tools (never read back).
 * No-op without kafka.group.id. */
void rf_ingest_consumer_commit(rf_ingest_consumer_t *c, const char *const *topics,
                               const int32_t *partitions, const int64_t *next_offsets, size_t n);

/* Pauses or resumes every assigned partition (back-pressure). */
void rf_ingest_consumer_pause(rf_ingest_consumer_t *c, int pause);

/* Sends one dead letter to source.dlq.topic: the original key, value and headers plus
 * headers ragfeed.error.reason, ragfeed.error.topic, ragfeed.error.partition,
 * ragfeed.error.offset.  Waits for delivery (dead letters are rare and must not be
 * lost; a timed-out one may still arrive, so a retry can duplicate it).  RF_OK without a
 * DLQ topic configured.  One caller at a time; any thread. */
rf_rc rf_ingest_dlq_send(rf_ingest_consumer_t *c, const rf_ingest_msg_t *msg, const char *reason,
                         rf_err_t *err);

/* Consumer lag per partition as of the last poll, for metrics: fills up to n entries,
 * returns the count. */
typedef struct rf_ingest_lag {
    char topic[256];
    int32_t partition;
    int64_t high_watermark; /* -1 until the first fetch response for the partition */
} rf_ingest_lag_t;
size_t rf_ingest_consumer_watermarks(rf_ingest_consumer_t *c, rf_ingest_lag_t *out, size_t n);

/* ==== Producing (demo and tools) ==== */

/* Produces `key<TAB>value` lines read from in to topic; an empty key or value is NULL
 * (an empty value is a tombstone).  Returns once every message is acknowledged; *count
 * (may be NULL) is the number produced.  RF_EKAFKA / RF_ETIMEDOUT on failure. */
rf_rc rf_ingest_produce_tsv(const char *bootstrap, const char *topic, FILE *in, size_t *count,
                            rf_err_t *err);

/* ==== Development broker ==== */

typedef struct rf_ingest_broker_opts {
    int port;          /* must be 0 (ports the kernel picks): librdkafka 2.0.2's mock cluster
                        * cannot bind a chosen port; non-zero returns RF_ENOTIMPL */
    int brokers;       /* >= 1 */
    const char *topic; /* pre-created when not NULL */
    int partitions;    /* for topic */
} rf_ingest_broker_opts_t;

/* Runs librdkafka's mock cluster on 127.0.0.1 until *stop becomes non-zero: prints
 * "bootstrap.servers=HOST:PORT[,...]" as the first line of out (flushed), then waits.
 * Returns RF_EUNAVAIL when it cannot start. */
rf_rc rf_ingest_broker_run(const rf_ingest_broker_opts_t *opts, FILE *out, volatile int *stop,
                           rf_err_t *err);

#endif /* RF_INGEST_H */
