/* core_util.c - allocation that aborts on exhaustion, bounded growable buffers,
 * clocks, and atomic file replacement (tmp + fsync + rename), which checkpoints and
 * metadata files rely on to never expose a half-written file. */
#include "core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ==== Allocation ==== */

static void oom(size_t n)
{
    fprintf(stderr, "ragfeed: out of memory allocating %zu bytes\n", n);
    abort();
}

void *rf_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *rf_xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p)
        oom(nmemb * size);
    return p;
}

void *rf_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *rf_xstrdup(const char *s)
{
    return rf_xstrndup(s, strlen(s));
}

char *rf_xstrndup(const char *s, size_t n)
{
    char *p = rf_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *rf_xasprintf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    p = rf_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* ==== Buffers ==== */

void rf_buf_init(rf_buf_t *b, size_t max)
{
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max ? max : RF_BUF_DEFAULT_MAX;
}

void rf_buf_fini(rf_buf_t *b)
{
    free(b->ptr);
    b->ptr = NULL;
    b->len = b->cap = 0;
}

void rf_buf_reset(rf_buf_t *b)
{
    b->len = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

static rf_rc buf_reserve(rf_buf_t *b, size_t extra)
{
    size_t need;
    if (extra > b->max || b->len > b->max - extra)
        return RF_ETOOBIG;
    need = b->len + extra + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < need)
            cap *= 2;
        b->ptr = rf_xrealloc(b->ptr, cap);
        b->cap = cap;
    }
    return RF_OK;
}

rf_rc rf_buf_append(rf_buf_t *b, const void *p, size_t n)
{
    if (buf_reserve(b, n))
        return RF_ETOOBIG;
    if (n)
        memcpy(b->ptr + b->len, p, n);
    b->len += n;
    b->ptr[b->len] = '\0';
    return RF_OK;
}

rf_rc rf_buf_puts(rf_buf_t *b, const char *s)
{
    return rf_buf_append(b, s, strlen(s));
}

rf_rc rf_buf_printf(rf_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return RF_EINVAL;
    if (buf_reserve(b, (size_t)n))
        return RF_ETOOBIG;
    va_start(ap, fmt);
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return RF_OK;
}

char *rf_buf_take(rf_buf_t *b, size_t *len_out)
{
    char *p = b->ptr ? b->ptr : rf_xstrdup("");
    if (len_out)
        *len_out = b->len;
    b->ptr = NULL;
    b->len = b->cap = 0;
    return p;
}

/* ==== Text ==== */

