/* test_core.c - error table, bounded buffers, atomic files and the log macro (level
 * checked before arguments are evaluated, per-module debug, JSON lines). */
#include "core/core.h"
#include "rf_test.h"

#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/stat.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__linux__) && !defined(SCHED_IDLE)
#define SCHED_IDLE 5
#endif

static void test_err_table(void)
{
    rf_err_t err;
    RF_CHECK_STR(rf_rc_name(RF_ECONFIG), "ECONFIG");
    RF_CHECK(rf_rc_retriable(RF_EUNAVAIL));
    RF_CHECK(!rf_rc_retriable(RF_EPARSE));
    RF_CHECK_STR(rf_rc_name((rf_rc)9999), "EUNKNOWN");
    RF_CHECK_INT(rf_err_set(&err, RF_EPARSE, "at %d", 7), RF_EPARSE);
    RF_CHECK_STR(err.msg, "at 7");
    RF_CHECK_INT(rf_err_set(NULL, RF_EIO, "x"), RF_EIO);
}

static void test_buf_limit(void)
{
    rf_buf_t b;
    rf_buf_init(&b, 8);
    RF_CHECK_INT(rf_buf_puts(&b, "1234"), RF_OK);
    RF_CHECK_INT(rf_buf_printf(&b, "%d", 5678), RF_OK);
    RF_CHECK_INT(rf_buf_puts(&b, "9"), RF_ETOOBIG);
    RF_CHECK_STR(b.ptr, "12345678");
    RF_CHECK_INT(b.len, 8);
    rf_buf_fini(&b);
}

static void test_atomic_file(void)
{
    char *dir = rf_test_tmpdir("core");
    char *sub = rf_xasprintf("%s/a/b", dir), *path = rf_xasprintf("%s/a/b/f", dir);
    char *data = NULL;
    size_t len = 0;
    rf_err_t err;
    RF_REQUIRE(rf_mkdirs(sub, &err) == RF_OK);
    RF_REQUIRE(rf_file_write_atomic(path, "hello", 5, &err) == RF_OK);
    RF_REQUIRE(rf_file_read(path, 100, &data, &len, &err) == RF_OK);
    RF_CHECK_INT(len, 5);
    RF_CHECK(memcmp(data, "hello", 5) == 0);
    free(data);
    RF_CHECK_INT(rf_file_read(path, 3, &data, &len, &err), RF_ETOOBIG);
    RF_CHECK_INT(rf_file_read("/nonexistent/zz", 3, &data, &len, &err), RF_ENOTFOUND);
    {
        /* In pieces: a writer that failed leaves the old file and no tmp file. */
        char *tmp = NULL, *kept;
        int fd = -1;
        struct stat st;
        RF_REQUIRE(rf_file_atomic_open(path, &tmp, &fd, &err) == RF_OK);
        kept = rf_xstrdup(tmp);
        RF_CHECK_INT(rf_pwrite_all(fd, "XY", 2, 3), 0);
        RF_CHECK_INT(rf_file_atomic_commit(path, tmp, fd, RF_EIO, &err), RF_EIO);
        RF_CHECK(stat(kept, &st) != 0);
        RF_REQUIRE(rf_file_read(path, 100, &data, &len, &err) == RF_OK);
        RF_CHECK(len == 5 && memcmp(data, "hello", 5) == 0);
        free(data);
        /* ...and one that succeeded replaces it, holes and all. */
        RF_REQUIRE(rf_file_atomic_open(path, &tmp, &fd, &err) == RF_OK);
        RF_CHECK_INT(rf_pwrite_all(fd, "XY", 2, 3), 0);
        RF_CHECK_INT(rf_pwrite_all(fd, "abc", 3, 0), 0);
        RF_CHECK_INT(rf_file_atomic_commit(path, tmp, fd, RF_OK, &err), RF_OK);
        RF_CHECK(stat(kept, &st) != 0);
        RF_REQUIRE(rf_file_read(path, 100, &data, &len, &err) == RF_OK);
        RF_CHECK(len == 5 && memcmp(data, "abcXY", 5) == 0);
        free(data);
        free(kept);
    }
    free(sub);
    free(path);
    rf_test_rmtree(dir);
    free(dir);
}

static int evaluated;
static int side_effect(void)
{
    evaluated++;
    return 1;
}

