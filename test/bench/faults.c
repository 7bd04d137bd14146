/*
 * The real kernel's anonymous page fault rate on this machine, to hold the simulator against:
 * map GIB GiB of fresh anonymous memory, write one byte per page (one fault per page), unmap;
 * a warm-up repetition first, then REPS measured ones, one line each: "pages seconds".
 * MADV_NOHUGEPAGE keeps transparent huge pages out of it, so every page is a 4 KiB fault,
 * as in Lameter's pft (which this mirrors: its -g 1 -r 1 -t 1 -c 1, timing only the writes).
 *
 *   faults GIB REPS
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: faults GIB REPS\n");
    return 2;
  }
  size_t bytes = (size_t)(atof(argv[1]) * (1ul << 30));
  int reps = atoi(argv[2]);
  long page = sysconf(_SC_PAGESIZE);
  for (int r = -1; r < reps; r++) {
    volatile char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      perror("faults: mmap");
      return 1;
    }
    if (madvise((void *)p, bytes, MADV_NOHUGEPAGE) != 0) perror("faults: madvise(MADV_NOHUGEPAGE)");
    double t0 = now();
    for (size_t off = 0; off < bytes; off += page) p[off] = 1;
    double dt = now() - t0;
    munmap((void *)p, bytes);
    if (r >= 0) printf("%zu %.6f\n", bytes / page, dt);
  }
  return 0;
}
