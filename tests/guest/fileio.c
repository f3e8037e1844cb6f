/* Test that file and directory syscalls behave: open/read/write/lseek/stat/getdents64/rename/unlink/rmdir. */
#define _GNU_SOURCE
/*
 * 32-bit arm: without LFS, glibc's readdir fails with EOVERFLOW as soon as
 * the host filesystem (ext4 uses 64-bit hash cookies) returns a d_off that
 * does not fit in 32 bits.  Every real 32-bit program built today uses
 * 64-bit offsets, so test that configuration.
 */
#define _FILE_OFFSET_BITS 64
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "guest-check.h"

#define DATA_SIZE   200000
#define SPARSE_OFF  300000
#define TRUNC_SIZE  150000
#define MANY_FILES  600

static char tmpdir[PATH_MAX];

/* Mirror of what the file should contain, updated alongside every write. */
static unsigned char model[SPARSE_OFF + 1];

static const char *path_in(const char *name)
{
    static char buf[4][PATH_MAX];
    static int next;
    char *p = buf[next++ % 4];
    int n = snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);

    CHECK(n > 0 && n < PATH_MAX, "path too long");
    return p;
}

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 + (i >> 8) + 3);
}

static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        CHECK(n > 0, "write returned %zd: %s", n, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

static void read_exact(int fd, void *buf, size_t len)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = read(fd, p, len);
        CHECK(n > 0, "read returned %zd (wanted %zu more): %s", n, len,
              n < 0 ? strerror(errno) : "EOF");
        p += n;
        len -= (size_t)n;
    }
}

static uint32_t checksum(const unsigned char *p, size_t len)
{
    uint32_t a = 1, b = 0;

    for (size_t i = 0; i < len; i++) {
        a = (a + p[i]) % 65521;
        b = (b + a) % 65521;
    }
    return (b << 16) | a;
}

