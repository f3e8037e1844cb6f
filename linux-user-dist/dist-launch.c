/*
 * dist-launch.c - how this node came to be one, and who may join it.
 *
 * Settles the cluster-wide choices before QEMU creates a CPU: the cluster
 * key (--gen-cluster-key, --cluster-key, or a launched worker's stdin),
 * the place of an srun/mpirun rank (rank 0 is the master, the others are
 * workers of its cluster), and the host list of a --hostfile/--hosts run.
 * Then, for a host-list run, the master starts one worker per further slot
 * through the launcher (ssh by default), hands each the key on its stdin,
 * and forwards every line a worker writes to stderr naming its node and
 * host.  A launched worker exits as soon as its stdin closes: whatever
 * way the master ends, even SIGKILL, its pipes close, the launcher's
 * channel closes and no worker outlives it on any host.
 */
#include "qemu/osdep.h"
#include <ifaddrs.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "qemu/cutils.h"
#include "qemu.h"
#include "dist-internal.h"
#include "clusterkey.h"
#include "hostlist.h"
#include "launch.h"

DqClusterKey dist_cluster_key;
bool dist_have_cluster_key;

static DqHostList host_list;
static const char *node_host[DQ_MAX_NODES];
static bool host_list_run;

/* Master: one launched worker. */
typedef struct LaunchedNode {
    pid_t pid;                  /* the launcher (or the local worker) */
    int key_fd;                 /* its stdin, held open for its life */
    int err_fd;                 /* its stdout and stderr */
    GString *partial;           /* a line not ended yet */
} LaunchedNode;

static LaunchedNode launched[DQ_MAX_NODES];
static bool launch_cluster_ready;

static const char *launch_getenv(const char *name)
{
    return getenv(name);
}

/* ---- is a host this machine? ------------------------------------------- */

static bool addr_is_local(const struct sockaddr *sa)
{
    struct ifaddrs *ifs, *i;
    bool local = false;

    if (sa->sa_family == AF_INET &&
        (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) ==
        127) {
        return true;
    }
    if (sa->sa_family == AF_INET6 &&
        IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
        return true;
    }
    if (getifaddrs(&ifs) != 0) {
        return false;
    }
    for (i = ifs; i != NULL && !local; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != sa->sa_family) {
            continue;
        }
        if (sa->sa_family == AF_INET) {
            local = ((const struct sockaddr_in *)sa)->sin_addr.s_addr ==
                    ((const struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr;
        } else if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *mine =
                (const struct sockaddr_in6 *)i->ifa_addr;

            local = memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr,
                           &mine->sin6_addr, sizeof(struct in6_addr)) == 0;
        }
    }
    freeifaddrs(ifs);
    return local;
}

/* "localhost", this machine's name, or a name of one of its addresses. */
static bool host_is_this_machine(const char *host)
{
    char me[256];
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai, *a;
    bool local = false;

    if (strcmp(host, "localhost") == 0) {
        return true;
    }
    if (gethostname(me, sizeof(me)) == 0) {
        size_t n = strcspn(me, ".");

        me[sizeof(me) - 1] = '\0';
        if (strcmp(host, me) == 0 ||
            (strncmp(host, me, n) == 0 && host[n] == '\0')) {
            return true;
        }
    }
    if (getaddrinfo(host, NULL, &hints, &ai) != 0) {
        return false;
    }
    for (a = ai; a != NULL && !local; a = a->ai_next) {
        local = addr_is_local(a->ai_addr);
    }
    freeaddrinfo(ai);
    return local;
}

