/*
 * mkman.c - print dqemu(1) from the option table --help prints.
 *
 * The OPTIONS and ENVIRONMENT sections are rendered from
 * dq_options_describe(), the rows dq_options_usage() prints for --help, so
 * the man page and --help cannot disagree (tests/install checks both).
 * Host program, built by dqemu/tools/install.mk; no QEMU involved.
 *
 *   mkman              the man page (roff) on stdout
 *   mkman --usage      dq_options_usage()'s lines, exactly as --help has them
 *   mkman --examples   the EXAMPLES section as plain shell text
 *   mkman --escape S   S as the page would have it (tests the escaping)
 *
 * The page's date is SOURCE_DATE_EPOCH's (reproducible builds) or today's.
 */
#include "dqemu.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One example: what it does, then the command. */
typedef struct Example {
    const char *what;
    const char *cmd;
} Example;

static const Example examples[] = {
    { "Run a program on 4 nodes of this machine (the master and 3 local "
      "workers):",
      "dqemu-arm --nodes 4 ./prog" },
    { "Make a cluster key once; every host of the cluster reads the same "
      "file:",
      "dqemu-arm --gen-cluster-key ~/.dqemu/key" },
    { "Run one node per slot of an Open MPI hostfile, starting workers "
      "over ssh:",
      "dqemu-arm --hostfile hosts ./prog" },
    { "Run as the 4 tasks of a Slurm job:",
      "srun -N4 dqemu-arm --cluster-key ~/.dqemu/key ./prog" },
    { "Run as the 4 ranks of an mpirun job; rank 0 is the master:",
      "mpirun -np 4 --hostfile hosts dqemu-arm \\\n"
      "    --master tcp://head:7000 --cluster-key ~/.dqemu/key ./prog" },
    { "Run a dynamically linked program, as with qemu-arm:",
      "dqemu-arm -L /usr/arm-linux-gnueabihf ./dynamic-prog" },
};

#define N_EXAMPLES (sizeof(examples) / sizeof(examples[0]))

/*
 * Write @s as roff text.  Backslashes become \e; a line starting with '.'
 * or '\'' gets \& so it is not a request; a hyphen that starts a word
 * (an option: "--master", "-cpu") becomes \- so it prints as a minus and
 * can be copied, while hyphens inside words ("round-robin") stay hyphens.
 * Commands (@literal) get \- for every hyphen: they are meant to be typed.
 */
static void roff_text(FILE *out, const char *s, bool literal)
{
    bool line_start = true;
    bool word_start = true;

    for (; *s; s++) {
        char c = *s;

        if (line_start && (c == '.' || c == '\'')) {
            fputs("\\&", out);
        }
        if (c == '\\') {
            fputs("\\e", out);
        } else if (c == '-' && (word_start || literal)) {
            fputs("\\-", out);
            continue;           /* "--x": the second dash starts it too */
        } else {
            fputc(c, out);
        }
        line_start = c == '\n';
        word_start = strchr(" \t\n([{,/\"=", c) != NULL;
    }
}

static void roff(FILE *out, const char *s)
{
    roff_text(out, s, false);
}

/* A font-switched roff fragment: \fB..\fR around escaped @s. */
static void roff_font(FILE *out, char font, const char *s)
{
    fprintf(out, "\\f%c", font);
    roff(out, s);
    fputs("\\fR", out);
}

static void page_date(char *buf, size_t len)
{
    const char *epoch = getenv("SOURCE_DATE_EPOCH");
    time_t t = epoch && *epoch ? (time_t)strtoll(epoch, NULL, 10) : time(NULL);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d", &tm);
}

static void print_options(FILE *out)
{
    DqOptionInfo o;
    size_t i;

    for (i = 0; dq_options_describe(i, &o); i++) {
        char name[64];

        snprintf(name, sizeof(name), "--%s", o.name);
        fputs(".TP\n", out);
        roff_font(out, 'B', name);
        if (o.metavar) {
            fputc(' ', out);
            roff_font(out, 'I', o.metavar);
        }
        fputc('\n', out);
        roff(out, o.help);
        fputc('\n', out);
        if (o.env) {
            fputs(".br\nEnvironment: ", out);
            roff_font(out, 'B', o.env);
            fputc('\n', out);
        }
    }
}

static void print_environment(FILE *out)
{
    DqOptionInfo o;
    size_t i;

    fputs(".SH ENVIRONMENT\n"
          "Each of these sets the option it names; the command line wins.\n"
          "Flags take 1/0, yes/no, on/off or true/false.\n", out);
    for (i = 0; dq_options_describe(i, &o); i++) {
        char name[64];

        if (o.env == NULL) {
            continue;
        }
        snprintf(name, sizeof(name), "--%s", o.name);
        fputs(".TP\n", out);
        roff_font(out, 'B', o.env);
        fputs("\nthe same as ", out);
        roff_font(out, 'B', name);
        fputc('\n', out);
    }
    fputs(".TP\n.B QEMU_*\n"
          "every variable of qemu\\-user works unchanged, e.g.\n"
          ".B QEMU_LD_PREFIX\nand\n.BR QEMU_STRACE .\n", out);
}

static void print_examples(FILE *out)
{
    size_t i;

    fputs(".SH EXAMPLES\n", out);
    for (i = 0; i < N_EXAMPLES; i++) {
        fputs(i ? ".PP\n" : "", out);
        roff(out, examples[i].what);
        fputs("\n.PP\n.RS\n.nf\n", out);
        roff_text(out, examples[i].cmd, true);
        fputs("\n.fi\n.RE\n", out);
    }
}

