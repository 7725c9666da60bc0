/* The README's API tour compiles (examples/tour.c is built), is the text
 * the README shows, and runs against a private server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
    free(s);
    s = NULL;
  }
  if (s) s[n] = 0;
  fclose(f);
  return s;
}

/* The text between two markers (exclusive), as a new string. */
static char *between(const char *s, const char *from, const char *to) {
  const char *a = strstr(s, from);
  if (!a) return NULL;
  a += strlen(from);
  const char *b = strstr(a, to);
  return b ? strndup(a, (size_t)(b - a)) : NULL;
}

static void test_readme_shows_tour(void **state) {
  (void)state;
  char *readme = slurp(MT_SOURCE_DIR "/README.md");
  char *tour = slurp(MT_SOURCE_DIR "/examples/tour.c");
  assert_non_null(readme);
  assert_non_null(tour);
  char *api = between(readme, "## API tour", "\n## ");
  assert_non_null(api);
  char *shown = between(api, "```c\n", "```");
  char *code = between(tour, "/* tour: begin */\n", "/* tour: end */");
  assert_non_null(shown);
  assert_non_null(code);
  assert_string_equal(shown, code);
  free(shown);
  free(code);
  free(api);
  free(readme);
  free(tour);
}

static void test_tour_runs(void **state) {
  (void)state;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "MISCACHE_URL=%s %s", mt_srv.url, MT_TOUR);
  int rc = system(cmd);
  assert_int_equal(rc, 0);
  /* and it did what it says: the session is in db 0 under its namespace */
  assert_int_equal(mt_raw_int(mt_rc, 0, "EXISTS tour:session:user:123"), 1);
  assert_int_equal(mt_raw_int(mt_rc, 4, "EXISTS tour:batch:lock:1"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_readme_shows_tour),
      cmocka_unit_test(test_tour_runs),
  };
  return cmocka_run_group_tests(tests, mt_group_setup, mt_group_teardown);
}