static void test_log_levels_and_json(void)
{
    char *dir = rf_test_tmpdir("log");
    char *path = rf_xasprintf("%s/log", dir);
    FILE *fp = fopen(path, "w");
    rf_err_t err;
    rf_log_set_stream(fp);
    RF_REQUIRE(rf_log_setup(RF_LOG_WARN, RF_LOG_FORMAT_JSON, "index", &err) == RF_OK);
    evaluated = 0;
    RF_LOG(RF_LOG_INFO, RF_MOD_INGEST, "x=%d dropped", side_effect());
    RF_LOG(RF_LOG_DEBUG, RF_MOD_INGEST, "x=%d dropped", side_effect());
    RF_CHECK_INT(evaluated, 0);
    RF_LOG(RF_LOG_DEBUG, RF_MOD_INDEX, "seq=%d note=\"two words\" kept %s", 42, "here");
    RF_LOG(RF_LOG_ERROR, RF_MOD_APP, "plain message");
    fclose(fp);
    rf_log_set_stream(NULL);
    RF_CHECK_INT(rf_log_setup(RF_LOG_INFO, RF_LOG_FORMAT_TEXT, "ingest,nosuch", &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "nosuch") != NULL);
    rf_log_setup(RF_LOG_INFO, RF_LOG_FORMAT_TEXT, NULL, NULL);

    char *text = rf_test_read_file(path, NULL);
    char *nl = strchr(text, '\n');
    RF_REQUIRE(nl != NULL);
    *nl = 0;
    json_error_t jerr;
    json_t *line = json_loads(text, 0, &jerr);
    RF_REQUIRE(line != NULL);
    RF_CHECK_STR(json_string_value(json_object_get(line, "level")), "debug");
    RF_CHECK_STR(json_string_value(json_object_get(line, "mod")), "index");
    RF_CHECK_STR(json_string_value(json_object_get(line, "seq")), "42");
    RF_CHECK_STR(json_string_value(json_object_get(line, "note")), "two words");
    RF_CHECK_STR(json_string_value(json_object_get(line, "msg")), "kept here");
    json_decref(line);
    line = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, &jerr);
    RF_REQUIRE(line != NULL);
    RF_CHECK_STR(json_string_value(json_object_get(line, "msg")), "plain message");
    json_decref(line);
    free(text);
    free(path);
    rf_test_rmtree(dir);
    free(dir);
}

typedef struct bg_seen {
    int rc, policy, nice, child_policy;
} bg_seen_t;

static void *bg_child(void *arg)
{
    ((bg_seen_t *)arg)->child_policy = sched_getscheduler(0);
    return NULL;
}

static void *bg_thread(void *arg)
{
    bg_seen_t *s = arg;
    pthread_t t;
    s->rc = rf_thread_background();
    s->policy = sched_getscheduler(0);
    s->nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    if (pthread_create(&t, NULL, bg_child, s) == 0)
        pthread_join(t, NULL);
    return NULL;
}

/* The thread that asks becomes background work, and so do the threads it starts (an
 * index build's OpenMP workers); the rest of the process keeps its priority. */
static void test_thread_background(void)
{
    bg_seen_t s = {-2, -2, -2, -2};
    pthread_t t;
    int before = sched_getscheduler(0);
    RF_CHECK_INT(pthread_create(&t, NULL, bg_thread, &s), 0);
    pthread_join(t, NULL);
    RF_CHECK_INT(s.rc, 0);
#ifdef __linux__
    RF_CHECK_INT(s.policy, SCHED_IDLE);
    RF_CHECK_INT(s.child_policy, SCHED_IDLE);
#else
    RF_CHECK_INT(s.nice, 19);
#endif
    RF_CHECK_INT(sched_getscheduler(0), before);
    RF_CHECK(before != SCHED_IDLE);
}

#ifdef __linux__
typedef struct name_seen {
    char mine[32], other[32];
} name_seen_t;

static void *name_thread(void *arg)
{
    name_seen_t *s = arg;
    /* Cut to the 15 bytes a thread name holds. */
    rf_thread_name("rf-test-name-longer-than-fifteen");
    (void)prctl(PR_GET_NAME, s->mine, 0, 0, 0);
    return NULL;
}
#endif

/* A thread names itself, cut to what the system keeps; the other threads keep theirs. */
static void test_thread_name(void)
{
#ifdef __linux__
    name_seen_t s = {{0}, {0}};
    pthread_t t;
    char before[32] = {0};
    (void)prctl(PR_GET_NAME, before, 0, 0, 0);
    RF_CHECK_INT(pthread_create(&t, NULL, name_thread, &s), 0);
    pthread_join(t, NULL);
    RF_CHECK_STR(s.mine, "rf-test-name-lo");
    (void)prctl(PR_GET_NAME, s.other, 0, 0, 0);
    RF_CHECK_STR(s.other, before);
#else
    rf_thread_name("rf-test");
#endif
}

typedef struct nice_seen {
    int rc, nice, child_nice;
} nice_seen_t;

static void *nice_child(void *arg)
{
    nice_seen_t *s = arg;
    s->child_nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    return NULL;
}

static void *nice_thread(void *arg)
{
    nice_seen_t *s = arg;
    pthread_t t;
    s->rc = rf_thread_nice(6);
    s->nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    if (pthread_create(&t, NULL, nice_child, s) == 0)
        pthread_join(t, NULL);
    return NULL;
}

/* The thread that asks gets the nice value, and so do the threads it starts; the rest of
 * the process keeps its own. */
