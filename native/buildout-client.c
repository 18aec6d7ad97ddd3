// slapos-buildout-client: the executor's handle on one run of the buildout
// fork server (lib/buildout-server.py, docs/performance.md "Fork server").
// Started as root by the executor exactly where slapos-launch would be (same
// environment, working directory, umask, stdio), it
//  1. joins the run's cgroup(s) (as slapos-launch) and keeps the open
//     cgroup.procs descriptors, so that the forked child joins the same
//     groups through them before it runs anything;
//  2. computes the partition user's groups as slapos-launch does
//     (getgrouplist), refusing uid, gid or a group 0;
//  3. sends the request and its descriptors (stdin, stdout, stderr, the
//     working directory, the cgroup.procs files) to the server;
//  4. lives as long as the child: waits for its wait status and ends the
//     same way (exit code, or the same signal). Killed (partition_timeout kills
//     the run's cgroup, this process included), the server kills the child.
// Any failure before the request is sent is fatal (exit 127 with one line).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROGRAM "slapos-buildout-client"
#include "launch-common.h"

#define MAX_MESSAGE (1 << 20)

extern char **environ;

static char *message;
static size_t used;

static void field(const char *text) {
  size_t n = strlen(text) + 1;
  if (used + n > MAX_MESSAGE) die("request too large");
  memcpy(message + used, text, n);
  used += n;
}

static void field_number(long value, int octal) {
  char text[32];
  snprintf(text, sizeof text, octal ? "%lo" : "%ld", value);
  field(text);
}

static void usage(void) {
  die("usage: slapos-buildout-client --socket PATH [--cgroup PROCS]... --uid N --gid N [--init-groups] [--no-new-privs] -- [BUILDOUT ARG]...");
}

int main(int argc, char **argv) {
  const char *socket_path = NULL;
  const char *cgroups[MAX_CGROUPS];
  int ncgroups = 0, init_groups = 0, no_new_privs = 0;
  long uid = -1, gid = -1;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(a, "--init-groups") == 0) init_groups = 1;
    else if (strcmp(a, "--no-new-privs") == 0) no_new_privs = 1;
    else if (i + 1 >= argc) usage();
    else if (strcmp(a, "--socket") == 0) socket_path = argv[++i];
    else if (strcmp(a, "--cgroup") == 0) {
      if (ncgroups == MAX_CGROUPS) die("too many --cgroup");
      cgroups[ncgroups++] = argv[++i];
    } else if (strcmp(a, "--uid") == 0) uid = number(argv[++i], "uid");
    else if (strcmp(a, "--gid") == 0) gid = number(argv[++i], "gid");
    else usage();
  }
  if (!socket_path || uid < 0 || gid < 0 || i > argc) usage();
  if (uid == 0 || gid == 0) die("refusing to run as uid/gid 0");  // before joining any cgroup

  int fds[4 + MAX_CGROUPS];
  fds[0] = 0;
  fds[1] = 1;
  fds[2] = 2;
  fds[3] = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fds[3] < 0) die("cannot open the working directory: %s", strerror(errno));
  for (int c = 0; c < ncgroups; c++) {
    int fd = open(cgroups[c], O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || write(fd, "0", 1) != 1) die("cannot join cgroup %s: %s", cgroups[c], strerror(errno));
    fds[4 + c] = fd;
  }

  gid_t groups[MAX_GROUPS];
  int ngroups = partition_groups(uid, gid, init_groups, groups);

  mode_t mask = umask(0);
  umask(mask);
  message = malloc(MAX_MESSAGE);
  if (!message) die("out of memory");
  field_number(uid, 0);
  field_number(gid, 0);
  field_number((long)mask, 1);
  field(no_new_privs ? "1" : "0");
  field_number(ncgroups, 0);  // the server checks it got every descriptor
  field_number(ngroups, 0);
  for (int g = 0; g < ngroups; g++) field_number((long)groups[g], 0);
  field_number(argc - i, 0);
  for (int a = i; a < argc; a++) field(argv[a]);
  long nenv = 0;
  for (char **e = environ; *e; e++) nenv++;
  field_number(nenv, 0);
  for (char **e = environ; *e; e++) field(*e);

  int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (sock < 0) die("socket: %s", strerror(errno));
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  if (strlen(socket_path) >= sizeof address.sun_path) die("socket path too long: %s", socket_path);
  strcpy(address.sun_path, socket_path);
  if (connect(sock, (struct sockaddr *)&address, sizeof address) != 0) die("cannot reach the fork server at %s: %s", socket_path, strerror(errno));

  int nfds = 4 + ncgroups;
  char control[CMSG_SPACE(sizeof(int) * (4 + MAX_CGROUPS))];
  memset(control, 0, sizeof control);
  struct iovec iov = {.iov_base = message, .iov_len = used};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = CMSG_SPACE(sizeof(int) * nfds)};
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
  memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) != (ssize_t)used) die("cannot send the request: %s", strerror(errno));
  for (int f = 3; f < nfds; f++) close(fds[f]);
  free(message);

  // The run's stop signal reaches the child too (same cgroup): wait for its status rather than die first.
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  char reply[256];
  for (;;) {
    ssize_t n = recv(sock, reply, sizeof reply - 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("the fork server ended before the run did");
    reply[n] = '\0';
    if (strncmp(reply, "error ", 6) == 0) die("the fork server refused the request: %s", reply + 6);
    if (strncmp(reply, "status ", 7) != 0) continue;  // "pid N"
    int status = (int)number(reply + 7, "status");
    if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
      int sig = WTERMSIG(status);
      struct rlimit none = {0, 0};
      setrlimit(RLIMIT_CORE, &none);  // the child already dumped (or not) its core
      signal(sig, SIG_DFL);
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, sig);
      sigprocmask(SIG_UNBLOCK, &set, NULL);
      raise(sig);
    }
    _exit(1);
  }
}