char *dist_source_address(const char *host)
{
    struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *ai = NULL;
    g_autofree char *bare = NULL;
    struct sockaddr_storage me;
    socklen_t len = sizeof(me);
    char ip[INET6_ADDRSTRLEN];
    char *out = NULL;
    int fd;

    /* An endpoint's IPv6 host comes in brackets; the resolver wants none. */
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        host = bare = g_strndup(host + 1, strlen(host) - 2);
    }
    /* Connecting a UDP socket sends nothing; it only picks the route. */
    if (getaddrinfo(host, "9", &hints, &ai) != 0 || ai == NULL) {
        return NULL;
    }
    fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
        getsockname(fd, (struct sockaddr *)&me, &len) == 0 &&
        getnameinfo((struct sockaddr *)&me, len, ip, sizeof(ip), NULL, 0,
                    NI_NUMERICHOST) == 0) {
        out = g_strdup_printf(me.ss_family == AF_INET6 ? "[%s]" : "%s", ip);
    }
    if (fd >= 0) {
        close(fd);
    }
    freeaddrinfo(ai);
    return out;
}

/* ---- settling the options --------------------------------------------- */

static void settle_key(void)
{
    char err[DQ_ERRBUF_SIZE + 512];

    if (dist_options.gen_cluster_key != NULL) {
        DqClusterKey k;

        if (dq_cluster_key_generate(&k, err, sizeof(err)) != DQ_OK ||
            dq_cluster_key_write_file(dist_options.gen_cluster_key, &k, err,
                                      sizeof(err)) != DQ_OK) {
            dist_usage_error("--gen-cluster-key: %s", err);
        }
        printf("dqemu-" TARGET_NAME ": wrote a new cluster key to %s "
               "(mode 0600); give it to every node with --cluster-key %s\n",
               dist_options.gen_cluster_key, dist_options.gen_cluster_key);
        exit(EXIT_SUCCESS);
    }
    /* The contradiction first: it says more than the file's state. */
    if (dist_options.insecure && dist_options.cluster_key != NULL) {
        dist_usage_error("--insecure turns authentication off: not with "
                         "--cluster-key");
    }
    /* Checked in every mode, also where it would not be needed. */
    if (dist_options.cluster_key != NULL) {
        if (dq_cluster_key_load(dist_options.cluster_key, &dist_cluster_key,
                                err, sizeof(err)) != DQ_OK) {
            dist_usage_error("--cluster-key: %s", err);
        }
        dist_have_cluster_key = true;
    }
}

/*
 * An srun/mpirun rank: rank 0 becomes the master listening on the job's
 * endpoint, every other rank a worker of it.
 */
static void settle_rank(void)
{
    char err[DQ_ERRBUF_SIZE], host[DQ_HOST_NAME_MAX + 1];
    static char endpoint[DQ_ENDPOINT_MAX], bind_ep[DQ_ENDPOINT_MAX];
    const char *port;
    DqRank r;

    if (dq_rank_from_env(launch_getenv, &r, err, sizeof(err)) != DQ_OK) {
        dist_usage_error("%s", err);
    }
    if (r.source == DQ_RANK_NONE || dist_options.worker) {
        return;
    }
    if (dist_options.listen || dist_options.hostfile || dist_options.hosts) {
        dist_usage_error("this is rank %u of %u under %s: its cluster is "
                         "the job's, not --listen, --hostfile or --hosts",
                         r.rank, r.size, dq_rank_source_str(r.source));
    }
    if (dist_options.master != NULL) {
        snprintf(endpoint, sizeof(endpoint), "%s", dist_options.master);
    } else if (r.source == DQ_RANK_SLURM && r.slurm_nodelist && r.slurm_ids) {
        if (dq_slurm_nodelist_first(r.slurm_nodelist, host, sizeof(host),
                                    err, sizeof(err)) != DQ_OK) {
            dist_usage_error("SLURM_STEP_NODELIST: %s", err);
        }
        g_autofree char *ep = g_strdup_printf(
            "tcp://%s:%u", host,
            dq_slurm_master_port(r.slurm_job_id, r.slurm_step_id));

        if (strlen(ep) >= sizeof(endpoint)) {
            dist_usage_error("SLURM_STEP_NODELIST: the first host's name "
                             "is too long for an endpoint");
        }
        pstrcpy(endpoint, sizeof(endpoint), ep);
    } else {
        dist_usage_error("rank %u of %u under %s needs --master "
                         "tcp://HOST:PORT (the host rank 0 runs on)",
                         r.rank, r.size, dq_rank_source_str(r.source));
    }
    if (strncmp(endpoint, "tcp://", 6) != 0) {
        dist_usage_error("--master: ranks meet over tcp://HOST:PORT");
    }
    dist_options.nodes = r.size;
    if (r.rank == 0) {
        /* Bind every interface on the port: HOST is how others reach us. */
        port = strrchr(endpoint, ':');
        snprintf(bind_ep, sizeof(bind_ep), "tcp://*%s", port);
        dist_options.listen = bind_ep;
        dist_options.master = NULL;
    } else {
        dist_options.worker = true;
        dist_options.node_id = r.rank;
        dist_options.master = endpoint;
    }
}

