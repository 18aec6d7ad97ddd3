// Signals through pidfds (Linux ≥ 5.3): a pid read from /proc or cgroup.procs
// may be reaped and reused before it is signalled. The caller opens a pidfd,
// checks that the process is still the one it means (uid, cgroup) and then
// signals through the descriptor, which can only ever reach that process.
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include <napi.h>

#include "errors.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

namespace slapos {
namespace {

bool IntArg(const Napi::CallbackInfo& info, size_t i, const char* what, int* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    ThrowArg(info.Env(), std::string(what) + " must be a number");
    return false;
  }
  *out = info[i].As<Napi::Number>().Int32Value();
  return true;
}

// pidfdOpen(pid) → descriptor, or -1 when the process no longer exists.
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pid;
  if (!IntArg(info, 0, "pid", &pid)) return env.Undefined();
  if (pid <= 0) {
    ThrowArg(env, "pid must be positive");
    return env.Undefined();
  }
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) {
    if (errno == ESRCH) return Napi::Number::New(env, -1);
    ThrowErrno(env, errno, "pidfd_open", std::to_string(pid));
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(fd));
}

// pidfdSignal(fd, signal) → false when the process has exited meanwhile.
Napi::Value PidfdSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd, sig;
  if (!IntArg(info, 0, "fd", &fd) || !IntArg(info, 1, "signal", &sig)) return env.Undefined();
  if (syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0) < 0) {
    if (errno == ESRCH) return Napi::Boolean::New(env, false);
    ThrowErrno(env, errno, "pidfd_send_signal", std::to_string(fd));
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

}  // namespace

void InitPidfd(Napi::Env env, Napi::Object exports) {
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("pidfdSignal", Napi::Function::New(env, PidfdSignal, "pidfdSignal"));
}

}  // namespace slapos
