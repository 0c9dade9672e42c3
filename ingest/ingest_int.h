/* ingest_int.h - what the files of ingest/ share and nobody else sees.
 *
 * Decoder and mapper: the mapper's layout (built once by ingest_map.c, read by
 * ingest_decode.c) and the row rendering functions.  They uphold
 * INVARIANT(bad-input-dead-letters): each reports bad input as an error with a reason;
 * none of them aborts on anything a message can contain.
 */
#ifndef RF_INGEST_INT_H
#define RF_INGEST_INT_H

#include "ingest/ingest.h"

#include <jansson.h>

/* ==== Decoder and mapper ==== */

/* Longest record id ("<source>:<key>") and tenant, in bytes. */
#define RF__INGEST_ID_MAX 1024
/* Longest rendered text and metadata object, in bytes. */
#define RF__INGEST_TEXT_MAX ((size_t)1 << 20)

/* One piece of a parsed source.text template: literal text, or a field reference. */
typedef struct rf__ingest_tpl_part {
    char *lit; /* owned literal with `{{`/`}}` already unescaped, or NULL */
    size_t lit_len;
    char *field; /* owned field path ("title", "a.b"), or NULL */
} rf__ingest_tpl_part_t;

struct rf_ingest_mapper {
    int format;       /* RF_SOURCE_FORMAT_* */
    char *name;       /* source.name, or NULL */
    char **id_fields; /* one allocation from rf_conf_list_split */
    size_t id_field_cnt;
    char **meta_fields; /* one allocation from rf_conf_list_split */
    size_t meta_field_cnt;
    char *tenant_field; /* or NULL */
    char *text_src;     /* source.text as configured ("" = every scalar field) */
    rf__ingest_tpl_part_t *parts;
    size_t part_cnt;
    size_t max_value; /* source.max.value.bytes */
};

/* Returns the value at `path` in object `row` (borrowed), or NULL when absent: the
 * member named exactly `path` first, else the dotted walk ("a.b" = row.a.b). */
const json_t *rf__ingest_field_get(const json_t *row, const char *path);

/* Appends v as text: strings raw, numbers as JSON prints them, true/false, null as
 * nothing, objects and arrays as compact JSON.  RF_ETOOBIG when b's maximum is hit. */
rf_rc rf__ingest_value_text(rf_buf_t *b, const json_t *v);

/* Appends v as compact JSON.  RF_ETOOBIG when b's maximum is hit. */
rf_rc rf__ingest_json_dump(rf_buf_t *b, const json_t *v);

/* Returns the JSON type's name ("object", "string", ...) for messages. */
const char *rf__ingest_json_type(const json_t *v);

/* Renders row (an object) into ev->text, ev->metadata_json and ev->tenant per the
 * mapper.  On error nothing is left in ev to free beyond what rf_event_fini frees. */
rf_rc rf__ingest_map_row(const rf_ingest_mapper_t *m, const json_t *row, rf_event_t *ev,
                         rf_err_t *err);

/* ==== Consumer and dead letters ==== */
/* Shared by ingest_consumer.c (which owns the consumer and its dead-letter producer),
 * ingest_dlq.c and ingest_broker.c.  INVARIANT(offsets-with-state) is upheld in
 * ingest_consumer.c. */

#include <librdkafka/rdkafka.h>

/* How long rf_ingest_consumer_new waits for the brokers and topics (ms). */
#define RF__INGEST_STARTUP_MS 30000

/* rf_ingest_consumer_new with an explicit startup timeout (ms). */
rf_rc rf__ingest_consumer_new_timeout(const rf_conf_t *cfg, rf_ingest_offset_fn offset_fn,
                                      void *opaque, int startup_ms, rf_ingest_consumer_t **out,
                                      rf_err_t *err);

/* One librdkafka property. */
typedef struct rf__ingest_kv {
    const char *key;
    const char *value;
} rf__ingest_kv_t;

/* A librdkafka configuration: `defaults` (borrowed, ended by a NULL key; each applied
 * only when the user did not set that key), then every kafka.<prop> of cfg, plus a log
 * callback that writes through RF_LOG.  RF_ECONFIG names `kafka.<prop>=<value>` and
 * librdkafka's reason when a property is refused.  Caller frees with
 * rd_kafka_conf_destroy() or hands it to rd_kafka_new(). */
rf_rc rf__ingest_kafka_conf(const rf_conf_t *cfg, const rf__ingest_kv_t *defaults,
                            rd_kafka_conf_t **out, rf_err_t *err);

/* librdkafka's log lines, written through RF_LOG (any thread). */
void rf__ingest_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/* The dead-letter producer (ingest_dlq.c). */
typedef struct rf__ingest_dlq rf__ingest_dlq_t;

/* Creates the producer for cfg->source_dlq_topic (which must be set).  Caller frees
 * with rf__ingest_dlq_free(). */
rf_rc rf__ingest_dlq_new(const rf_conf_t *cfg, rf__ingest_dlq_t **out, rf_err_t *err);
void rf__ingest_dlq_free(rf__ingest_dlq_t *dlq);

/* The consumer's dead-letter producer (borrowed), or NULL without source.dlq.topic. */
rf__ingest_dlq_t *rf__ingest_consumer_dlq(rf_ingest_consumer_t *c);

#endif /* RF_INGEST_INT_H */