static void print_page(FILE *out)
{
    char date[32];

    page_date(date, sizeof(date));
    fprintf(out,
        ".\\\" dqemu.1 - generated by dqemu/tools/mkman from the option\n"
        ".\\\" table in dqemu/options.c (the one --help prints): do not edit.\n"
        ".TH DQEMU 1 \"%s\" \"dqemu %s\" \"User Commands\"\n", date,
        DQEMU_VERSION);
    fputs(".SH NAME\n"
          "dqemu\\-arm, dqemu\\-aarch64, dqemu\\-riscv64 \\-\n"
          "distributed QEMU user-mode emulator\n"
          ".SH SYNOPSIS\n", out);
    fputs(".B dqemu\\-arm\n"
          ".RI [ \"dqemu options\" ]\n"
          ".RI [ \"qemu\\-arm options\" ]\n"
          ".I program\n"
          ".RI [ arguments... ]\n"
          ".PP\n"
          "and the same for\n"
          ".B dqemu\\-aarch64\n"
          "and\n"
          ".BR dqemu\\-riscv64 .\n", out);
    fputs(".SH DESCRIPTION\n"
          ".B dqemu\\-arm\n"
          "runs a Linux program for another CPU the way\n"
          ".BR qemu\\-arm (1)\n"
          "does, but spreads the program's threads over several emulator\n"
          "processes (nodes), on this machine or on several hosts, while\n"
          "the program still sees one process: one address space, one pid,\n"
          "one file descriptor table.\n"
          "The master node loads the program and runs its process-wide\n"
          "system calls; workers run the threads the master places on them.\n"
          "Guest memory is kept coherent page by page.\n"
          ".PP\n"
          "How it works, what is tested and what is missing: the README,\n"
          "installed as\n"
          ".I share/doc/dqemu/README.md\n"
          "under the installation prefix.\n", out);
    fputs(".SH OPTIONS\n"
          "dqemu's own options are long options; each may also be written\n"
          ".BI \\-\\-name= value\\fR.\n"
          "Most have an environment variable; the command line wins.\n", out);
    print_options(out);
    fputs(".SH QEMU OPTIONS\n"
          "Every qemu\\-user option\n"
          "(\\fB\\-L\\fR, \\fB\\-E\\fR, \\fB\\-U\\fR, \\fB\\-cpu\\fR,\n"
          "\\fB\\-strace\\fR, \\fB\\-d\\fR, \\fB\\-R\\fR, ...)\n"
          "works unchanged; \\fBdqemu\\-arm \\-\\-help\\fR lists them after\n"
          "dqemu's own.\n"
          ".B dqemu\\-riscv64\n"
          "runs\n"
          ".B \\-cpu rv64\n"
          "unless given\n"
          ".BR \\-cpu .\n", out);
    print_environment(out);
    print_examples(out);
    fputs(".SH SECURITY\n"
          "Nodes on different hosts authenticate each other and encrypt\n"
          "their traffic with ZeroMQ's CURVE mechanism, using one secret\n"
          "per cluster: the key file made by\n"
          "\\fB\\-\\-gen\\-cluster\\-key\\fR (mode 0600) and given to every\n"
          "node with \\fB\\-\\-cluster\\-key\\fR.\n"
          "Whoever holds the key can join the cluster and read the\n"
          "program's memory, so keep it private.\n"
          "\\fB\\-\\-insecure\\fR turns authentication and encryption off:\n"
          "use it only on an isolated network where every host that can\n"
          "reach the cluster's ports is trusted.\n", out);
    fputs(".SH RUNNING PROGRAMS DIRECTLY\n"
          "After \\fBdqemu\\-binfmt install\\fR (as root) the kernel runs\n"
          "ARM, AArch64 and RISC\\-V programs under dqemu when they are\n"
          "started directly; the variables above set dqemu's options:\n"
          ".PP\n.RS\n.nf\n"
          "DQEMU_NODES=4 ./arm\\-prog\n"
          ".fi\n.RE\n", out);
    fputs(".SH SEE ALSO\n"
          ".BR qemu\\-user (1),\n"
          ".BR qemu\\-arm (1),\n"
          "\\fBdqemu\\-binfmt \\-\\-help\\fR,\n"
          "the kernel's binfmt_misc documentation\n"
          "(Documentation/admin\\-guide/binfmt\\-misc.rst).\n", out);
}

int main(int argc, char **argv)
{
    size_t i;

    if (argc == 1) {
        print_page(stdout);
    } else if (argc == 2 && strcmp(argv[1], "--usage") == 0) {
        dq_options_usage(stdout);
    } else if (argc == 2 && strcmp(argv[1], "--examples") == 0) {
        printf("# dqemu examples (the EXAMPLES section of dqemu(1))\n");
        for (i = 0; i < N_EXAMPLES; i++) {
            printf("\n# %s\n%s\n", examples[i].what, examples[i].cmd);
        }
    } else if (argc == 3 && strcmp(argv[1], "--escape") == 0) {
        roff(stdout, argv[2]);
    } else {
        fprintf(stderr, "usage: %s [--usage | --examples | --escape TEXT]\n",
                argv[0]);
        return 2;
    }
    return ferror(stdout) || fflush(stdout) != 0 ? 1 : 0;
}
