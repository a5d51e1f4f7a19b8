/* The machine's process-launch ceiling: S threads, each running a program
 * N/S times with posix_spawn + waitpid, as fast as they can.  No Python, no
 * GIL: this is what the kernel and the CPUs allow, and what troy is measured
 * against (bench/throughput.py compiles it with `cc` into a temporary
 * directory and runs it with the same N and S as W1).
 *
 *     cc -O2 -pthread -o spawn_ceiling bench/spawn_ceiling.c
 *     ./spawn_ceiling N S /bin/true        # prints the seconds taken
 *
 * Each child inherits the parent's environment and descriptors, as troy's
 * units inherit the agent's; a child that fails or exits non-zero fails the
 * whole run (exit 1), so a broken ceiling is never reported as a fast one.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static char *program;
static volatile int failed;

/* One thread: spawn the program `count` times, waiting for each. */
static void *launch(void *arg) {
    long count = (long)arg;
    char *argv[] = {program, NULL};
    for (long i = 0; i < count && !failed; i++) {
        pid_t pid;
        int status;
        if (posix_spawn(&pid, program, NULL, NULL, argv, environ) != 0 ||
            waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            failed = 1;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s N THREADS PROGRAM\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]), threads = atol(argv[2]);
    program = argv[3];
    if (n < 1 || threads < 1 || threads > 1024) {
        fprintf(stderr, "N and THREADS must be positive (THREADS <= 1024)\n");
        return 2;
    }
    pthread_t ids[1024];
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long t = 0; t < threads; t++) {
        /* spread the remainder so that the counts add up to exactly n */
        long count = n / threads + (t < n % threads ? 1 : 0);
        if (pthread_create(&ids[t], NULL, launch, (void *)count) != 0) {
            perror("pthread_create");
            return 1;
        }
    }
    for (long t = 0; t < threads; t++)
        pthread_join(ids[t], NULL);
    clock_gettime(CLOCK_MONOTONIC, &end);
    if (failed) {
        fprintf(stderr, "a launch of %s failed\n", program);
        return 1;
    }
    printf("%.6f\n", (double)(end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9);
    return 0;
}
