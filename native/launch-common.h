// What slapos-launch (launch.c) and slapos-buildout-client (buildout-client.c)
// share: the fatal error (exit 127, one line), argument numbers, and the one
// rule for a partition user's groups, so that an exec'd run and a run forked
// by the buildout fork server get the same ones. Static: each program
// includes it once; PROGRAM names the program in messages.
#ifndef SLAPOS_LAUNCH_COMMON_H
#define SLAPOS_LAUNCH_COMMON_H

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_CGROUPS 16
#define MAX_GROUPS 256

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs(PROGRAM ": ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  _exit(127);
}

static long number(const char *text, const char *what) {
  char *end;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno || *end || end == text || value < 0) die("invalid %s %s", what, text);
  return value;
}

// The user's supplementary groups from the user database (initgroups, the
// reference's dropPrivileges) when init_groups, else none; uid, gid or a
// group 0 is fatal. Returns how many were put in groups[MAX_GROUPS].
static int partition_groups(long uid, long gid, int init_groups, gid_t *groups) {
  if (uid == 0 || gid == 0) die("refusing to run as uid/gid 0");
  int ngroups = 0;
  if (init_groups) {
    struct passwd *pw = getpwuid((uid_t)uid);
    if (pw) {
      ngroups = MAX_GROUPS;
      if (getgrouplist(pw->pw_name, (gid_t)gid, groups, &ngroups) < 0) die("user %ld is in too many groups", uid);
    }
  }
  for (int i = 0; i < ngroups; i++)
    if (groups[i] == 0) die("refusing supplementary group 0 for uid %ld", uid);
  return ngroups;
}

#endif
