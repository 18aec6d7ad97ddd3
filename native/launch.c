// slapos-launch: the first program of every process run for a partition
// (docs/design.md, "Containment"). Started as root by the executor or by
// supervisord, it
//  1. joins the partition's cgroup(s) by writing "0" to each given
//     cgroup.procs, so that everything it becomes is born there (limits from
//     the first instruction, one kill for the whole group);
//  2. optionally starts a logger that already runs as the partition user and
//     writes the program's output into a file of the partition (with
//     rotation), so root never opens a path of the partition tree;
//  3. drops to the partition user (groups, gid, uid; no way back), changes
//     directory and umask as that user, closes every descriptor but stdin,
//     stdout and stderr, and execs the program.
// Any failure before exec is fatal (exit 127 with one line on stderr): a
// program never runs outside its cgroup nor as root by accident.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROGRAM "slapos-launch"
#include "launch-common.h"

struct options {
  const char *cgroups[MAX_CGROUPS];
  int ncgroups;
  long uid, gid;
  int init_groups;
  const char *log;
  long log_max, log_backups;
  const char *dir;
  long umask_value;
  int no_new_privs;
  char **argv;
};

static void join_cgroup(const char *procs) {
  int fd = open(procs, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) die("cannot join cgroup %s: %s", procs, strerror(errno));
  if (write(fd, "0", 1) != 1) die("cannot join cgroup %s: %s", procs, strerror(errno));
  close(fd);
}

static void drop_privileges(const struct options *o) {
  if (o->uid < 0) return;
  gid_t groups[MAX_GROUPS];
  int ngroups = partition_groups(o->uid, o->gid, o->init_groups, groups);
  if (setgroups((size_t)ngroups, groups) != 0) die("setgroups: %s", strerror(errno));
  if (setresgid((gid_t)o->gid, (gid_t)o->gid, (gid_t)o->gid) != 0) die("setresgid: %s", strerror(errno));
  if (setresuid((uid_t)o->uid, (uid_t)o->uid, (uid_t)o->uid) != 0) die("setresuid: %s", strerror(errno));
  if (setuid(0) == 0) die("could regain root after dropping privileges");
}