static void settle_host_list(void)
{
    char err[DQ_ERRBUF_SIZE + 512];
    unsigned count;
    DqStatus st;

    if (dist_options.hostfile == NULL && dist_options.hosts == NULL) {
        return;
    }
    st = dist_options.hostfile ?
         dq_hostfile_load(dist_options.hostfile, &host_list, err,
                          sizeof(err)) :
         dq_hosts_parse(dist_options.hosts, &host_list, err, sizeof(err));
    if (st != DQ_OK) {
        dist_usage_error("%s: %s", dist_options.hostfile ? "--hostfile" :
                         "--hosts", err);
    }
    /* --nodes N takes the first N slots; without it, every slot. */
    if (dq_hostlist_assign(&host_list, dist_options.nodes > 1 ?
                           dist_options.nodes : 0, node_host, &count, err,
                           sizeof(err)) != DQ_OK) {
        dist_usage_error("%s: %s", dist_options.hostfile ? "--hostfile" :
                         "--hosts", err);
    }
    if (!host_is_this_machine(node_host[0])) {
        dist_usage_error("%s: the first host, %s, must be this machine: "
                         "node 0, the master, runs where dqemu-"
                         TARGET_NAME " is started (put this host first, "
                         "by name or as localhost)",
                         dist_options.hostfile ? "--hostfile" : "--hosts",
                         node_host[0]);
    }
    dist_options.nodes = count;
    host_list_run = count > 1;
}

void dist_launch_settle(void)
{
    settle_key();
    settle_rank();
    settle_host_list();
}

bool dist_launch_from_host_list(void)
{
    return host_list_run;
}

/* ---- the master: starting workers over the launcher ----------------- */

/* Same-host slots run the worker directly; others through the launcher. */
static bool node_is_local(unsigned k)
{
    return strcmp(node_host[k], node_host[0]) == 0;
}

pid_t dist_start_detached(char **av, int in_fd, int out_fd, bool own_group)
{
    int pidpipe[2];
    pid_t pid, child = -1;

    if (pipe2(pidpipe, O_CLOEXEC) < 0) {
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    /*
     * The process must not be a child of the master: the guest's wait(-1)
     * would reap it and its exit would raise SIGCHLD in the guest.  A
     * short-lived middle process (a clone child without exit signal,
     * which the guest cannot wait for either) starts it and exits, so it
     * belongs to init.  Its pid comes back through a pipe.  Between clone
     * and exec only async-signal-safe calls: the master has threads.
     */
    pid = syscall(SYS_clone, 0ul, NULL, NULL, NULL, 0ul);
    if (pid == 0) {
        pid_t grandchild = syscall(SYS_clone, (unsigned long)SIGCHLD, NULL,
                                   NULL, NULL, 0ul);

        if (grandchild == 0) {
            static const char msg[] = "dqemu: cannot start a node: ";
            sigset_t none;

            dup2(in_fd, 0);
            if (out_fd >= 0) {
                dup2(out_fd, 1);
                dup2(out_fd, 2);
            }
            /* The service thread blocks every signal; QEMU must not. */
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            if (own_group) {
                setpgid(0, 0);
            }
            execvp(av[0], av);
            if (write(2, msg, sizeof(msg) - 1) < 0 ||
                write(2, av[0], strlen(av[0])) < 0 || write(2, "\n", 1) < 0) {
                /* nothing more to say */
            }
            _exit(127);
        }
        if (write(pidpipe[1], &grandchild, sizeof(grandchild)) < 0) {
            /* the master sees a short read */
        }
        _exit(0);
    }
    close(pidpipe[1]);
    if (pid > 0) {
        waitpid(pid, NULL, __WALL);
        if (read(pidpipe[0], &child, sizeof(child)) != sizeof(child)) {
            child = -1;
        }
    }
    close(pidpipe[0]);
    return child;
}

/* Write one line of node @k's output to our stderr, naming it. */
static void forward_line(unsigned k, const char *line, size_t len)
{
    fprintf(stderr, "[node %u on %s] %.*s\n", k, node_host[k], (int)len,
            line);
}

static bool forward_output(unsigned k)
{
    LaunchedNode *n = &launched[k];
    char buf[4096];
    ssize_t got = read(n->err_fd, buf, sizeof(buf));
    char *nl;

    if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
        return true;
    }
    if (got <= 0) {
        if (n->partial->len) {
            forward_line(k, n->partial->str, n->partial->len);
            g_string_truncate(n->partial, 0);
        }
        return false;
    }
    g_string_append_len(n->partial, buf, got);
    while ((nl = memchr(n->partial->str, '\n', n->partial->len)) != NULL) {
        size_t len = nl - n->partial->str;

        forward_line(k, n->partial->str, len);
        g_string_erase(n->partial, 0, len + 1);
    }
    return true;
}

