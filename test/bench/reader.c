/*
 * The read benchmark's client: open + read to EOF + close, in a loop, on each file given,
 * interleaved. Compiled with cc at bench time (test/bench/reads.ts); no libc buffering, one
 * read(2) of a 64 KiB buffer at a time, as `cat` would with a bigger buffer.
 *
 *   reader -t SECONDS [-r ROUNDS] [-w WARM] FILE...
 *       visit every file in the order given (ROUNDS times), looping for SECONDS on each after
 *       WARM untimed loops (so a daemon idle since its last visit is awake before the clock
 *       starts); one line per visit: "round file loops seconds reads bytes"
 *   reader -n LOOPS [-w WARM] FILE...
 *       exactly LOOPS timed loops on each file, one line each
 *
 * Exit status 1 (and a message on stderr) if any open or read fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char buf[64 * 1024];

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

/* One open + read-to-EOF + close; adds to *reads and *bytes. */
static void once(const char *path, long *reads, long *bytes) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    fprintf(stderr, "reader: open %s: %s\n", path, strerror(errno));
    exit(1);
  }
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      fprintf(stderr, "reader: read %s: %s\n", path, strerror(errno));
      exit(1);
    }
    (*reads)++;
    if (n == 0) break;
    *bytes += n;
  }
  close(fd);
}

/* Loop on `path` for `seconds` (checking the clock every few loops) or exactly `loops` times. */
static void visit(int round, int file, const char *path, double seconds, long loops, long warm) {
  long done = 0, reads = 0, bytes = 0;
  for (long i = 0; i < warm; i++) once(path, &reads, &bytes);
  reads = bytes = 0;
  double start = now(), elapsed = 0;
  for (;;) {
    once(path, &reads, &bytes);
    done++;
    if (loops > 0) {
      if (done == loops) break;
    } else if ((done & 7) == 0 && (elapsed = now() - start) >= seconds) {
      break;
    }
  }
  elapsed = now() - start;
  printf("%d %d %ld %.6f %ld %ld\n", round, file, done, elapsed, reads, bytes);
  fflush(stdout);
}

int main(int argc, char **argv) {
  double seconds = 0.25;
  long loops = 0, warm = 0;
  int rounds = 1, opt;
  const char *usage = "usage: reader [-t SECONDS [-r ROUNDS] | -n LOOPS] [-w WARM] FILE...\n";
  while ((opt = getopt(argc, argv, "t:r:n:w:")) != -1) {
    switch (opt) {
      case 't': seconds = atof(optarg); break;
      case 'r': rounds = atoi(optarg); break;
      case 'n': loops = atol(optarg); break;
      case 'w': warm = atol(optarg); break;
      default: fputs(usage, stderr); return 2;
    }
  }
  int files = argc - optind;
  if (files < 1 || rounds < 1 || warm < 0 || (loops == 0 && seconds <= 0)) {
    fputs(usage, stderr);
    return 2;
  }
  for (int round = 0; round < rounds; round++) {
    for (int file = 0; file < files; file++) visit(round, file, argv[optind + file], seconds, loops, warm);
  }
  return 0;
}
