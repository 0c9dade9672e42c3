/* core_conf_table.c - every configuration option, declared once.
 *
 * The parser, defaults, range and enum checks, `ragfeed config dump` and
 * docs/CONFIGURATION.md are all generated from this table; a test fails when the
 * committed documentation differs from what this table generates. */
#include "core.h"

#include <stddef.h>

#define OFF(f) offsetof(rf_conf_t, f)

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const source_formats[] = {"debezium", "json", NULL};
static const char *const source_assignments[] = {"all", "group", NULL};
static const char *const source_starts[] = {"earliest", "latest", NULL};
static const char *const embed_providers[] = {"hash", "openai", "ollama", "tei", NULL};
static const char *const embed_key_headers[] = {"authorization", "api-key", NULL};
static const char *const embed_encodings[] = {"float", "base64", NULL};
static const char *const classify_modes[] = {"none", "llm", "nearest", NULL};

#define STR(n, f, def, flags, desc) {n, RF_CONF_STR, OFF(f), 0, 0, 0, 0, def, NULL, flags, desc}
#define LIST(n, f, def, flags, desc) {n, RF_CONF_LIST, OFF(f), 0, 0, 0, 0, def, NULL, flags, desc}
#define INT(n, f, lo, hi, def, desc) {n, RF_CONF_INT, OFF(f), lo, hi, 0, 0, def, NULL, 0, desc}
#define ENUM(n, f, ch, def, desc) {n, RF_CONF_ENUM, OFF(f), 0, 0, 0, 0, def, ch, 0, desc}