/* The forwarding thread: every worker's output, until all are closed. */
static void *launch_forwarder(void *arg)
{
    struct pollfd fds[DQ_MAX_NODES];
    unsigned owner[DQ_MAX_NODES], n, k, i;

    rcu_register_thread();
    for (;;) {
        n = 0;
        for (k = 1; k < dist_node_count; k++) {
            if (launched[k].err_fd >= 0) {
                fds[n].fd = launched[k].err_fd;
                fds[n].events = POLLIN;
                fds[n].revents = 0;
                owner[n++] = k;
            }
        }
        if (n == 0) {
            break;
        }
        if (poll(fds, n, -1) < 0 && errno != EINTR) {
            break;
        }
        for (i = 0; i < n; i++) {
            k = owner[i];
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)) ||
                forward_output(k)) {
                continue;
            }
            close(launched[k].err_fd);
            launched[k].err_fd = -1;
            if (!__atomic_load_n(&launch_cluster_ready, __ATOMIC_ACQUIRE)) {
                dist_node_fail("node %u on host %s ended before it joined "
                               "the cluster (its messages, if any, are "
                               "above)", k, node_host[k]);
            }
        }
    }
    return NULL;
}

void dist_launch_workers(const char *endpoint)
{
    const char *port = strrchr(endpoint, ':');
    g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
    char key_text[128];
    unsigned k;

    const char *first_remote = "127.0.0.1";

    dq_cluster_key_format(&dist_cluster_key, key_text, sizeof(key_text));
    for (k = 1; k < dist_node_count; k++) {
        if (!node_is_local(k)) {
            first_remote = node_host[k];
            break;
        }
    }
    for (k = 1; k < dist_node_count; k++) {
        g_autofree char *src = NULL, *master_ep = NULL;
        g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
        char err[DQ_ERRBUF_SIZE];
        char **av = NULL;
        int in[2], out[2];
        pid_t pid;

        /*
         * A worker binds on the address it reaches the master by, and
         * workers on other hosts connect to that: a same-host worker must
         * use an address they can reach too, loopback only if none is.
         */
        src = dist_source_address(node_is_local(k) ? first_remote :
                                    node_host[k]);
        if (src == NULL) {
            dist_node_fail("cannot start node %u on host %s: the host name "
                           "does not resolve", k, node_host[k]);
            return;
        }
        master_ep = g_strdup_printf("tcp://%s%s", src, port);
        dist_node_worker_args(args, master_ep, k);
        if (dist_options.insecure) {
            /* No key to hand over; the pipe still ends the worker's life. */
            g_ptr_array_add(args, g_strdup("--insecure"));
            g_ptr_array_add(args, g_strdup("--stdin-lifeline"));
        } else {
            g_ptr_array_add(args, g_strdup("--cluster-key-stdin"));
        }
        g_ptr_array_add(args, NULL);
        if (node_is_local(k)) {
            g_ptr_array_insert(args, 0, g_strdup(self));
            av = (char **)g_ptr_array_steal(args, NULL);
        } else if (dq_launcher_argv(dist_options.launcher ?
                                    dist_options.launcher :
                                    DQ_LAUNCHER_DEFAULT, node_host[k],
                                    dist_options.remote_dqemu ?
                                    dist_options.remote_dqemu : self,
                                    (const char *const *)args->pdata, &av,
                                    err, sizeof(err)) != DQ_OK) {
            dist_node_fail("--launcher: %s", err);
            return;
        }
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
            dist_node_fail("cannot start node %u: %s", k, strerror(errno));
            return;
        }
        pid = dist_start_detached(av, in[0], out[1], true);
        if (node_is_local(k)) {
            g_strfreev(av);
        } else {
            dq_words_free(av);
        }
        close(in[0]);
        close(out[1]);
        if (pid < 0) {
            dist_node_fail("cannot start node %u on host %s: %s", k,
                           node_host[k], strerror(errno));
            return;
        }
        /* The key, then silence: closing this pipe is the end signal. */
        if (!dist_options.insecure &&
            write(in[1], key_text, strlen(key_text)) < 0) {
            /* it is gone already: its output's end says so */
        }
        launched[k].pid = pid;
        launched[k].key_fd = in[1];
        launched[k].err_fd = out[0];
        launched[k].partial = g_string_new(NULL);
    }
    qemu_thread_create(&(QemuThread){ 0 }, "dqemu-launch", launch_forwarder,
                       NULL, QEMU_THREAD_DETACHED);
}

