/* The glob matcher of pending invalidations (Redis's
 * stringmatch semantics) is linear in practice: patterns that took the old
 * recursive matcher seconds to hours finish at once, and random patterns
 * match exactly as the old one did. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"

/* The recursive matcher as it was (a star tries every suffix): the
 * reference for small inputs. */
static bool ref_match(const char *pat, const char *s) {
  while (*pat) {
    switch (*pat) {
    case '*':
      while (pat[1] == '*') pat++;
      if (!pat[1]) return true;
      for (; *s; s++)
        if (ref_match(pat + 1, s)) return true;
      return ref_match(pat + 1, s);
    case '?':
      if (!*s) return false;
      s++;
      pat++;
      break;
    case '[': {
      if (!*s) return false;
      pat++;
      bool neg = *pat == '^';
      if (neg) pat++;
      bool match = false;
      while (*pat && *pat != ']') {
        if (*pat == '\\' && pat[1]) {
          pat++;
          if (*pat == *s) match = true;
        } else if (pat[1] == '-' && pat[2] && pat[2] != ']') {
          unsigned char lo = (unsigned char)pat[0], hi = (unsigned char)pat[2];
          if (lo > hi) {
            unsigned char t = lo;
            lo = hi;
            hi = t;
          }
          if ((unsigned char)*s >= lo && (unsigned char)*s <= hi) match = true;
          pat += 2;
        } else if (*pat == *s) {
          match = true;
        }
        pat++;
      }
      if (*pat == ']') pat++;
      if (match == neg) return false;
      s++;
      break;
    }
    case '\\':
      if (pat[1]) pat++;
      /* fall through */
    default:
      if (*pat != *s) return false;
      pat++;
      s++;
    }
  }
  return !*s;
}

static void test_same_answers_as_before(void **state) {
  (void)state;
  static const char palpha[] = "ab*?[]^-\\c";
  static const char salpha[] = "abc-]\\^*";
  unsigned seed = 17;
  long checked = 0, matched = 0;
  for (int i = 0; i < 200000; i++) {
    char pat[12], s[12];
    int pl = rand_r(&seed) % 10, sl = rand_r(&seed) % 10;
    for (int j = 0; j < pl; j++)
      pat[j] = palpha[rand_r(&seed) % (sizeof palpha - 1)];
    for (int j = 0; j < sl; j++)
      s[j] = salpha[rand_r(&seed) % (sizeof salpha - 1)];
    pat[pl] = s[sl] = 0;
    bool want = ref_match(pat, s), got = miscache__glob_match(pat, s);
    if (want != got)
      fail_msg("\"%s\" against \"%s\": %d, the reference says %d", pat, s, got,
               want);
    checked++;
    matched += want;
  }
  print_message("glob: %ld random pattern/key pairs (%ld matches) as the "
                "reference\n",
                checked, matched);
  /* the key shapes the library uses */
  assert_true(miscache__glob_match("gift:classification:*:1",
                                   "gift:classification:P%2A:1"));
  assert_false(miscache__glob_match("gift:classification:*:1",
                                    "gift:classification:P1:10"));
  assert_true(miscache__glob_match("stats:*\\*", "stats:a*"));
  assert_false(miscache__glob_match("stats:*\\*", "stats:ab"));
}

static void test_adversarial_patterns_finish(void **state) {
  (void)state;
  char pat[512], s[4096];
  /* n x "*a" then "*b" against a run of 'a': exponential before */
  for (int n = 8; n <= 60; n += 13) {
    pat[0] = 0;
    for (int i = 0; i < n; i++) strcat(pat, "*a");
    strcat(pat, "*b");
    memset(s, 'a', 4000);
    s[4000] = 0;
    assert_false(miscache__glob_match(pat, s));
    s[3999] = 'b';
    assert_true(miscache__glob_match(pat, s));
  }
  /* classes and ? between stars */
  strcpy(pat, "*[a]*?*[^b]*[a-z]*?*?*?*?*?*?*?*?*x");
  memset(s, 'a', 3000);
  s[3000] = 0;
  assert_false(miscache__glob_match(pat, s));
  s[2999] = 'x';
  assert_true(miscache__glob_match(pat, s));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_answers_as_before),
      cmocka_unit_test(test_adversarial_patterns_finish),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
