/* A minimal test harness: each test file is one program of TEST()s run in
 * order; it prints one line per failed check and ends with
 * "N passed, N failed" (which ctest shows with --output-on-failure). */
#ifndef ES_TEST_H
#define ES_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shared by every file of a test program (helpers check too). */
__attribute__((weak)) int test__failed_checks;
__attribute__((weak)) int test__passed, test__failed;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      test__failed_checks++;                                                   \
    }                                                                          \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                     \
  do {                                                                         \
    long long test__a = (long long)(a), test__b = (long long)(b);              \
    if (test__a != test__b) {                                                  \
      fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,      \
              __LINE__, #a, #b, test__a, test__b);                             \
      test__failed_checks++;                                                   \
    }                                                                          \
  } while (0)

#define CHECK_EQ_STR(a, b)                                                     \
  do {                                                                         \
    const char *test__a = (a), *test__b = (b);                                 \
    if (test__a == NULL || test__b == NULL || strcmp(test__a, test__b) != 0) { \
      fprintf(stderr, "%s:%d: %s == %s failed:\n  got:  %s\n  want: %s\n",     \
              __FILE__, __LINE__, #a, #b, test__a ? test__a : "(null)",        \
              test__b ? test__b : "(null)");                                   \
      test__failed_checks++;                                                   \
    }                                                                          \
  } while (0)

/* Fatal: stop the current test (it cannot go on meaningfully). */
#define ASSERT(cond)                                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: ASSERT(%s) failed\n", __FILE__, __LINE__,        \
              #cond);                                                          \
      test__failed_checks++;                                                   \
      return;                                                                  \
    }                                                                          \
  } while (0)

#define RUN(fn)                                                                \
  do {                                                                         \
    int test__before = test__failed_checks;                                    \
    fprintf(stderr, "-- %s\n", #fn);                                           \
    fn();                                                                      \
    if (test__failed_checks == test__before)                                   \
      test__passed++;                                                          \
    else {                                                                     \
      test__failed++;                                                          \
      fprintf(stderr, "FAILED: %s\n", #fn);                                    \
    }                                                                          \
  } while (0)

#define TEST_DONE()                                                            \
  (printf("%d passed, %d failed\n", test__passed, test__failed),               \
   test__failed == 0 && test__passed > 0 ? 0 : 1)

#endif
