/* rf_test.c - runner and helpers behind rf_test.h. */
#include "rf_test.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int rf__test_failures;
jmp_buf rf__test_jmp;

void rf__test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    rf__test_failures++;
}

void rf__test_split_names(const char *names, rf_test_case_t *cases, size_t n)
{
    static char buf[8192];
    size_t len = strlen(names);
    if (len >= sizeof(buf))
        len = sizeof(buf) - 1;
    memcpy(buf, names, len);
    buf[len] = 0;
    char *p = buf;
    for (size_t i = 0; i < n; i++) {
        while (*p == ' ' || *p == ',' || *p == '\n' || *p == '\t')
            p++;
        cases[i].name = p;
        while (*p && *p != ',')
            p++;
        char *end = p;
        while (end > cases[i].name && (end[-1] == ' ' || end[-1] == '\n'))
            end--;
        if (*p)
            p++;
        *end = 0;
    }
}

/* setjmp lives in its own frame so that no local of the runner loop can be clobbered. */
static void run_one(void (*fn)(void))
{
    if (setjmp(rf__test_jmp) == 0)
        fn();
}

int rf__test_run(int argc, char **argv, const rf_test_case_t *cases, size_t n)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)
            continue;
        int before = rf__test_failures;
        run_one(cases[i].fn);
        if (rf__test_failures == before) {
            passed++;
            fprintf(stderr, "ok   %s\n", cases[i].name);
        } else {
            failed++;
            fprintf(stderr, "FAIL %s\n", cases[i].name);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    if (passed + failed == 0) {
        fprintf(stderr, "no test matched\n");
        return 1;
    }
    return failed ? 1 : 0;
}

char *rf_test_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof(tmpl), "%s/rf-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        abort();
    }
    return strdup(tmpl);
}

void rf_test_rmtree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char p[4096];
            snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                rf_test_rmtree(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(path);
}

static char *join_env(const char *var, const char *fallback, const char *rel)
{
    const char *base = getenv(var);
    if (!base || !*base)
        base = fallback;
    size_t n = strlen(base) + strlen(rel) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", base, rel);
    return p;
}

char *rf_test_src_path(const char *rel)
{
    return join_env("RF_SOURCE_DIR", ".", rel);
}

char *rf_test_shared_path(const char *rel)
{
    return join_env("RF_SHARED_DIR", "../shared", rel);
}

char *rf_test_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, fp);
    fclose(fp);
    buf[got] = 0;
    if (len)
        *len = got;
    return buf;
}