static void test_read_write_seek(void)
{
    static unsigned char buf[DATA_SIZE];
    const char *path = path_in("data.bin");
    struct stat st;
    int fd;

    for (size_t i = 0; i < DATA_SIZE; i++) {
        model[i] = pattern(i);
    }

    fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0644);
    CHECK_SYS(fd);
    CHECK_ERRNO(open(path, O_CREAT | O_EXCL | O_RDWR, 0644), EEXIST);

    /* Uneven chunk sizes so nothing lines up with pages by accident. */
    write_all(fd, model, 1);
    write_all(fd, model + 1, 4097);
    write_all(fd, model + 4098, DATA_SIZE - 4098);

    CHECK_SYS(fstat(fd, &st));
    CHECK(S_ISREG(st.st_mode), "not a regular file");
    CHECK((st.st_mode & 0777) == 0644, "mode %o", (unsigned)(st.st_mode & 0777));
    CHECK(st.st_size == DATA_SIZE, "size %lld", (long long)st.st_size);
    CHECK(st.st_nlink == 1, "nlink %lu", (unsigned long)st.st_nlink);
    printf("wrote %d bytes, fstat ok\n", DATA_SIZE);

    /* lseek in every mode, reads land where the offset says. */
    CHECK(lseek(fd, 0, SEEK_CUR) == DATA_SIZE, "offset after writes");
    CHECK(lseek(fd, 0, SEEK_END) == DATA_SIZE, "SEEK_END");
    CHECK(lseek(fd, 1000, SEEK_SET) == 1000, "SEEK_SET");
    read_exact(fd, buf, 100);
    CHECK(memcmp(buf, model + 1000, 100) == 0, "data at 1000");
    CHECK(lseek(fd, -50, SEEK_CUR) == 1050, "SEEK_CUR");
    read_exact(fd, buf, 10);
    CHECK(memcmp(buf, model + 1050, 10) == 0, "data at 1050");
    CHECK(lseek(fd, -10, SEEK_END) == DATA_SIZE - 10, "SEEK_END -10");
    CHECK(read(fd, buf, 100) == 10, "short read at end");
    CHECK(read(fd, buf, 100) == 0, "read at EOF not 0");
    CHECK_ERRNO(lseek(fd, -1, SEEK_SET), EINVAL);
    printf("lseek ok\n");

    /* pread/pwrite must not move the file offset. */
    CHECK(lseek(fd, 777, SEEK_SET) == 777, "seek 777");
    CHECK(pwrite(fd, "HELLO", 5, 5000) == 5, "pwrite");
    memcpy(model + 5000, "HELLO", 5);
    CHECK(pread(fd, buf, 9, 4998) == 9, "pread");
    CHECK(memcmp(buf, model + 4998, 9) == 0, "pread data");
    CHECK(lseek(fd, 0, SEEK_CUR) == 777, "pread/pwrite moved the offset");
    printf("pread/pwrite ok\n");

    /* Writing past EOF leaves a hole that reads back as zeros. */
    CHECK(lseek(fd, SPARSE_OFF, SEEK_SET) == SPARSE_OFF, "seek past end");
    write_all(fd, "Z", 1);
    memset(model + DATA_SIZE, 0, SPARSE_OFF - DATA_SIZE);
    model[SPARSE_OFF] = 'Z';
    CHECK_SYS(fstat(fd, &st));
    CHECK(st.st_size == SPARSE_OFF + 1, "sparse size %lld", (long long)st.st_size);
    CHECK(pread(fd, buf, 4096, DATA_SIZE + 100) == 4096, "pread hole");
    for (int i = 0; i < 4096; i++) {
        CHECK(buf[i] == 0, "hole byte %d is %u", i, buf[i]);
    }
    printf("sparse write ok\n");

    CHECK_SYS(ftruncate(fd, TRUNC_SIZE));
    CHECK_SYS(fsync(fd));
    CHECK_SYS(fdatasync(fd));
    CHECK_SYS(close(fd));
    CHECK_ERRNO(close(fd), EBADF);

    CHECK_SYS(stat(path, &st));
    CHECK(st.st_size == TRUNC_SIZE, "size after truncate %lld", (long long)st.st_size);

    /* Re-read everything through a fresh descriptor and compare. */
    fd = open(path, O_RDONLY);
    CHECK_SYS(fd);
    read_exact(fd, buf, TRUNC_SIZE);
    CHECK(read(fd, buf, 1) == 0, "data past truncation");
    CHECK(checksum(buf, TRUNC_SIZE) == checksum(model, TRUNC_SIZE),
          "file checksum mismatch");
    CHECK_ERRNO(write(fd, "x", 1), EBADF);
    CHECK_SYS(close(fd));
    printf("truncate + reread ok, adler32=%08x\n", checksum(model, TRUNC_SIZE));
}