// The logger: reads the program's output from `in` and appends it to
// o->log, as the partition user already (so a link planted at the name
// only ever points where that user could write anyway; O_NOFOLLOW refuses
// it outright). Rotation: past log_max bytes the file becomes .1, .2, ...
static void log_loop(const struct options *o, int in) {
  char rotated[PATH_MAX], older[PATH_MAX];
  signal(SIGTERM, SIG_IGN); // the group's stop signal: keep draining until EOF
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  int out = -1;
  off_t size = -1; // -1: the file was (re)opened, its size not read yet
  char buffer[65536];
  for (;;) {
    struct stat st;
    // A link, FIFO or directory at the name (the user's own doing, in the
    // user's own directory) is removed as a name and a file made instead.
    for (int attempt = 0; out < 0 && attempt < 2; attempt++) {
      out = open(o->log, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0640);
      if (out >= 0 && (fstat(out, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(out);
        out = -1;
        errno = EINVAL;
      }
      if (out < 0 && attempt == 0 && (errno == ELOOP || errno == EINVAL || errno == ENXIO || errno == EISDIR)) {
        if (unlink(o->log) != 0) rmdir(o->log);
      }
    }
    if (out >= 0 && size < 0) {
      fcntl(out, F_SETFL, O_APPEND);
      size = st.st_size;
    } else if (out < 0) {
      fprintf(stderr, "slapos-launch: cannot open log %s: %s (output dropped)\n", o->log, strerror(errno));
    }
    ssize_t n = read(in, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (out >= 0) {
      for (ssize_t done = 0; done < n;) {
        ssize_t w = write(out, buffer + done, (size_t)(n - done));
        if (w <= 0) break;
        done += w;
      }
      size += n;
    }
    if (o->log_max > 0 && size >= o->log_max) {
      if (out >= 0) close(out);
      out = -1;
      size = -1;
      if (o->log_backups <= 0) {
        unlink(o->log);
        continue;
      }
      for (long i = o->log_backups; i >= 1; i--) {
        snprintf(older, sizeof older, "%s.%ld", o->log, i);
        if (i == 1) snprintf(rotated, sizeof rotated, "%s", o->log);
        else snprintf(rotated, sizeof rotated, "%s.%ld", o->log, i - 1);
        rename(rotated, older);
      }
    }
  }
  _exit(0);
}

static void start_logger(const struct options *o) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) die("pipe: %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid == 0) {
    close(pipefd[1]);
    drop_privileges(o);
    if (o->dir && chdir(o->dir) != 0) die("chdir %s: %s", o->dir, strerror(errno));
    log_loop(o, pipefd[0]);
  }
  close(pipefd[0]);
  if (dup2(pipefd[1], 1) < 0 || dup2(pipefd[1], 2) < 0) die("dup2: %s", strerror(errno));
  close(pipefd[1]);
}

// Nothing of the starter (the node, supervisord) reaches the program but stdin, stdout and stderr:
// a descriptor opened without O_CLOEXEC there (an IPC channel, a log) is not the partition's.
static void close_inherited(void) {
  if (close_range(3, ~0U, 0) == 0) return;
  long max = sysconf(_SC_OPEN_MAX);
  for (long fd = 3; fd < (max > 0 ? max : 65536); fd++) close((int)fd);
}

static void usage(void) {
  die("usage: slapos-launch [--cgroup PROCS]... [--uid N --gid N [--init-groups]] [--no-new-privs] [--chdir DIR] [--umask OCTAL]"
      " [--log FILE [--log-max BYTES] [--log-backups N]] -- PROGRAM [ARG]...");
}

int main(int argc, char **argv) {
  struct options o = {.uid = -1, .gid = -1, .log_max = 0, .log_backups = 1, .umask_value = -1};
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (i + 1 >= argc && strcmp(a, "--init-groups") != 0 && strcmp(a, "--no-new-privs") != 0) usage();
    if (strcmp(a, "--cgroup") == 0) {
      if (o.ncgroups == MAX_CGROUPS) die("too many --cgroup");
      o.cgroups[o.ncgroups++] = argv[++i];
    } else if (strcmp(a, "--uid") == 0) o.uid = number(argv[++i], "uid");
    else if (strcmp(a, "--gid") == 0) o.gid = number(argv[++i], "gid");
    else if (strcmp(a, "--init-groups") == 0) o.init_groups = 1;
    else if (strcmp(a, "--no-new-privs") == 0) o.no_new_privs = 1;
    else if (strcmp(a, "--chdir") == 0) o.dir = argv[++i];
    else if (strcmp(a, "--umask") == 0) {
      char *end;
      o.umask_value = strtol(argv[++i], &end, 8);
      if (*end || o.umask_value < 0 || o.umask_value > 0777) die("invalid umask %s", argv[i]);
    } else if (strcmp(a, "--log") == 0) o.log = argv[++i];
    else if (strcmp(a, "--log-max") == 0) o.log_max = number(argv[++i], "log size");
    else if (strcmp(a, "--log-backups") == 0) o.log_backups = number(argv[++i], "log backups");
    else usage();
  }
  if (i >= argc) usage();
  o.argv = argv + i;
  if ((o.uid < 0) != (o.gid < 0)) die("--uid and --gid go together");
  if (o.uid < 0 && geteuid() == 0 && o.log) die("--log needs --uid (the logger never runs as root)");

  for (int c = 0; c < o.ncgroups; c++) join_cgroup(o.cgroups[c]);
  if (o.umask_value >= 0) umask((mode_t)o.umask_value);
  if (o.log) start_logger(&o);
  drop_privileges(&o);
  // Instance buildouts (the executor's noNewPrivs): no setuid or file capability regains anything.
  if (o.no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("prctl(PR_SET_NO_NEW_PRIVS): %s", strerror(errno));
  if (o.dir && chdir(o.dir) != 0) die("chdir %s: %s", o.dir, strerror(errno));
  close_inherited();
  execvp(o.argv[0], o.argv);
  die("cannot run %s: %s", o.argv[0], strerror(errno));
  return 127;
}