static void test_thread_nice(void)
{
    nice_seen_t s = {-2, -100, -100};
    pthread_t t;
    int before = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    RF_REQUIRE(before < 6);
    RF_CHECK_INT(pthread_create(&t, NULL, nice_thread, &s), 0);
    pthread_join(t, NULL);
    RF_CHECK_INT(s.rc, 0);
    RF_CHECK_INT(s.nice, 6);
    RF_CHECK_INT(s.child_nice, 6);
    RF_CHECK_INT(getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)), before);
}

/* CPU lists: ranges and lists, duplicates counted once; malformed ones and CPUs the process
 * may not use refused with what was expected. */
static void test_cpus_parse(void)
{
    rf_cpus_t all, c;
    rf_err_t err = {0};
    int n;
    rf_cpus_current(&all);
    RF_REQUIRE(all.cnt > 0);
    for (n = 0; n < RF_CPUS_MAX && rf_cpus_has(&all, n); n++)
        ;
    RF_CHECK_INT(rf_cpus_parse("", &c, &err), RF_OK);
    RF_CHECK_INT(c.cnt, 0);
    RF_CHECK_INT(rf_cpus_parse(NULL, &c, &err), RF_OK);
    RF_CHECK_INT(c.cnt, 0);
    RF_CHECK_INT(rf_cpus_parse("0", &c, &err), rf_cpus_has(&all, 0) ? RF_OK : RF_ECONFIG);
    if (rf_cpus_has(&all, 0)) {
        RF_CHECK_INT(c.cnt, 1);
        RF_CHECK(rf_cpus_has(&c, 0));
        RF_CHECK(!rf_cpus_has(&c, 1));
    }
    if (n >= 2) { /* CPUs 0 and 1 both allowed */
        RF_CHECK_INT(rf_cpus_parse("0-1,1,0", &c, &err), RF_OK);
        RF_CHECK_INT(c.cnt, 2);
        RF_CHECK(rf_cpus_has(&c, 0) && rf_cpus_has(&c, 1) && !rf_cpus_has(&c, 2));
    }
    RF_CHECK_INT(rf_cpus_parse("1-0", &c, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "range 1-0: expected the lower CPU first") != NULL);
    RF_CHECK_INT(rf_cpus_parse("0,", &c, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "expected a CPU number") != NULL);
    RF_CHECK_INT(rf_cpus_parse("0;1", &c, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "at \";1\": expected , or the end") != NULL);
    RF_CHECK_INT(c.cnt, 0); /* not the part before the error */
    RF_CHECK(!rf_cpus_has(&c, 0));
    RF_CHECK_INT(rf_cpus_parse("-1", &c, &err), RF_ECONFIG);
    RF_CHECK_INT(rf_cpus_parse("0-", &c, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "expected a CPU number after -") != NULL);
    RF_CHECK_INT(rf_cpus_parse("5000", &c, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "CPU 5000: expected CPUs this process may run on") != NULL);
}

typedef struct cpus_seen {
    const rf_cpus_t *want;
    int rc;
    rf_cpus_t got, child;
} cpus_seen_t;

static void *cpus_child(void *arg)
{
    rf_cpus_current(&((cpus_seen_t *)arg)->child);
    return NULL;
}

static void *cpus_thread(void *arg)
{
    cpus_seen_t *s = arg;
    pthread_t t;
    s->rc = rf_thread_cpus(s->want);
    rf_cpus_current(&s->got);
    if (pthread_create(&t, NULL, cpus_child, s) == 0)
        pthread_join(t, NULL);
    return NULL;
}

/* The thread that asks gets the CPUs, and so do the threads it starts; the rest of the
 * process keeps its own.  An empty set changes nothing. */
static void test_thread_cpus(void)
{
    rf_cpus_t all, one = {{0}, 0}, after;
    cpus_seen_t s = {&one, -2, {{0}, 0}, {{0}, 0}};
    pthread_t t;
    int first = -1;
    rf_cpus_current(&all);
    RF_REQUIRE(all.cnt > 0);
    for (int c = 0; c < RF_CPUS_MAX && first < 0; c++)
        if (rf_cpus_has(&all, c))
            first = c;
    rf_cpus_add(&one, first);
    RF_CHECK_INT(pthread_create(&t, NULL, cpus_thread, &s), 0);
    pthread_join(t, NULL);
    RF_CHECK_INT(s.rc, 0);
    RF_CHECK_INT(s.got.cnt, 1);
    RF_CHECK(rf_cpus_has(&s.got, first));
    RF_CHECK_INT(s.child.cnt, 1);
    RF_CHECK(rf_cpus_has(&s.child, first));
    rf_cpus_current(&after);
    RF_CHECK_INT(after.cnt, all.cnt);
    RF_CHECK_INT(rf_thread_cpus(&(rf_cpus_t){{0}, 0}), 0);
    rf_cpus_current(&after);
    RF_CHECK_INT(after.cnt, all.cnt);
}

RF_TEST_MAIN(test_err_table, test_buf_limit, test_atomic_file, test_log_levels_and_json,
             test_thread_background, test_thread_name, test_thread_nice, test_cpus_parse,
             test_thread_cpus)
