/*
 * Test that /proc/cpuinfo and the CPU count are readable by the guest, and
 * print the lines that name the emulated CPU's features (riscv64's "isa",
 * arm's "Features"), so the harness can tell which -cpu model ran.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "guest-check.h"

/* Only feature lines: others (MHz, bogomips) vary from run to run. */
static int is_feature_line(const char *line)
{
    static const char *const keys[] = { "isa", "Features", "features",
                                        "CPU architecture" };
    size_t i;

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        size_t n = strlen(keys[i]);

        if (strncmp(line, keys[i], n) == 0 &&
            (line[n] == '\t' || line[n] == ' ' || line[n] == ':')) {
            return 1;
        }
    }
    return 0;
}

int main(void)
{
    /* Every CPU repeats the same lines: print each distinct one once. */
    static char seen[8][1024];
    char line[1024];
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int nseen = 0, features = 0, i;
    FILE *f;

    CHECK(cpus >= 1, "sysconf(_SC_NPROCESSORS_ONLN) = %ld", cpus);
    f = fopen("/proc/cpuinfo", "r");
    CHECK(f != NULL, "fopen(/proc/cpuinfo): %s", strerror(errno));
    while (fgets(line, sizeof(line), f)) {
        if (!is_feature_line(line)) {
            continue;
        }
        features++;
        for (i = 0; i < nseen && strcmp(seen[i], line) != 0; i++) {
            continue;
        }
        if (i == nseen) {
            CHECK(nseen < 8, "more than 8 distinct feature lines");
            snprintf(seen[nseen++], sizeof(seen[0]), "%s", line);
            printf("cpuinfo: %s", line);
        }
    }
    CHECK(!ferror(f), "reading /proc/cpuinfo failed");
    fclose(f);
    CHECK(features > 0, "no feature line in /proc/cpuinfo");
    guest_pass("cpuinfo");
    return 0;
}
