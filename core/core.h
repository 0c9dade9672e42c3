/* core.h - the public face of core/: status codes, error details, logging,
 * allocation, byte slices and bounded buffers, time helpers and the configuration.
 *
 * core/ depends on nothing else in the project; every stage may include this header.
 * Ownership words used below: "borrowed" (caller keeps it), "takes ownership",
 * "caller frees with X".
 */
#ifndef RF_CORE_H
#define RF_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

/* ==== Status codes ==== */

/* One table: name, retriable flag, message.  Append only; never renumber, the
 * numbers appear in logs, metrics and exit paths. */
#define RF_ERR_MAP(XX)                                                                             \
    XX(OK, 0, "success")                                                                           \
    XX(EINVAL, 0, "invalid argument")                                                              \
    XX(ECONFIG, 0, "invalid configuration")                                                        \
    XX(ENOMEM, 0, "out of memory")                                                                 \
    XX(EIO, 1, "input/output error")                                                               \
    XX(ETOOBIG, 0, "value too large")                                                              \
    XX(EPARSE, 0, "malformed input")                                                               \
    XX(ENOTFOUND, 0, "not found")                                                                  \
    XX(ECORRUPT, 0, "corrupt state")                                                               \
    XX(EUNAVAIL, 1, "dependency unavailable")                                                      \
    XX(ETIMEDOUT, 1, "timed out")                                                                  \
    XX(EKAFKA, 1, "kafka error")                                                                   \
    XX(ESTORE, 0, "store error")                                                                   \
    XX(EINDEX, 0, "index error")                                                                   \
    XX(EEMBED, 0, "embedding error")                                                               \
    XX(EUSAGE, 0, "usage error")                                                                   \
    XX(ENOTIMPL, 0, "not implemented")                                                             \
    XX(EBUSY, 1, "busy, try again")                                                                \
    XX(ESTOPPED, 0, "stopped")                                                                     \
    XX(EEXIST, 0, "already exists")                                                                \
    XX(EAUTH, 0, "not authorised")                                                                 \
    XX(EAGAIN, 1, "state changed, try again")

typedef enum rf_rc {
#define RF__ERR_ENUM(name, retriable, msg) RF_##name,
    RF_ERR_MAP(RF__ERR_ENUM)
#undef RF__ERR_ENUM
        RF__ERR_COUNT
} rf_rc;

/* Returns the code's name without prefix ("ECONFIG"); never NULL. */
const char *rf_rc_name(rf_rc rc);
/* Returns the code's generic message; never NULL. */
const char *rf_rc_msg(rf_rc rc);
/* Returns 1 when an operation failing with rc may succeed if retried. */
int rf_rc_retriable(rf_rc rc);

/* Error details travel beside the code.  Functions take an optional last parameter
 * `rf_err_t *err` that may be NULL. */
typedef struct rf_err {
    rf_rc code;
    int sys_errno; /* errno when the failure came from the OS, else 0 */
    char msg[256];
} rf_err_t;

