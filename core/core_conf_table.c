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
static const char *const iceberg_codecs[] = {"zstd", "uncompressed", NULL};
static const char *const serve_auths[] = {"none", "keys", NULL};

#define STR(n, f, def, flags, desc)                                                                \
    {                                                                                              \
        n, RF_CONF_STR, OFF(f), 0, 0, 0, 0, def, NULL, flags, desc                                 \
    }
#define LIST(n, f, def, flags, desc)                                                               \
    {                                                                                              \
        n, RF_CONF_LIST, OFF(f), 0, 0, 0, 0, def, NULL, flags, desc                                \
    }
#define INT(n, f, lo, hi, def, desc)                                                               \
    {                                                                                              \
        n, RF_CONF_INT, OFF(f), lo, hi, 0, 0, def, NULL, 0, desc                                   \
    }
#define ENUM(n, f, ch, def, desc)                                                                  \
    {                                                                                              \
        n, RF_CONF_ENUM, OFF(f), 0, 0, 0, 0, def, ch, 0, desc                                      \
    }

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
    {"embed.dimensions.param", RF_CONF_BOOL, OFF(embed_dimensions_param), 0, 0, 0, 0, "false", NULL,
     0, "Send embed.dim as `dimensions` to openai, for models that can shorten their vectors."},

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
    INT("index.segment.size", index_segment_size, 16, 2147483647, "50000",
        "Vectors in a sealed segment. The mutable flat segment takes new vectors until it is "
        "sealed and rebuilt in the background as an `index.factory` index; searches scan it "
        "exactly (through 8-bit codes of its vectors first, dim + 16 bytes a vector more in "
        "memory: only the vectors whose bounds let them rank are scored from their floats, and "
        "the results are the same). With a slow factory (HNSW) it is sealed every 8192 vectors "
        "instead, each gets "
        "a quick IVF index at once, and these are merged into HNSW segments of up to this size "
        "once half of it (or 16384 vectors, if less) waits; larger means fewer, slower-built "
        "segments."),
    STR("index.factory", index_factory, "HNSW32", 0,
        "FAISS index_factory string for sealed segments (inner product), e.g. `HNSW32`, "
        "`IVF1024,Flat` (trained on the segment) or `Flat` to keep every segment exact. With "
        "HNSW, a sealed segment of 2048 to 262144 vectors is first built as a quick IVF-Flat "
        "index: the sealed 8192-vector tails share one k-means of up to 256 lists (trained "
        "again every 64 tails), larger segments get sqrt(n) lists of their own; the HNSW "
        "builds run in a thread of their own at the lowest priority, merging the quick "
        "indexes (see `index.segment.size`)."),
    {"index.compact.ratio", RF_CONF_DBL, OFF(index_compact_ratio), 0, 0, 0.01, 100, "0.3", NULL, 0,
     "A sealed segment whose fraction of deleted or superseded vectors exceeds this is rebuilt "
     "without them in the background; above 1 never."},
    INT("index.hnsw.ef.search", index_hnsw_ef_search, 1, 32768, "128",
        "HNSW efSearch of sealed segments: larger finds more of the true nearest neighbours, "
        "slower."),
    INT("index.ivf.nprobe", index_ivf_nprobe, 1, 65536, "16",
        "IVF nprobe of sealed segments (lists visited per search) when index.factory is IVF, "
        "and of the quick IVF indexes built before HNSW."),
    INT("index.filter.exact.max", index_filter_exact_max, 1, 100000000, "20000",
        "A filtered search whose filter matches at most this many records scores them exactly "
        "instead of walking the approximate index (recall 1 for restrictive filters)."),

    /* ingest.* */
    INT("ingest.nice", ingest_nice, 0, 19, "10",
        "Nice value of the threads that ingest: the Kafka consumer's, the one that applies "
        "batches to the store and the index, the index's maintenance, checkpoint and reaper "
        "threads, the Iceberg exporter and re-embedding. The HTTP threads keep the process's "
        "priority, so that a search keeps its core while ingest is heavy; ingest gets what the "
        "searches leave. Nice is the system's: ingest yields to other processes at normal "
        "priority too. 0 runs them all at the process's priority."),
    STR("ingest.cpus", ingest_cpus, "", 0,
        "CPUs the threads that ingest run on (the same threads as ingest.nice's), as a list "
        "like `1` or `2-3,6`; empty: any. With serve.cpus naming the others, searches never "
        "share a core with ingest, nor, when these include the CPUs that take the disk's "
        "interrupts (`/proc/interrupts`), with the kernel's I/O work: a search's p99 while "
        "ingesting then stays close to idle. On these CPUs the index's maintenance thread "
        "(its quick builds) and its WAL checkpointer run at nice 19, behind the thread that "
        "applies batches. Each CPU must be one the process may run on."),

    /* serve.* */
    STR("serve.listen", serve_listen, "127.0.0.1:8080", 0,
        "HTTP listen address, `HOST:PORT` (port 0 picks a free port and logs it)."),
    INT("serve.threads", serve_threads, 1, 256, "4", "HTTP worker threads."),
    STR("serve.cpus", serve_cpus, "", 0,
        "CPUs the HTTP threads (and so the searches) run on, as a list like `0` or `0-1,4`; "
        "empty: any. See ingest.cpus."),
    INT("serve.max.body", serve_max_body, 256, 67108864, "1048576",
        "Largest HTTP request body accepted, in bytes; larger requests get 413."),
    INT("serve.max.k", serve_max_k, 1, 10000, "1000", "Largest `k` a search may ask for."),
    ENUM("serve.auth", serve_auth, serve_auths, "none",
         "HTTP access control: none, or keys (every request but /healthz and /readyz needs "
         "`Authorization: Bearer KEY` with a key made by `ragfeed keys create`)."),
    INT("serve.max.wait.ms", serve_max_wait_ms, 1, 600000, "30000",
        "Longest `wait_ms` a request may ask for while it waits for its `min_position`."),
    INT("serve.max.connections", serve_max_connections, 1, 100000, "1024",
        "Most HTTP connections open at once; further connections wait in the listen queue "
        "until one closes."),
    {"serve.rate.per.key", RF_CONF_DBL, OFF(serve_rate_per_key), 0, 0, 0, 1000000, "0", NULL, 0,
     "Requests per second allowed per API key (per client address when serve.auth = none); "
     "more get 429 with Retry-After. 0 means no limit."},
    INT("serve.rate.burst", serve_rate_burst, 0, 1000000, "0",
        "Requests a key may make at once above its rate; 0 means one second's worth."),

    /* iceberg.* */
    STR("iceberg.warehouse", iceberg_warehouse, NULL, 0,
        "Absolute directory of the Iceberg warehouse; unset uses `<state.dir>/warehouse`."),
    STR("iceberg.catalog", iceberg_catalog, NULL, 0,
        "Path of the SQLite file holding the Iceberg JDBC-schema catalog; unset uses "
        "`<state.dir>/catalog.db`."),
    STR("iceberg.table", iceberg_table, "ragfeed.records_history", 0,
        "Iceberg table, `namespace.name`, that receives the history of enriched records."),
    {"iceberg.enabled", RF_CONF_BOOL, OFF(iceberg_enabled), 0, 0, 0, 0, "true", NULL, 0,
     "Export the store's changelog to the Iceberg table while `ragfeed run` runs."},
    STR("iceberg.catalog.name", iceberg_catalog_name, "ragfeed", 0,
        "`catalog_name` of the catalog rows (what pyiceberg's SqlCatalog and Java's JdbcCatalog "
        "are given as the catalog name)."),
    INT("iceberg.commit.interval.ms", iceberg_commit_interval_ms, 100, 86400000, "10000",
        "Longest time, in milliseconds, between an applied change and the Iceberg snapshot "
        "holding it; a commit happens after this interval or iceberg.commit.rows rows, "
        "whichever comes first."),
    INT("iceberg.commit.rows", iceberg_commit_rows, 1, 100000000, "100000",
        "Changelog rows that trigger a commit before the interval ends; also the most rows "
        "one snapshot adds."),
    INT("iceberg.target.file.size", iceberg_target_file_size, 65536, 17179869184, "134217728",
        "Target size of a Parquet data file, in bytes: a commit starts a new file past it, and "
        "compaction merges smaller files up to it."),
    {"iceberg.include.vectors", RF_CONF_BOOL, OFF(iceberg_include_vectors), 0, 0, 0, 0, "true",
     NULL, 0,
     "Write each version's embedding to the `vector` column (list<float>); false leaves the "
     "column out of new tables and null in existing ones."},
    LIST("iceberg.columns", iceberg_columns, "", 0,
         "Metadata fields promoted to typed columns, `name:type` with type string, int, long, "
         "float, double, boolean or timestamptz, e.g. `price:double,sku:string`; adding one "
         "later evolves the table's schema."),
    INT("iceberg.max.failures", iceberg_max_failures, 1, 1000000, "3",
        "Consecutive failed commits after which /readyz reports the exporter as not ready "
        "(it keeps retrying)."),
    ENUM("iceberg.codec", iceberg_codec, iceberg_codecs, "zstd",
         "Compression of Parquet data pages: zstd or uncompressed."),
};

const size_t rf_conf_opts_cnt = sizeof(rf_conf_opts) / sizeof(rf_conf_opts[0]);