const rf_conf_opt_t rf_conf_opts[] = {
    /* log.* */
    ENUM("log.level", log_level, log_levels, "info", "Lowest severity that is logged."),
    LIST("log.debug", log_debug, "", 0,
         "Modules whose debug lines are logged whatever log.level says: a comma list of core, "
         "app, ingest, embed, index, serve, iceberg, or all."),
    ENUM("log.format", log_format, log_formats, "text",
         "Log line format: text (`ts level module key=value... message`) or json (one object "
         "per line)."),

    /* state.* */
    STR("state.dir", state_dir, "./ragfeed-state", 0,
        "Directory holding the store (SQLite), index checkpoints and, by default, the Iceberg "
        "catalog."),

    /* source.* */
    LIST("source.topics", source_topics, NULL, RF_CONF_REQUIRED,
         "Kafka topics carrying change events, comma-separated."),
    ENUM("source.format", source_format, source_formats, "debezium",
         "Event encoding: debezium (Debezium JSON envelope, with or without schema) or json "
         "(the value is the row; a null value deletes)."),
    ENUM("source.assignment", source_assignment, source_assignments, "all",
         "all: this instance reads every partition (assign + seek, no group join); group: "
         "share partitions with other instances through kafka.group.id."),
    ENUM("source.start", source_start, source_starts, "earliest",
         "Where to start a partition the store has never seen."),
    LIST("source.id.fields", source_id_fields, "", 0,
         "Row fields that form the record id (joined with `:`); empty takes the id from the "
         "Kafka key (every field of a JSON key object, in order, or the key itself)."),
    STR("source.name", source_name, NULL, 0,
        "Namespace of record ids (`<name>:<id>`); unset uses the Debezium source "
        "`<db-or-schema>.<table>`, or the topic name for plain JSON."),
    STR("source.text", source_text, "", 0,
        "Template of the text to embed, e.g. `{title}\\n{body}`; `{{` is a literal brace. Empty "
        "renders every scalar field as `name: value` lines."),
    LIST("source.metadata.fields", source_metadata_fields, "", 0,
         "Row fields copied into the record's metadata (returned with results, usable in "
         "filters)."),
    STR("source.tenant.field", source_tenant_field, NULL, 0,
        "Row field that names the record's tenant; unset means no tenant."),
    STR("source.dlq.topic", source_dlq_topic, NULL, 0,
        "Kafka topic for dead letters (original key, value and headers plus `ragfeed.error.*` "
        "headers); dead letters are always kept in the store too."),
    INT("source.batch.max", source_batch_max, 1, 100000, "2000",
        "Most events applied in one store transaction."),
    INT("source.batch.ms", source_batch_ms, 0, 60000, "50",
        "Longest wait, in milliseconds, to fill a batch before applying what has arrived."),
    INT("source.max.value.bytes", source_max_value_bytes, 1024, 268435456, "1048576",
        "Largest event value accepted; larger events are dead letters."),

    /* embed.* */
    ENUM("embed.provider", embed_provider, embed_providers, "hash",
         "Embedding provider: hash (built-in feature-hashing embedder, offline, "
         "deterministic), openai (any OpenAI-compatible `POST /v1/embeddings`), ollama "
         "(`POST /api/embed`) or tei (text-embeddings-inference `POST /embed`)."),
    STR("embed.url", embed_url, NULL, 0,
        "Full URL of the embedding endpoint (for REST providers)."),
    STR("embed.model", embed_model, "hash-v1", 0,
        "Model name sent to the provider and recorded with every vector."),
    INT("embed.dim", embed_dim, 8, 8192, "384", "Dimension of the embedding vectors."),
    STR("embed.api.key", embed_api_key, NULL, RF_CONF_SECRET,
        "API key sent to the embedding endpoint; never logged."),
    STR("embed.api.key.env", embed_api_key_env, NULL, 0,
        "Name of an environment variable holding the API key, read at start-up instead of "
        "embed.api.key."),
    ENUM("embed.api.key.header", embed_api_key_header, embed_key_headers, "authorization",
         "How the API key is sent: authorization (`Authorization: Bearer KEY`) or api-key "
         "(`api-key: KEY`, Azure OpenAI)."),
    INT("embed.batch.size", embed_batch_size, 1, 2048, "64",
        "Most texts sent in one embedding request."),
    INT("embed.batch.chars", embed_batch_chars, 256, 16777216, "65536",
        "Most characters (bytes of UTF-8) of text sent in one embedding request; a single "
        "longer text goes alone."),
    INT("embed.concurrency", embed_concurrency, 1, 256, "4",
        "Most embedding requests in flight at once; the rate governor lowers it on 429, 503 "
        "and timeouts and raises it back on success."),
    INT("embed.timeout.ms", embed_timeout_ms, 100, 600000, "30000",
        "Timeout of one embedding or classification request, in milliseconds; a timed-out "
        "request is retried."),
    INT("embed.rpm", embed_rpm, 0, 100000000, "0",
        "Requests-per-minute budget of the embedding endpoint; 0 means no limit."),
    INT("embed.tpm", embed_tpm, 0, 10000000000, "0",
        "Tokens-per-minute budget of the embedding endpoint (estimated as characters / 4 "
        "until the endpoint reports usage); 0 means no limit."),
    INT("embed.retry.max.ms", embed_retry_max_ms, 10, 3600000, "30000",
        "Longest wait before one retry, in milliseconds: caps exponential backoff and a "
        "server's Retry-After."),
    {"embed.truncate", RF_CONF_BOOL, OFF(embed_truncate), 0, 0, 0, 0, "false", NULL, 0,
     "Sent as `truncate` to ollama and tei: true lets the server cut texts over the model's "
     "limit, false makes such a text fail and become a dead letter."},
    INT("embed.max.chars", embed_max_chars, 1, 67108864, "262144",
        "Longest text, in bytes, sent to a REST provider; a longer text is a dead letter with "
        "the reason (it is never cut silently)."),
    ENUM("embed.encoding", embed_encoding, embed_encodings, "base64",
         "`encoding_format` asked of openai: base64 (little-endian float32, half the bytes) "
         "or float (JSON numbers)."),
    {"embed.dimensions.param", RF_CONF_BOOL, OFF(embed_dimensions_param), 0, 0, 0, 0, "false",
     NULL, 0,
     "Send embed.dim as `dimensions` to openai, for models that can shorten their vectors."},

    /* classify.* */
    ENUM("classify.mode", classify_mode, classify_modes, "none",
         "Record classification: none, llm (an OpenAI-compatible chat endpoint picks one of "
         "classify.labels) or nearest (the label whose description embeds closest)."),
    STR("classify.url", classify_url, NULL, 0,
        "Full URL of the chat endpoint for classify.mode=llm, e.g. "
        "`http://127.0.0.1:8000/v1/chat/completions`."),
    STR("classify.model", classify_model, NULL, 0,
        "Chat model name sent with classification requests."),
    LIST("classify.labels", classify_labels, "", 0,
         "The closed set of labels a record may receive, comma-separated."),
    STR("classify.label.descriptions", classify_label_descriptions, NULL, 0,
        "One description per label, in the order of classify.labels, separated by vertical "
        "bars; unset uses the label names themselves."),
    INT("classify.batch.size", classify_batch_size, 1, 100, "1",
        "Records classified in one chat request."),
    STR("classify.api.key", classify_api_key, NULL, RF_CONF_SECRET,
        "API key of the chat endpoint; unset uses the embedding endpoint's key."),
    STR("classify.api.key.env", classify_api_key_env, NULL, 0,
        "Name of an environment variable holding the chat endpoint's API key."),

    /* index.* */
    INT("index.checkpoint.interval.ms", index_checkpoint_interval_ms, 0, 86400000, "30000",
        "How often the index is checkpointed to disk in the background; 0 disables periodic "
        "checkpoints (one is still written at a clean stop)."),

    /* serve.* */
    STR("serve.listen", serve_listen, "127.0.0.1:8080", 0,
        "HTTP listen address, `HOST:PORT` (port 0 picks a free port and logs it)."),
    INT("serve.threads", serve_threads, 1, 256, "4", "HTTP worker threads."),
    INT("serve.max.body", serve_max_body, 256, 67108864, "1048576",
        "Largest HTTP request body accepted, in bytes; larger requests get 413."),
    INT("serve.max.k", serve_max_k, 1, 10000, "1000", "Largest `k` a search may ask for."),

    /* iceberg.* */
    STR("iceberg.warehouse", iceberg_warehouse, NULL, 0,
        "Absolute directory of the Iceberg warehouse; unset uses `<state.dir>/warehouse`."),
    STR("iceberg.catalog", iceberg_catalog, NULL, 0,
        "Path of the SQLite file holding the Iceberg JDBC-schema catalog; unset uses "
        "`<state.dir>/catalog.db`."),
    STR("iceberg.table", iceberg_table, "ragfeed.records_history", 0,
        "Iceberg table, `namespace.name`, that receives the history of enriched records."),
};

const size_t rf_conf_opts_cnt = sizeof(rf_conf_opts) / sizeof(rf_conf_opts[0]);
