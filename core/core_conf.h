/* core_conf.h - the configuration: one struct filled from one table of options
 * (core_conf_table.c).  Sources, lowest to highest precedence: defaults, the
 * properties file, RAGFEED_<KEY> environment variables, --set on the command line.
 * Included by core.h; do not include directly.
 */
#ifndef RF_CORE_CONF_H
#define RF_CORE_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum rf_conf_type {
    RF_CONF_STR,  /* char *, NULL when unset and no default */
    RF_CONF_INT,  /* int64_t with min/max */
    RF_CONF_DBL,  /* double with min/max */
    RF_CONF_BOOL, /* int 0/1: true/false/1/0/yes/no/on/off */
    RF_CONF_ENUM, /* int index into choices */
    RF_CONF_LIST, /* char *, comma-separated, items trimmed; "" is the empty list */
} rf_conf_type;

#define RF_CONF_SECRET   0x1 /* redacted in dumps */
#define RF_CONF_RELOAD   0x2 /* may change at run time (reserved) */
#define RF_CONF_REQUIRED 0x4 /* `ragfeed run` refuses to start when unset */

typedef enum rf_conf_origin {
    RF_CONF_ORIGIN_DEFAULT = 0,
    RF_CONF_ORIGIN_FILE,
    RF_CONF_ORIGIN_ENV,
    RF_CONF_ORIGIN_CLI,
} rf_conf_origin;

enum { RF_SOURCE_FORMAT_DEBEZIUM = 0, RF_SOURCE_FORMAT_JSON = 1 };
enum { RF_SOURCE_ASSIGN_ALL = 0, RF_SOURCE_ASSIGN_GROUP = 1 };
enum { RF_SOURCE_START_EARLIEST = 0, RF_SOURCE_START_LATEST = 1 };
enum {
    RF_EMBED_PROVIDER_HASH = 0,
    RF_EMBED_PROVIDER_OPENAI = 1,
    RF_EMBED_PROVIDER_OLLAMA = 2,
    RF_EMBED_PROVIDER_TEI = 3
};
enum { RF_EMBED_KEY_HEADER_AUTHORIZATION = 0, RF_EMBED_KEY_HEADER_API_KEY = 1 };
enum { RF_EMBED_ENCODING_FLOAT = 0, RF_EMBED_ENCODING_BASE64 = 1 };
enum { RF_CLASSIFY_NONE = 0, RF_CLASSIFY_LLM = 1, RF_CLASSIFY_NEAREST = 2 };
enum { RF_ICEBERG_CODEC_ZSTD = 0, RF_ICEBERG_CODEC_UNCOMPRESSED = 1 };
enum { RF_SERVE_AUTH_NONE = 0, RF_SERVE_AUTH_KEYS = 1 };

/* Every option's storage.  Fields are read directly by the stages after
 * rf_conf_finalize(); only core/ writes them. */
