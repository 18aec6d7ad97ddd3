// Control-group primitives: the few system calls the TS layer (src/cgroup)
// builds per-partition groups from, on both the unified (v2) and the hybrid
// (v1 controllers mounted one by one) layouts.
//
// Thin on purpose: which files to write, limits, naming and layout decisions
// are policy and live in TypeScript. What C++ adds over node:fs is
//  - the filesystem magic of a mount point (statfs), to tell v1 from v2;
//  - one write(2) per value, which the cgroup interface requires, with errno,
//    syscall and path on failure (EINVAL for a bad limit, ESRCH for a dead pid);
//  - a bulk read of many small counter files in a single call, so collecting
//    usage for hundreds of partitions does not cost one JS↔libuv trip per file.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include <napi.h>

#include "errors.h"

namespace slapos {
namespace {

constexpr long kCgroup2Magic = 0x63677270;   // CGROUP2_SUPER_MAGIC
constexpr long kCgroup1Magic = 0x27e0eb;     // CGROUP_SUPER_MAGIC
constexpr long kTmpfsMagic = 0x01021994;     // TMPFS_MAGIC (the hybrid layout's /sys/fs/cgroup)
constexpr size_t kMaxRead = 1 << 20;         // counter files are small; cap what one read may return

bool StringArg(const Napi::CallbackInfo& info, size_t i, const char* what, std::string* out) {
  if (info.Length() <= i || !info[i].IsString()) {
    ThrowArg(info.Env(), std::string(what) + " must be a string");
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  if (out->empty() || (*out)[0] != '/') {
    ThrowArg(info.Env(), std::string(what) + " must be an absolute path, got '" + *out + "'");
    return false;
  }
  return true;
}

// fsType(path) → 'cgroup2' | 'cgroup' | 'tmpfs' | 'other'
Napi::Value FsType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!StringArg(info, 0, "path", &path)) return env.Undefined();
  struct statfs st;
  if (statfs(path.c_str(), &st) < 0) {
    ThrowErrno(env, errno, "statfs", path);
    return env.Undefined();
  }
  const char* type = "other";
  if (static_cast<long>(st.f_type) == kCgroup2Magic) type = "cgroup2";
  else if (static_cast<long>(st.f_type) == kCgroup1Magic) type = "cgroup";
  else if (static_cast<long>(st.f_type) == kTmpfsMagic) type = "tmpfs";
  return Napi::String::New(env, type);
}

// makeGroup(path) → true if created, false if it already existed.
Napi::Value MakeGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!StringArg(info, 0, "path", &path)) return env.Undefined();
  if (mkdir(path.c_str(), 0755) == 0) return Napi::Boolean::New(env, true);
  int err = errno;
  struct stat st;
  if (err == EEXIST && stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Napi::Boolean::New(env, false);
  ThrowErrno(env, err, "mkdir", path);
  return env.Undefined();
}

// removeGroup(path) → true if removed, false if it did not exist. A group that
// still has processes (or children) gives EBUSY, reported as an Error.
Napi::Value RemoveGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!StringArg(info, 0, "path", &path)) return env.Undefined();
  if (rmdir(path.c_str()) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  ThrowErrno(env, errno, "rmdir", path);
  return env.Undefined();
}

// writeValue(path, value): a single write(2) of the whole value, as cgroupfs
// expects (one value per write; a pid per write to cgroup.procs).
Napi::Value WriteValue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  if (!StringArg(info, 0, "path", &path)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsString()) {
    ThrowArg(env, "value for " + path + " must be a string");
    return env.Undefined();
  }
  std::string value = info[1].As<Napi::String>().Utf8Value();
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    ThrowErrno(env, errno, "open", path);
    return env.Undefined();
  }
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  if (n < 0) {
    ThrowErrno(env, err, "write", path + " (" + value + ")");
    return env.Undefined();
  }
  if (static_cast<size_t>(n) != value.size()) {
    ThrowErrno(env, EIO, "write", path + " (short write)");
    return env.Undefined();
  }
  return env.Undefined();
}

// readValues(paths[]) → (string | null)[]: the content of each file, null when
// it does not exist (a controller missing on this kernel or layout). Any other
// error throws, naming the file.
Napi::Value ReadValues(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    ThrowArg(env, "paths must be an array of strings");
    return env.Undefined();
  }
  Napi::Array paths = info[0].As<Napi::Array>();
  Napi::Array out = Napi::Array::New(env, paths.Length());
  std::string buffer;
  for (uint32_t i = 0; i < paths.Length(); i++) {
    Napi::Value item = paths.Get(i);
    if (!item.IsString()) {
      ThrowArg(env, "paths[" + std::to_string(i) + "] must be a string");
      return env.Undefined();
    }
    std::string path = item.As<Napi::String>().Utf8Value();
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) {
        out.Set(i, env.Null());
        continue;
      }
      ThrowErrno(env, errno, "open", path);
      return env.Undefined();
    }
    buffer.clear();
    char chunk[4096];
    for (;;) {
      ssize_t n = read(fd, chunk, sizeof chunk);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        close(fd);
        ThrowErrno(env, err, "read", path);
        return env.Undefined();
      }
      if (n == 0) break;
      buffer.append(chunk, static_cast<size_t>(n));
      if (buffer.size() > kMaxRead) {
        close(fd);
        ThrowErrno(env, EFBIG, "read", path);
        return env.Undefined();
      }
    }
    close(fd);
    out.Set(i, Napi::String::New(env, buffer));
  }
  return out;
}

}  // namespace

void InitCgroups(Napi::Env env, Napi::Object exports) {
  exports.Set("cgroupFsType", Napi::Function::New(env, FsType, "cgroupFsType"));
  exports.Set("cgroupMake", Napi::Function::New(env, MakeGroup, "cgroupMake"));
  exports.Set("cgroupRemove", Napi::Function::New(env, RemoveGroup, "cgroupRemove"));
  exports.Set("cgroupWrite", Napi::Function::New(env, WriteValue, "cgroupWrite"));
  exports.Set("cgroupReadValues", Napi::Function::New(env, ReadValues, "cgroupReadValues"));
}

}  // namespace slapos
