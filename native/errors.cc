#include "errors.h"

#include <cstring>

namespace slapos {

namespace {
// Symbolic errno name, as Node's own fs errors have (err.code === 'EPERM').
const char* ErrnoName(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ERANGE: return "ERANGE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ENOTSUP: return "ENOTSUP";
    case ESRCH: return "ESRCH";
    case ENXIO: return "ENXIO";
    case EFBIG: return "EFBIG";
    case ELOOP: return "ELOOP";
    case EXDEV: return "EXDEV";
    case EMLINK: return "EMLINK";
    default: return "EUNKNOWN";
  }
}
}  // namespace

void ThrowErrno(Napi::Env env, int err, const std::string& syscall, const std::string& target) {
  std::string message = syscall + " " + target + ": " + std::strerror(err);
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("code", Napi::String::New(env, ErrnoName(err)));
  error.Set("syscall", Napi::String::New(env, syscall));
  error.Set("target", Napi::String::New(env, target));
  error.ThrowAsJavaScriptException();
}

void ThrowArg(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
}

}  // namespace slapos