typedef struct rf_conf {
    /* log.* */
    int log_level;
    char *log_debug;
    int log_format;
    /* state.* */
    char *state_dir;
    /* source.* */
    char *source_topics;
    int source_format;
    int source_assignment;
    int source_start;
    char *source_id_fields;
    char *source_name;
    char *source_text;
    char *source_metadata_fields;
    char *source_tenant_field;
    char *source_dlq_topic;
    int64_t source_batch_max;
    int64_t source_batch_ms;
    int64_t source_max_value_bytes;
    /* embed.* */
    int embed_provider;
    char *embed_url;
    char *embed_model;
    int64_t embed_dim;
    char *embed_api_key;
    char *embed_api_key_env;
    int embed_api_key_header;
    int64_t embed_batch_size;
    int64_t embed_batch_chars;
    int64_t embed_concurrency;
    int64_t embed_timeout_ms;
    int64_t embed_rpm;
    int64_t embed_tpm;
    int64_t embed_retry_max_ms;
    int embed_truncate;
    int64_t embed_max_chars;
    int embed_encoding;
    int embed_dimensions_param;
    /* classify.* */
    int classify_mode;
    char *classify_url;
    char *classify_model;
    char *classify_labels;
    char *classify_label_descriptions;
    int64_t classify_batch_size;
    char *classify_api_key;
    char *classify_api_key_env;
    /* index.* */
    int64_t index_checkpoint_interval_ms;
    int64_t index_segment_size;
    char *index_factory;
    double index_compact_ratio;
    int64_t index_hnsw_ef_search;
    int64_t index_ivf_nprobe;
    int64_t index_filter_exact_max;
    /* ingest.* */
    int64_t ingest_nice;
    char *ingest_cpus;
    /* serve.* */
    char *serve_listen;
    int64_t serve_threads;
    char *serve_cpus;
    int64_t serve_max_body;
    int64_t serve_max_k;
    int serve_auth;
    int64_t serve_max_wait_ms;
    int64_t serve_max_connections;
    double serve_rate_per_key;
    int64_t serve_rate_burst;
    /* iceberg.* */
    char *iceberg_warehouse;
    char *iceberg_catalog;
    char *iceberg_table;
    int iceberg_enabled;
    char *iceberg_catalog_name;
    int64_t iceberg_commit_interval_ms;
    int64_t iceberg_commit_rows;
    int64_t iceberg_target_file_size;
    int iceberg_include_vectors;
    char *iceberg_columns;
    int64_t iceberg_max_failures;
    int iceberg_codec;

    /* ingest.cpus and serve.cpus, parsed by rf_conf_finalize (before it: any CPU). */
    rf_cpus_t ingest_cpu_set, serve_cpu_set;

    /* kafka.<prop> pass-through, in the order first set. */
    struct rf_conf_kv {
        char *key; /* without the "kafka." prefix */
        char *value;
        rf_conf_origin origin;
        char *where;
    } * kafka;
    size_t kafka_cnt;

    /* Per-option origin, indexed like the table. */
    rf_conf_origin *origin;
    char **where; /* "file:line", "RAGFEED_X", "--set"; NULL for defaults */
} rf_conf_t;

/* One row of the option table. */
typedef struct rf_conf_opt {
    const char *name;
    rf_conf_type type;
    size_t offset;
    int64_t imin, imax;
    double dmin, dmax;
    const char *def;            /* default as text; NULL = unset */
    const char *const *choices; /* ENUM: NULL-terminated */
    unsigned flags;
    const char *desc;
} rf_conf_opt_t;

extern const rf_conf_opt_t rf_conf_opts[];
extern const size_t rf_conf_opts_cnt;

struct rf_err;

/* A new configuration holding the defaults; caller frees with rf_conf_free(). */
rf_conf_t *rf_conf_new(void);
void rf_conf_free(rf_conf_t *cfg);

/* Sets one option from text.  `where` names the origin for messages and dumps
 * ("configs/x.properties:12", "RAGFEED_STATE_DIR", "--set"); borrowed.
 * Returns RF_ECONFIG with "<where>: <key>=<value>: <what was expected>" in err. */
int rf_conf_set(rf_conf_t *cfg, const char *key, const char *value, rf_conf_origin origin,
                const char *where, struct rf_err *err);
/* Loads a properties file (`key = value`, `#`/`!` comments, `\` line continuation). */
int rf_conf_load_file(rf_conf_t *cfg, const char *path, struct rf_err *err);
/* Applies every RAGFEED_<KEY> variable of envp (NULL-terminated). */
int rf_conf_load_env(rf_conf_t *cfg, char *const *envp, struct rf_err *err);
/* Checks that involve several options.  `for_run` also requires RF_CONF_REQUIRED keys. */
int rf_conf_finalize(rf_conf_t *cfg, int for_run, struct rf_err *err);

/* Writes `key = value` lines; secrets as "[redacted]"; `effective` adds the origin. */
void rf_conf_dump(const rf_conf_t *cfg, FILE *fp, int effective);
/* Writes docs/CONFIGURATION.md's text. */
void rf_conf_doc(FILE *fp);

/* Looks an option up by name; NULL when unknown. */
const rf_conf_opt_t *rf_conf_opt_find(const char *name);

/* Splits a LIST value into trimmed items.  *items is one allocation (array and
 * strings); caller frees with free().  Returns the count. */
size_t rf_conf_list_split(const char *list, char ***items);

/* Value of kafka.<key> or NULL (borrowed). */
const char *rf_conf_kafka_get(const rf_conf_t *cfg, const char *key);

#endif /* RF_CORE_CONF_H */