int rf_utf8_valid(const void *ptr, size_t len)
{
    const unsigned char *p = ptr;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        size_t n;
        uint32_t cp;
        /* ASCII fast path, eight bytes at a time. */
        if (len - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if ((w & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i - 1 < n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}

/* ==== Time ==== */

int64_t rf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rf_mono_ms(void)
{
    return rf_mono_us() / 1000;
}

int64_t rf_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void rf_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* ==== Threads ==== */

/* <sched.h> declares SCHED_IDLE only with _GNU_SOURCE; the value is Linux's ABI. */
#if defined(__linux__) && !defined(SCHED_IDLE)
#define SCHED_IDLE 5
#endif

int rf_thread_background(void)
{
#ifdef __linux__
    /* A SCHED_IDLE thread never preempts a normal one and is preempted as soon as one
     * wakes, where nice 19 still takes a slice of a busy core (1.5% of the weight, but
     * several milliseconds at a time). */
    struct sched_param sp = {0};
    if (sched_setscheduler(0, SCHED_IDLE, &sp) == 0)
        return 0;
#endif
#ifdef __linux__
    /* On Linux nice is per thread: the calling one by its tid. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) == 0)
        return 0;
#else
    if (setpriority(PRIO_PROCESS, 0, 19) == 0)
        return 0;
#endif
    return -1;
}

int rf_thread_nice(int nice)
{
#ifdef __linux__
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice) == 0 ? 0 : -1;
#else
    return setpriority(PRIO_PROCESS, 0, nice) == 0 ? 0 : -1;
#endif
}

/* The raw system calls take a bit mask and need no _GNU_SOURCE (cpu_set_t does). */
void rf_cpus_of(int tid, rf_cpus_t *out)
{
    memset(out, 0, sizeof(*out));
#ifdef __linux__
    if (syscall(SYS_sched_getaffinity, (pid_t)tid, sizeof(out->bits), out->bits) <= 0) {
        memset(out, 0, sizeof(*out));
        return;
    }
    for (int c = 0; c < RF_CPUS_MAX; c++)
        out->cnt += rf_cpus_has(out, c);
#else
    (void)tid;
#endif
}

void rf_cpus_current(rf_cpus_t *out)
{
    rf_cpus_of(0, out);
}

static rf_rc cpus_parse(const char *spec, rf_cpus_t *out, rf_err_t *err)
{
    rf_cpus_t allowed;
    const char *p = spec;
    memset(out, 0, sizeof(*out));
    if (!spec || !*spec)
        return RF_OK;
    rf_cpus_current(&allowed);
    for (;;) {
        char *end;
        long lo, hi;
        if (*p < '0' || *p > '9')
            return rf_err_set(err, RF_ECONFIG, "at \"%s\": expected a CPU number", p);
        lo = hi = strtol(p, &end, 10);
        p = end;
        if (*p == '-') {
            if (p[1] < '0' || p[1] > '9')
                return rf_err_set(err, RF_ECONFIG, "at \"%s\": expected a CPU number after -", p);
            hi = strtol(p + 1, &end, 10);
            p = end;
        }
        if (lo > hi)
            return rf_err_set(err, RF_ECONFIG, "range %ld-%ld: expected the lower CPU first", lo,
                              hi);
        for (long c = lo; c <= hi; c++) {
            if (!rf_cpus_has(&allowed, c))
                return rf_err_set(err, RF_ECONFIG,
                                  "CPU %ld: expected CPUs this process may run on (%d of them, "
                                  "numbered from 0; see nproc and taskset -p)",
                                  c, allowed.cnt);
            rf_cpus_add(out, c);
        }
        if (!*p)
            return RF_OK;
        if (*p != ',')
            return rf_err_set(err, RF_ECONFIG, "at \"%s\": expected , or the end", p);
        p++;
    }
}

rf_rc rf_cpus_parse(const char *spec, rf_cpus_t *out, rf_err_t *err)
{
    rf_rc rc = cpus_parse(spec, out, err);
    if (rc)
        memset(out, 0, sizeof(*out)); /* never a part of a list */
    return rc;
}

int rf_thread_cpus(const rf_cpus_t *cpus)
{
    if (!cpus || !cpus->cnt)
        return 0;
#ifdef __linux__
    return syscall(SYS_sched_setaffinity, (pid_t)syscall(SYS_gettid), sizeof(cpus->bits),
                   cpus->bits) == 0
               ? 0
               : -1;
#else
    errno = ENOSYS;
    return -1;
#endif
}

void rf_thread_name(const char *name)
{
#ifdef __linux__
    char buf[16];
    snprintf(buf, sizeof(buf), "%s", name);
    (void)prctl(PR_SET_NAME, buf, 0, 0, 0);
#else
    (void)name;
#endif
}

/* ==== Files ==== */

rf_rc rf_mkdirs(const char *path, rf_err_t *err)
{
    char *p = rf_xstrdup(path);
    rf_rc rc = RF_OK;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0755) == -1 && errno != EEXIST) {
                rc = rf_err_sys(err, RF_EIO, "mkdir %s", p);
                break;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    free(p);
    return rc;
}

rf_rc rf_rmtree(const char *path)
{
    struct stat st;
    rf_rc rc = RF_OK;
    DIR *d;
    if (lstat(path, &st))
        return errno == ENOENT ? RF_OK : RF_EIO;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) ? RF_EIO : RF_OK;
    if ((d = opendir(path))) {
        struct dirent *de;
        while ((de = readdir(d))) {
            char *child;
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            child = rf_xasprintf("%s/%s", path, de->d_name);
            if (rf_rmtree(child))
                rc = RF_EIO;
            free(child);
        }
        closedir(d);
    }
    if (rmdir(path))
        rc = RF_EIO;
    return rc;
}

int rf_pwrite_all(int fd, const void *data, size_t len, off_t off)
{
    const char *p = data;
    while (len) {
        ssize_t n = pwrite(fd, p, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

rf_rc rf_file_atomic_open(const char *path, char **tmp, int *fd, rf_err_t *err)
{
    *tmp = rf_xasprintf("%s.tmp.%ld", path, (long)getpid());
    *fd = open(*tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (*fd >= 0)
        return RF_OK;
    rf_rc rc = rf_err_sys(err, RF_EIO, "open %s", *tmp);
    free(*tmp);
    *tmp = NULL;
    return rc;
}

rf_rc rf_file_atomic_commit(const char *path, char *tmp, int fd, rf_rc rc, rf_err_t *err)
{
    if (!rc && fsync(fd))
        rc = rf_err_sys(err, RF_EIO, "fsync %s", tmp);
    if (close(fd) && !rc)
        rc = rf_err_sys(err, RF_EIO, "close %s", tmp);
    if (!rc && rename(tmp, path))
        rc = rf_err_sys(err, RF_EIO, "rename %s", tmp);
    if (rc) {
        unlink(tmp);
    } else {
        /* The rename is durable only once the directory entry is. */
        char *dir = rf_xstrdup(path);
        int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    free(tmp);
    return rc;
}

rf_rc rf_file_write_atomic(const char *path, const void *data, size_t len, rf_err_t *err)
{
    char *tmp;
    int fd;
    rf_rc rc = rf_file_atomic_open(path, &tmp, &fd, err);
    if (rc)
        return rc;
    if (rf_pwrite_all(fd, data, len, 0))
        rc = rf_err_sys(err, RF_EIO, "write %s", tmp);
    return rf_file_atomic_commit(path, tmp, fd, rc, err);
}

rf_rc rf_file_read(const char *path, size_t max, char **data, size_t *len, rf_err_t *err)
{
    rf_buf_t b;
    char chunk[65536];
    rf_rc rc = RF_OK;
    FILE *fp = fopen(path, "rb");
    *data = NULL;
    if (!fp)
        return rf_err_sys(err, errno == ENOENT ? RF_ENOTFOUND : RF_EIO, "open %s", path);
    rf_buf_init(&b, max);
    for (;;) {
        size_t n = fread(chunk, 1, sizeof(chunk), fp);
        if (n && rf_buf_append(&b, chunk, n)) {
            rc = rf_err_set(err, RF_ETOOBIG, "%s: larger than %zu bytes", path, max);
            break;
        }
        if (n < sizeof(chunk)) {
            if (ferror(fp))
                rc = rf_err_sys(err, RF_EIO, "read %s", path);
            break;
        }
    }
    fclose(fp);
    if (rc) {
        rf_buf_fini(&b);
        return rc;
    }
    *data = rf_buf_take(&b, len);
    return RF_OK;
}