/* Fills err (if not NULL) and returns code, so callers can `return rf_err_set(...)`. */
rf_rc rf_err_set(rf_err_t *err, rf_rc code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like rf_err_set, and appends ": strerror(errno)" and records errno. */
rf_rc rf_err_sys(rf_err_t *err, rf_rc code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rf_err_clear(rf_err_t *err);

/* ==== Allocation ==== */

/* These never return NULL: on exhaustion they log and abort(). */
void *rf_xmalloc(size_t n);
void *rf_xcalloc(size_t nmemb, size_t size);
void *rf_xrealloc(void *p, size_t n);
char *rf_xstrdup(const char *s);
char *rf_xstrndup(const char *s, size_t n);
/* printf into a new string; caller frees with free(). */
char *rf_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ==== Bytes ==== */

/* A borrowed view of bytes; never assume a NUL terminator. */
typedef struct rf_slice {
    const uint8_t *ptr;
    size_t len;
} rf_slice_t;

#define RF_SLICE_NULL ((rf_slice_t){NULL, 0})
static inline rf_slice_t rf_slice(const void *p, size_t n)
{
    rf_slice_t s = {(const uint8_t *)p, n};
    return s;
}

/* A growable buffer with a hard maximum size.  Always NUL-terminated (the NUL is not
 * counted in len) so text can be used directly. */
typedef struct rf_buf {
    char *ptr;
    size_t len;
    size_t cap;
    size_t max; /* 0 means RF_BUF_DEFAULT_MAX */
} rf_buf_t;

#define RF_BUF_DEFAULT_MAX ((size_t)1 << 30)

void rf_buf_init(rf_buf_t *b, size_t max);
void rf_buf_fini(rf_buf_t *b);
void rf_buf_reset(rf_buf_t *b);
/* Append; returns RF_ETOOBIG (buffer unchanged) when max would be exceeded. */
rf_rc rf_buf_append(rf_buf_t *b, const void *p, size_t n);
rf_rc rf_buf_puts(rf_buf_t *b, const char *s);
rf_rc rf_buf_printf(rf_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Transfers the bytes to the caller (caller frees with free()) and resets b. */
char *rf_buf_take(rf_buf_t *b, size_t *len_out);

/* 1 when p[0..n) is well-formed UTF-8: no overlong forms, no surrogates, nothing above
 * U+10FFFF, no truncated sequence (NUL bytes are valid UTF-8; callers that refuse them
 * check separately). */
int rf_utf8_valid(const void *p, size_t n);

/* ==== Time ==== */

int64_t rf_now_ms(void);  /* wall clock, ms since the epoch */
int64_t rf_mono_ms(void); /* monotonic clock, ms */
int64_t rf_mono_us(void); /* monotonic clock, us */
void rf_sleep_ms(int64_t ms);

/* ==== Threads ==== */

/* Makes the calling thread background work: it runs only on a core nothing else wants
 * (SCHED_IDLE on Linux; else the lowest nice).  Threads it starts inherit that.  0 when
 * set, -1 (errno) when the system refused both. */
int rf_thread_background(void);
/* Sets the calling thread's nice value (0..19; on Linux nice is per thread).  Threads it
 * starts afterwards inherit it; the others keep theirs.  0 when set, -1 (errno) when
 * refused. */
int rf_thread_nice(int nice);
/* Names the calling thread (top -H, ps -L, perf, gdb), up to 15 bytes; longer names are
 * cut.  No-op where the system has no thread names. */
void rf_thread_name(const char *name);

/* A set of CPUs by number (ingest.cpus, serve.cpus).  cnt 0: no restriction. */
#define RF_CPUS_MAX 1024
typedef struct rf_cpus {
    uint64_t bits[RF_CPUS_MAX / 64];
    int cnt;
} rf_cpus_t;
/* Parses a CPU list such as "1" or "0,2-3" (NULL or "": no restriction).  Every CPU must
 * be one this process may run on.  RF_ECONFIG with what is wrong (the caller names the
 * option), and *out empty. */
rf_rc rf_cpus_parse(const char *spec, rf_cpus_t *out, rf_err_t *err);
/* The CPUs the calling thread may run on now (an empty set where unknown). */
void rf_cpus_current(rf_cpus_t *out);
/* The same for thread tid of this process (0: the calling one). */
void rf_cpus_of(int tid, rf_cpus_t *out);
/* Whether cpu is in c. */
static inline int rf_cpus_has(const rf_cpus_t *c, long cpu)
{
    return cpu >= 0 && cpu < RF_CPUS_MAX && (int)((c->bits[cpu / 64] >> (cpu % 64)) & 1);
}
/* Adds cpu (0..RF_CPUS_MAX-1) to c. */
static inline void rf_cpus_add(rf_cpus_t *c, long cpu)
{
    if (!rf_cpus_has(c, cpu)) {
        c->bits[cpu / 64] |= (uint64_t)1 << (cpu % 64);
        c->cnt++;
    }
}
/* Keeps the calling thread to cpus; threads it starts afterwards inherit that.  No-op
 * when cpus->cnt is 0.  0 when set, -1 (errno) when refused or unsupported. */
int rf_thread_cpus(const rf_cpus_t *cpus);

/* ==== Files ==== */

/* Writes data to path atomically: path.tmp, fsync, rename, fsync of the directory. */
rf_rc rf_file_write_atomic(const char *path, const void *data, size_t len, rf_err_t *err);
/* The same in pieces, for a file written in parts: opens path.tmp.PID (*tmp, *fd); then
 * rf_file_atomic_commit with the writer's result rc: when RF_OK, fsync, rename over path
 * and fsync of the directory, else (or when one of those fails) the tmp file is removed.
 * Closes fd, frees tmp; returns rc or the first failure. */
rf_rc rf_file_atomic_open(const char *path, char **tmp, int *fd, rf_err_t *err);
rf_rc rf_file_atomic_commit(const char *path, char *tmp, int fd, rf_rc rc, rf_err_t *err);
/* pwrite of all len bytes at off (EINTR retried).  0, or -1 with errno. */
int rf_pwrite_all(int fd, const void *data, size_t len, off_t off);
/* Reads a whole file up to max bytes; *data caller frees with free(). */
rf_rc rf_file_read(const char *path, size_t max, char **data, size_t *len, rf_err_t *err);
/* mkdir -p */
rf_rc rf_mkdirs(const char *path, rf_err_t *err);
/* rm -rf of a directory tree (symbolic links are removed, never followed).  Best effort:
 * returns RF_EIO when something could not be removed. */
rf_rc rf_rmtree(const char *path);

/* ==== Logging ==== */

typedef enum rf_log_level {
    RF_LOG_ERROR = 0,
    RF_LOG_WARN = 1,
    RF_LOG_INFO = 2,
    RF_LOG_DEBUG = 3,
} rf_log_level;

/* Modules, for per-module debug output (`log.debug = ingest,index`). */
#define RF_MOD_MAP(XX)                                                                             \
    XX(CORE, "core")                                                                               \
    XX(APP, "app")                                                                                 \
    XX(INGEST, "ingest")                                                                           \
    XX(EMBED, "embed")                                                                             \
    XX(INDEX, "index")                                                                             \
    XX(SERVE, "serve")                                                                             \
    XX(ICEBERG, "iceberg")

typedef enum rf_mod {
#define RF__MOD_ENUM(name, str) RF_MOD_##name,
    RF_MOD_MAP(RF__MOD_ENUM)
#undef RF__MOD_ENUM
        RF__MOD_COUNT
} rf_mod;

extern int rf__log_level;           /* messages above this level are dropped */
extern unsigned rf__log_debug_mask; /* modules whose debug lines are kept */

static inline int rf_log_enabled(rf_log_level lvl, rf_mod mod)
{
    if (lvl == RF_LOG_DEBUG)
        return (rf__log_debug_mask & (1u << mod)) != 0 || rf__log_level >= RF_LOG_DEBUG;
    return (int)lvl <= rf__log_level;
}

/* The message is "key=value ... free text": leading key=value tokens are fields (values
 * with spaces are double-quoted), the rest is the message.  Arguments are evaluated only
 * when the line is kept.  Never pass secrets or payload bodies. */
#define RF_LOG(lvl, mod, ...)                                                                      \
    do {                                                                                           \
        if (rf_log_enabled((lvl), (mod)))                                                          \
            rf_log_write((lvl), (mod), __VA_ARGS__);                                               \
    } while (0)

void rf_log_write(rf_log_level lvl, rf_mod mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef enum rf_log_format {
    RF_LOG_FORMAT_TEXT = 0,
    RF_LOG_FORMAT_JSON = 1,
} rf_log_format;

/* Configure logging.  debug_modules is a comma list ("ingest,index", "all") or NULL.
 * Returns RF_ECONFIG for an unknown module name. */
rf_rc rf_log_setup(rf_log_level lvl, rf_log_format fmt, const char *debug_modules, rf_err_t *err);
/* Where lines go (default stderr); borrowed. */
void rf_log_set_stream(FILE *fp);
const char *rf_mod_name(rf_mod mod);

/* ==== Configuration ==== */

#include "core_conf.h"

#endif /* RF_CORE_H */
