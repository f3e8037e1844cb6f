/*
 * replay.c - run a fuzz target's corpus without libFuzzer.
 *
 * usage: replay COUNTS_FILE PATH...
 *
 * Feeds every file (directories are read one level deep, in name order)
 * to LLVMFuzzerTestOneInput, each in its own child process, so that a
 * sanitizer abort or crash counts as one failed input and the rest still
 * run.  Built with the ordinary compiler plus ASan/UBSan, so the corpus is
 * a regression test even where clang's libFuzzer is missing.  Writes
 * "<passed> <failed> 0" to COUNTS_FILE and exits non-zero if any input
 * failed or there was no input at all (an empty corpus must not pass).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned passed, failed;

/* Read @path into a buffer of exactly its size, so ASan sees overreads. */
static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;

    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc(n ? (size_t)n : 1);
        if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        }
        *size = (size_t)n;
    }
    fclose(f);
    return buf;
}

static void run_one(const char *path)
{
    uint8_t *buf;
    size_t size = 0;
    pid_t pid;
    int status;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        buf = read_file(path, &size);
        if (buf == NULL) {
            fprintf(stderr, "replay: %s: cannot read\n", path);
            _exit(2);
        }
        LLVMFuzzerTestOneInput(buf, size);
        free(buf);
        _exit(0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid ||
        !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "replay: %s: FAILED\n", path);
        failed++;
        return;
    }
    passed++;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL, path[4096];
    size_t n = 0, cap = 0, i;
    struct stat st;

    if (d == NULL) {
        fprintf(stderr, "replay: %s: cannot open\n", dir);
        failed++;
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = realloc(names, cap * sizeof(*names));
            if (names == NULL) {
                abort();
            }
        }
        names[n] = strdup(e->d_name);
        if (names[n] == NULL) {
            abort();
        }
        n++;
    }
    closedir(d);
    if (n) {
        qsort(names, n, sizeof(*names), by_name);
    }
    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            run_one(path);
        }
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    struct stat st;
    FILE *counts;
    int i;

    if (argc < 3) {
        fprintf(stderr, "usage: %s COUNTS_FILE PATH...\n", argv[0]);
        return 2;
    }
    for (i = 2; i < argc; i++) {
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            run_dir(argv[i]);
        } else {
            run_one(argv[i]);
        }
    }
    if (passed + failed == 0) {
        fprintf(stderr, "replay: no input found\n");
        failed = 1;
    }
    counts = fopen(argv[1], "w");
    if (counts == NULL || fprintf(counts, "%u %u 0\n", passed, failed) < 0 ||
        fclose(counts) != 0) {
        fprintf(stderr, "replay: %s: cannot write counts\n", argv[1]);
        return 1;
    }
    printf("fuzz-corpus: %u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}