void dist_launch_cluster_ready(void)
{
    __atomic_store_n(&launch_cluster_ready, true, __ATOMIC_RELEASE);
}

void dist_launch_kill_all(void)
{
    unsigned k;

    for (k = 1; k < DQ_MAX_NODES; k++) {
        if (launched[k].pid > 0) {
            /* The launcher's group: ssh and what it started here. */
            kill(-launched[k].pid, SIGTERM);
            kill(launched[k].pid, SIGTERM);
        }
        if (launched[k].key_fd >= 0 && launched[k].pid > 0) {
            close(launched[k].key_fd);
            launched[k].key_fd = -1;
        }
        launched[k].pid = 0;
    }
}

/* ---- a launched worker ----------------------------------------------- */

static void *stdin_watch(void *arg)
{
    char buf[256];
    ssize_t n;

    rcu_register_thread();
    do {
        n = read(0, buf, sizeof(buf));
    } while (n > 0 || (n < 0 && errno == EINTR));
    fflush(stdout);
    fprintf(stderr, "dqemu-" TARGET_NAME ": node %u: the master is gone "
            "(its launcher's pipe closed); leaving\n", dist_options.node_id);
    _exit(EXIT_FAILURE);
    return NULL;
}

/* The key line the master writes first on a launched worker's stdin. */
static void read_key_from_stdin(void)
{
    char line[256], err[DQ_ERRBUF_SIZE];
    size_t len = 0;

    /* Byte by byte: what follows the line is the watch's, not ours. */
    while (len + 1 < sizeof(line)) {
        ssize_t n = read(0, line + len, 1);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0 || line[len] == '\n') {
            break;
        }
        len++;
    }
    line[len] = '\0';
    if (dq_cluster_key_parse(line, &dist_cluster_key, err, sizeof(err))
        != DQ_OK) {
        dist_usage_error("--cluster-key-stdin: %s", err);
    }
    dist_have_cluster_key = true;
}

void dist_launch_worker_stdin(void)
{
    sigset_t all, old;

    if (dist_options.cluster_key_stdin) {
        read_key_from_stdin();
    } else if (!dist_options.stdin_lifeline) {
        return;
    }
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    qemu_thread_create(&(QemuThread){ 0 }, "dqemu-stdin", stdin_watch, NULL,
                       QEMU_THREAD_DETACHED);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}
