/* Shared by the fuzz targets and replay.c. */
#ifndef MISCACHE_FUZZ_H
#define MISCACHE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A broken property: say which, then abort so libFuzzer saves the input. */
#define FAIL(...)                                                              \
  do {                                                                         \
    fprintf(stderr, "property failed: " __VA_ARGS__);                          \
    fputc('\n', stderr);                                                       \
    abort();                                                                   \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
