// The user database lock that shadow's tools (useradd, usermod, passwd, vipw)
// take before editing /etc/passwd, group, shadow and gshadow: glibc's
// lckpwdf() (an fcntl lock on /etc/.pwd.lock, waiting up to 15 s). JS cannot
// take fcntl locks, so this is native; the editing itself is in src/users.
#include <shadow.h>

#include <cerrno>

#include <napi.h>

#include "errors.h"

namespace slapos {
namespace {

Napi::Value LockUserDb(const Napi::CallbackInfo& info) {
  errno = 0;
  if (lckpwdf() != 0) {
    ThrowErrno(info.Env(), errno != 0 ? errno : EAGAIN, "lckpwdf", "/etc/.pwd.lock");
    return info.Env().Undefined();
  }
  return info.Env().Undefined();
}

Napi::Value UnlockUserDb(const Napi::CallbackInfo& info) {
  ulckpwdf();
  return info.Env().Undefined();
}

}  // namespace

void InitPasswd(Napi::Env env, Napi::Object exports) {
  exports.Set("lockUserDb", Napi::Function::New(env, LockUserDb, "lockUserDb"));
  exports.Set("unlockUserDb", Napi::Function::New(env, UnlockUserDb, "unlockUserDb"));
}

}  // namespace slapos