static void test_append_dup_vectors(void)
{
    const char *path = path_in("log.txt");
    char buf[256];
    int fd, fd2;

    fd = open(path, O_CREAT | O_WRONLY | O_APPEND, 0600);
    CHECK_SYS(fd);
    write_all(fd, "first\n", 6);
    /* O_APPEND ignores the offset for writes. */
    CHECK(lseek(fd, 0, SEEK_SET) == 0, "seek to 0");
    write_all(fd, "second\n", 7);

    /* A dup shares the offset and the O_APPEND flag. */
    fd2 = dup(fd);
    CHECK_SYS(fd2);
    CHECK(fcntl(fd2, F_GETFL) & O_APPEND, "dup lost O_APPEND");
    write_all(fd2, "third\n", 6);
    CHECK(lseek(fd, 0, SEEK_CUR) == 19, "shared offset");
    CHECK_SYS(close(fd2));

    /* dup2 onto a chosen number, and F_DUPFD_CLOEXEC. */
    CHECK(dup2(fd, 100) == 100, "dup2");
    CHECK(fcntl(100, F_GETFD) == 0, "dup2 should clear FD_CLOEXEC");
    fd2 = fcntl(fd, F_DUPFD_CLOEXEC, 200);
    CHECK(fd2 >= 200, "F_DUPFD_CLOEXEC returned %d", fd2);
    CHECK(fcntl(fd2, F_GETFD) == FD_CLOEXEC, "FD_CLOEXEC missing");
    CHECK_SYS(close(fd2));
    CHECK_SYS(close(100));

    struct iovec wv[3] = {
        { .iov_base = "vec", .iov_len = 3 },
        { .iov_base = "tor", .iov_len = 3 },
        { .iov_base = "ed\n", .iov_len = 3 },
    };
    CHECK(writev(fd, wv, 3) == 9, "writev");
    CHECK_SYS(close(fd));

    fd = open(path, O_RDONLY);
    CHECK_SYS(fd);
    char a[7], b[100];
    struct iovec rv[2] = {
        { .iov_base = a, .iov_len = sizeof(a) },
        { .iov_base = b, .iov_len = sizeof(b) },
    };
    ssize_t n = readv(fd, rv, 2);
    CHECK(n == 28, "readv returned %zd", n);
    memcpy(buf, a, 7);
    memcpy(buf + 7, b, (size_t)n - 7);
    buf[n] = '\0';
    CHECK(strcmp(buf, "first\nsecond\nthird\nvectored\n") == 0, "log is '%s'", buf);
    CHECK_SYS(close(fd));
    printf("append/dup/readv/writev ok\n");

    /* Buffered stdio on top of the same syscalls. */
    FILE *f = fopen(path_in("stdio.txt"), "w+");
    CHECK(f != NULL, "fopen: %s", strerror(errno));
    for (int i = 0; i < 1000; i++) {
        fprintf(f, "line %d %d\n", i, i * i);
    }
    CHECK(fflush(f) == 0, "fflush");
    rewind(f);
    int lines = 0;
    long sum = 0;
    while (fgets(buf, sizeof(buf), f)) {
        int x, y;
        CHECK(sscanf(buf, "line %d %d", &x, &y) == 2, "bad line '%s'", buf);
        CHECK(x == lines && y == x * x, "line %d reads %d %d", lines, x, y);
        sum += y;
        lines++;
    }
    CHECK(lines == 1000, "read %d lines", lines);
    CHECK(fclose(f) == 0, "fclose");
    printf("stdio ok, %d lines, sum of squares %ld\n", lines, sum);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Names in a directory via readdir (getdents64 underneath), sorted. */
static int list_dir(const char *path, char names[][64], int max)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int n = 0;

    CHECK(d != NULL, "opendir %s: %s", path, strerror(errno));
    /* readdir returns NULL both at the end and on error; errno tells. */
    while ((errno = 0, de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        CHECK(n < max, "too many entries in %s", path);
        CHECK(len < 64, "name too long: %s", de->d_name);
        memcpy(names[n], de->d_name, len + 1);
        n++;
    }
    CHECK(errno == 0, "readdir %s: %s", path, strerror(errno));
    closedir(d);
    /* readdir order depends on the filesystem; sort for stable output. */
    qsort(names, (size_t)n, 64, cmp_name);
    return n;
}

static void print_dir(const char *label, const char *path)
{
    char names[64][64];
    int n = list_dir(path, names, 64);

    printf("%s:", label);
    for (int i = 0; i < n; i++) {
        printf(" %s", names[i]);
    }
    printf("\n");
}

static void test_directories(void)
{
    char sub[PATH_MAX];
    char buf[PATH_MAX];
    struct stat st;
    int dfd, fd;

    /* path_in() recycles its buffers, so keep our own copy. */
    strcpy(sub, path_in("sub"));
    CHECK_SYS(mkdir(sub, 0755));
    CHECK_ERRNO(mkdir(sub, 0755), EEXIST);
    CHECK_SYS(stat(sub, &st));
    CHECK(S_ISDIR(st.st_mode), "sub is not a directory");

    /* *at() calls relative to a directory descriptor. */
    dfd = open(sub, O_RDONLY | O_DIRECTORY);
    CHECK_SYS(dfd);
    for (const char *n = "cab"; *n; n++) {
        char name[2] = { *n, '\0' };
        fd = openat(dfd, name, O_CREAT | O_WRONLY, 0644);
        CHECK_SYS(fd);
        write_all(fd, name, 1);
        CHECK_SYS(close(fd));
    }
    CHECK_SYS(mkdirat(dfd, "deeper", 0700));
    CHECK_SYS(fstatat(dfd, "a", &st, 0));
    CHECK(st.st_size == 1, "sub/a size %lld", (long long)st.st_size);
    print_dir("sub after create", sub);

    /* rename across directories, and rename replacing an existing file. */
    CHECK_SYS(rename(path_in("data.bin"), path_in("sub/moved.bin")));
    CHECK_ERRNO(stat(path_in("data.bin"), &st), ENOENT);
    CHECK_SYS(stat(path_in("sub/moved.bin"), &st));
    CHECK(st.st_size == TRUNC_SIZE, "moved file size %lld", (long long)st.st_size);
    CHECK_SYS(renameat(dfd, "c", dfd, "b"));
    fd = openat(dfd, "b", O_RDONLY);
    CHECK_SYS(fd);
    CHECK(read(fd, buf, sizeof(buf)) == 1 && buf[0] == 'c', "rename did not replace b");
    CHECK_SYS(close(fd));

    /* Hard link and symlink. */
    CHECK_SYS(link(path_in("sub/a"), path_in("sub/a-link")));
    CHECK_SYS(stat(path_in("sub/a"), &st));
    CHECK(st.st_nlink == 2, "nlink after link %lu", (unsigned long)st.st_nlink);
    CHECK_SYS(symlink("moved.bin", path_in("sub/sym")));
    ssize_t n = readlink(path_in("sub/sym"), buf, sizeof(buf) - 1);
    CHECK(n == 9, "readlink returned %zd", n);
    buf[n] = '\0';
    CHECK(strcmp(buf, "moved.bin") == 0, "readlink '%s'", buf);
    CHECK_SYS(lstat(path_in("sub/sym"), &st));
    CHECK(S_ISLNK(st.st_mode), "lstat of symlink is not a link");
    CHECK_SYS(stat(path_in("sub/sym"), &st));
    CHECK(S_ISREG(st.st_mode) && st.st_size == TRUNC_SIZE, "stat through symlink");
    CHECK_SYS(access(path_in("sub/a"), R_OK | W_OK));
    CHECK_ERRNO(access(path_in("sub/nope"), F_OK), ENOENT);
    print_dir("sub after rename/link", sub);

    /* chdir/getcwd/fchdir round trip. */
    int cwd = open(".", O_RDONLY | O_DIRECTORY);
    CHECK_SYS(cwd);
    CHECK_SYS(chdir(sub));
    CHECK(getcwd(buf, sizeof(buf)) != NULL, "getcwd: %s", strerror(errno));
    char real[PATH_MAX];
    CHECK(realpath(sub, real) != NULL, "realpath: %s", strerror(errno));
    CHECK(strcmp(buf, real) == 0, "getcwd '%s' != '%s'", buf, real);
    CHECK_SYS(stat("moved.bin", &st));
    CHECK_SYS(fchdir(cwd));
    CHECK_SYS(close(cwd));
    printf("chdir/getcwd ok\n");

    /* Removing things: a non-empty directory refuses, then empties out. */
    CHECK_ERRNO(rmdir(sub), ENOTEMPTY);
    CHECK_ERRNO(unlink(path_in("sub/nope")), ENOENT);
    CHECK_ERRNO(unlink(sub), EISDIR);
    CHECK_ERRNO(rmdir(path_in("sub/a")), ENOTDIR);
    const char *victims[] = { "a", "a-link", "b", "moved.bin", "sym" };
    for (size_t i = 0; i < sizeof(victims) / sizeof(victims[0]); i++) {
        CHECK_SYS(unlinkat(dfd, victims[i], 0));
    }
    CHECK_SYS(unlinkat(dfd, "deeper", AT_REMOVEDIR));
    print_dir("sub after unlink", sub);
    CHECK_SYS(close(dfd));
    CHECK_SYS(rmdir(sub));
    CHECK_ERRNO(stat(sub, &st), ENOENT);
    printf("directory ops ok\n");
}

/* Layout of the records the getdents64 syscall fills in. */
struct dirent64_raw {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/*
 * Enough entries that readdir needs several getdents64 calls, and a raw
 * getdents64 loop with a tiny buffer that needs hundreds: every name must
 * come back exactly once either way.
 */
static void test_many_entries(void)
{
    char dir[PATH_MAX];
    static unsigned char seen[MANY_FILES];
    char name[PATH_MAX];
    int fd, total;

    strcpy(dir, path_in("many"));
    CHECK_SYS(mkdir(dir, 0755));
    for (int i = 0; i < MANY_FILES; i++) {
        snprintf(name, sizeof(name), "%s/entry-with-a-longish-name-%04d", dir, i);
        fd = open(name, O_CREAT | O_WRONLY, 0644);
        CHECK_SYS(fd);
        CHECK_SYS(close(fd));
    }

    DIR *d = opendir(dir);
    CHECK(d != NULL, "opendir: %s", strerror(errno));
    struct dirent *de;
    total = 0;
    memset(seen, 0, sizeof(seen));
    while ((errno = 0, de = readdir(d)) != NULL) {
        int idx;
        if (de->d_name[0] == '.') {
            continue;
        }
        CHECK(sscanf(de->d_name, "entry-with-a-longish-name-%d", &idx) == 1 &&
              idx >= 0 && idx < MANY_FILES, "unexpected name '%s'", de->d_name);
        CHECK(!seen[idx], "readdir returned %s twice", de->d_name);
        seen[idx] = 1;
        total++;
    }
    CHECK(errno == 0, "readdir: %s", strerror(errno));
    closedir(d);
    CHECK(total == MANY_FILES, "readdir saw %d of %d", total, MANY_FILES);

    /* Raw getdents64 with a 200-byte buffer: at most a few entries per call. */
    char rawbuf[200] __attribute__((aligned(8)));
    int calls = 0;
    fd = open(dir, O_RDONLY | O_DIRECTORY);
    CHECK_SYS(fd);
    total = 0;
    memset(seen, 0, sizeof(seen));
    for (;;) {
        long n = syscall(SYS_getdents64, fd, rawbuf, sizeof(rawbuf));
        CHECK(n >= 0, "getdents64: %s", strerror(errno));
        if (n == 0) {
            break;
        }
        calls++;
        for (long off = 0; off < n;) {
            struct dirent64_raw *r = (struct dirent64_raw *)(rawbuf + off);
            int idx;
            CHECK(r->d_reclen > 0 && off + r->d_reclen <= n, "bad d_reclen %u",
                  r->d_reclen);
            if (r->d_name[0] != '.') {
                CHECK(sscanf(r->d_name, "entry-with-a-longish-name-%d", &idx) == 1 &&
                      idx >= 0 && idx < MANY_FILES, "raw name '%s'", r->d_name);
                CHECK(!seen[idx], "getdents64 returned %s twice", r->d_name);
                seen[idx] = 1;
                total++;
            }
            off += r->d_reclen;
        }
    }
    CHECK(total == MANY_FILES, "getdents64 saw %d of %d", total, MANY_FILES);
    CHECK(calls >= MANY_FILES / 4, "only %d getdents64 calls", calls);
    CHECK_SYS(close(fd));

    for (int i = 0; i < MANY_FILES; i++) {
        snprintf(name, sizeof(name), "%s/entry-with-a-longish-name-%04d", dir, i);
        CHECK_SYS(unlink(name));
    }
    CHECK_SYS(rmdir(dir));
    printf("%d directory entries via readdir and raw getdents64 ok\n", MANY_FILES);
}

int main(void)
{
    const char *base = getenv("TMPDIR");

    /* A predictable mode for created files whatever the caller's umask. */
    umask(022);
    snprintf(tmpdir, sizeof(tmpdir), "%s/dqemu-fileio-XXXXXX",
             base && *base ? base : "/tmp");
    CHECK(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));

    test_read_write_seek();
    test_append_dup_vectors();
    test_directories();
    test_many_entries();

    CHECK_SYS(unlink(path_in("log.txt")));
    CHECK_SYS(unlink(path_in("stdio.txt")));
    print_dir("tmpdir at end", tmpdir);
    CHECK_SYS(rmdir(tmpdir));
    struct stat st;
    CHECK_ERRNO(stat(tmpdir, &st), ENOENT);
    guest_pass("fileio");
    return 0;
}
