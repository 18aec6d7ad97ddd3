// The kernel's identity of a unix-socket peer (SO_PEERCRED): the master's
// unix-socket listener knows its caller by uid without trusting anything the
// caller says. Credentials are those of the process that connected, taken at
// connect() time by the kernel.
#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <string>

#include <napi.h>

#include "errors.h"

namespace slapos {
namespace {

// peerCredentials(fd) → { pid, uid, gid } of the connected unix socket fd.
Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    ThrowArg(env, "fd must be a number");
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    ThrowErrno(env, errno, "getsockopt(SO_PEERCRED)", std::to_string(fd));
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, cred.pid));
  out.Set("uid", Napi::Number::New(env, cred.uid));
  out.Set("gid", Napi::Number::New(env, cred.gid));
  return out;
}

}  // namespace

void InitPeerCred(Napi::Env env, Napi::Object exports) {
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
}

}  // namespace slapos
