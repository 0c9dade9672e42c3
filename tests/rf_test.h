/* rf_test.h - the tiny unit-test harness every C test links.
 *
 * A test file defines `static void test_x(void)` functions and lists them in
 * RF_TEST_MAIN(test_x, test_y).  `prog NAME` runs one test.  Checks record a
 * failure and continue; RF_REQUIRE stops the current test.
 */
#ifndef RF_TEST_H
#define RF_TEST_H

#include <setjmp.h>
#include <stdint.h>
#include <string.h>

extern int rf__test_failures;
extern jmp_buf rf__test_jmp;
void rf__test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define RF_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            rf__test_fail(__FILE__, __LINE__, "check failed: %s", #cond);                          \
    } while (0)
#define RF_REQUIRE(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            rf__test_fail(__FILE__, __LINE__, "requirement failed: %s", #cond);                    \
            longjmp(rf__test_jmp, 1);                                                              \
        }                                                                                          \
    } while (0)
#define RF_CHECK_INT(a, b)                                                                         \
    do {                                                                                           \
        long long rf__a = (long long)(a), rf__b = (long long)(b);                                  \
        if (rf__a != rf__b)                                                                        \
            rf__test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, rf__a, rf__b);     \
    } while (0)
#define RF_CHECK_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *rf__a = (a), *rf__b = (b);                                                     \
        if (!rf__a || !rf__b || strcmp(rf__a, rf__b) != 0)                                         \
            rf__test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b,                \
                          rf__a ? rf__a : "(null)", rf__b ? rf__b : "(null)");                     \
    } while (0)

typedef struct rf_test_case {
    const char *name;
    void (*fn)(void);
} rf_test_case_t;

int rf__test_run(int argc, char **argv, const rf_test_case_t *cases, size_t n);

#define RF__TC(fn)      {#fn, fn},
#define RF__TC_LIST1(a) RF__TC(a)
#define RF_TEST_MAIN(...)                                                                          \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        static void (*const fns[])(void) = {__VA_ARGS__};                                          \
        static const char names[] = #__VA_ARGS__;                                                  \
        rf_test_case_t cases[sizeof(fns) / sizeof(fns[0])];                                        \
        rf__test_split_names(names, cases, sizeof(fns) / sizeof(fns[0]));                          \
        for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)                                  \
            cases[i].fn = fns[i];                                                                  \
        return rf__test_run(argc, argv, cases, sizeof(fns) / sizeof(fns[0]));                      \
    }
void rf__test_split_names(const char *names, rf_test_case_t *cases, size_t n);

/* Helpers for tests. */
/* A fresh empty directory under $TMPDIR; caller frees the string. Removed by
 * rf_test_rmtree(). */
char *rf_test_tmpdir(const char *tag);
void rf_test_rmtree(const char *path);
/* $RF_SOURCE_DIR/<rel> or $RF_SHARED_DIR/<rel>; caller frees. */
char *rf_test_src_path(const char *rel);
char *rf_test_shared_path(const char *rel);
/* Reads a whole file (NUL-terminated); NULL if missing; caller frees. */
char *rf_test_read_file(const char *path, size_t *len);

#endif
