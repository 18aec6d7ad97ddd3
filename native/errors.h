// Turning a failed system call into a JS Error that carries errno, the
// syscall and the object it was about (device name, cgroup path).
#pragma once
#include <napi.h>
#include <string>

namespace slapos {

// Throws (as a pending JS exception) an Error like
// "TUNSETOWNER slaptap3: Operation not permitted" with .errno, .code, .syscall
// and .target set. Callers return right after.
void ThrowErrno(Napi::Env env, int err, const std::string& syscall, const std::string& target);

// Throws a TypeError for a bad argument.
void ThrowArg(Napi::Env env, const std::string& message);

}  // namespace slapos
