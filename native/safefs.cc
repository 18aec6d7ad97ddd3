// Path resolution that never follows a link, for trees a partition or
// software user controls (docs/design.md, "Hostile trees"). Node has no
// openat(): these are the descriptor-relative calls the TypeScript module
// src/safe-fs builds on. openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS) where
// the kernel has it (5.6+), else a walk, one O_NOFOLLOW component at a time.
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <napi.h>

#include "errors.h"

namespace slapos {
namespace {

// -1: unknown yet, 0: ENOSYS seen, 1: works.
int openat2Works = -1;

bool ValidName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos;
}

// Splits a relative path; refuses "..", absolute paths and empty components
// are skipped ("a//b" is "a/b").
bool SplitRelative(const std::string& rel, std::vector<std::string>* parts) {
  if (!rel.empty() && rel[0] == '/') return false;
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    std::string part = rel.substr(start, end - start);
    if (part == "..") return false;
    if (!part.empty() && part != ".") parts->push_back(part);
    start = end + 1;
  }
  return true;
}

// Opens rel beneath dirfd without following any link. Returns fd or -errno.
int OpenBeneath(int dirfd, const std::string& rel, int flags, mode_t mode, bool forceWalk) {
  std::vector<std::string> parts;
  if (!SplitRelative(rel, &parts)) return -EXDEV;
  if (parts.empty()) {
    // The base itself.
    int fd = openat(dirfd, ".", (flags & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_CLOEXEC | O_NOFOLLOW, mode);
    return fd < 0 ? -errno : fd;
  }
  if (!forceWalk && openat2Works != 0) {
    struct open_how how;
    std::memset(&how, 0, sizeof how);
    how.flags = static_cast<unsigned long long>(flags | O_CLOEXEC | O_NOFOLLOW);
    how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    std::string joined;
    for (const auto& p : parts) joined += (joined.empty() ? "" : "/") + p;
    long fd = syscall(SYS_openat2, dirfd, joined.c_str(), &how, sizeof how);
    if (fd >= 0) {
      openat2Works = 1;
      return static_cast<int>(fd);
    }
    int err = errno;
    if (err != ENOSYS) return -err;
    openat2Works = 0;
  }
  // Walk: every intermediate component is a real directory, opened O_NOFOLLOW.
  int current = dirfd;
  for (size_t i = 0; i + 1 < parts.size(); i++) {
    int next = openat(current, parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    if (current != dirfd) close(current);
    if (next < 0) return -err;
    current = next;
  }
  int fd = openat(current, parts.back().c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
  int err = errno;
  if (current != dirfd) close(current);
  return fd < 0 ? -err : fd;
}

int ArgInt(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }
std::string ArgStr(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::String>().Utf8Value(); }

// Checks the argument kinds ("n" number, "s" string); throws a TypeError naming `usage` otherwise.
bool CheckArgs(const Napi::CallbackInfo& info, const char* kinds, const char* usage) {
  size_t n = std::strlen(kinds);
  bool ok = info.Length() >= n;
  for (size_t i = 0; ok && i < n; i++) ok = kinds[i] == 'n' ? info[i].IsNumber() : info[i].IsString();
  if (!ok) ThrowArg(info.Env(), usage);
  return ok;
}

// openBeneath(base: string, rel: string, flags, mode, forceWalk?): fd.
// The base is trusted (configuration: instance_root, a partition's own
// directory whose parent is root's); everything under it is not.
Napi::Value JsOpenBeneath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsString() || !info[2].IsNumber() || !info[3].IsNumber()) {
    ThrowArg(env, "openBeneath(base, rel, flags, mode[, forceWalk])");
    return env.Undefined();
  }
  std::string base = ArgStr(info, 0);
  std::string rel = ArgStr(info, 1);
  bool forceWalk = info.Length() > 4 && info[4].ToBoolean().Value();
  int basefd = open(base.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (basefd < 0) {
    ThrowErrno(env, errno, "open", base);
    return env.Undefined();
  }
  int fd = OpenBeneath(basefd, rel, ArgInt(info, 2), static_cast<mode_t>(ArgInt(info, 3)), forceWalk);
  close(basefd);
  if (fd < 0) {
    ThrowErrno(env, -fd, "openat2", base + "/" + rel);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// openAt(dirfd, name, flags, mode): one component, never a link.
Napi::Value JsOpenAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber() || !info[3].IsNumber()) {
    ThrowArg(env, "openAt(dirfd, name, flags, mode)");
    return env.Undefined();
  }
  std::string name = ArgStr(info, 1);
  if (!ValidName(name)) {
    ThrowErrno(env, EINVAL, "openat", name);
    return env.Undefined();
  }
  int fd = openat(ArgInt(info, 0), name.c_str(), ArgInt(info, 2) | O_NOFOLLOW | O_CLOEXEC, static_cast<mode_t>(ArgInt(info, 3)));
  if (fd < 0) {
    ThrowErrno(env, errno, "openat", name);
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// mkdirAt(dirfd, name, mode): true when created, false when it existed.
Napi::Value JsMkdirAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArgs(info, "nsn", "mkdirAt(dirfd, name, mode)")) return env.Undefined();
  std::string name = ArgStr(info, 1);
  if (!ValidName(name)) {
    ThrowErrno(env, EINVAL, "mkdirat", name);
    return env.Undefined();
  }
  if (mkdirat(ArgInt(info, 0), name.c_str(), static_cast<mode_t>(ArgInt(info, 2))) == 0) return Napi::Boolean::New(env, true);
  if (errno == EEXIST) return Napi::Boolean::New(env, false);
  ThrowErrno(env, errno, "mkdirat", name);
  return env.Undefined();
}

// renameAt(dirfd, from, to): within one directory.
Napi::Value JsRenameAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArgs(info, "nss", "renameAt(dirfd, from, to)")) return env.Undefined();
  std::string from = ArgStr(info, 1), to = ArgStr(info, 2);
  if (!ValidName(from) || !ValidName(to)) {
    ThrowErrno(env, EINVAL, "renameat", from + " -> " + to);
    return env.Undefined();
  }
  int fd = ArgInt(info, 0);
  if (renameat(fd, from.c_str(), fd, to.c_str()) != 0) ThrowErrno(env, errno, "renameat", from + " -> " + to);
  return env.Undefined();
}

// unlinkAt(dirfd, name, isDir): false when it was absent.
Napi::Value JsUnlinkAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArgs(info, "ns", "unlinkAt(dirfd, name, isDir)")) return env.Undefined();
  std::string name = ArgStr(info, 1);
  if (!ValidName(name)) {
    ThrowErrno(env, EINVAL, "unlinkat", name);
    return env.Undefined();
  }
  if (unlinkat(ArgInt(info, 0), name.c_str(), info[2].ToBoolean().Value() ? AT_REMOVEDIR : 0) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  ThrowErrno(env, errno, "unlinkat", name);
  return env.Undefined();
}

const char* TypeName(unsigned char type) {
  switch (type) {
    case DT_REG: return "file";
    case DT_DIR: return "directory";
    case DT_LNK: return "symlink";
    case DT_FIFO: return "fifo";
    case DT_SOCK: return "socket";
    case DT_CHR: case DT_BLK: return "device";
    default: return "unknown";
  }
}

unsigned char ModeType(mode_t mode) {
  if (S_ISREG(mode)) return DT_REG;
  if (S_ISDIR(mode)) return DT_DIR;
  if (S_ISLNK(mode)) return DT_LNK;
  if (S_ISFIFO(mode)) return DT_FIFO;
  if (S_ISSOCK(mode)) return DT_SOCK;
  if (S_ISCHR(mode)) return DT_CHR;
  if (S_ISBLK(mode)) return DT_BLK;
  return DT_UNKNOWN;
}

// Reads the entries of an open directory (dup'ed: the caller keeps its fd).
// Returns false with errno set on failure.
bool ListFd(int dirfd, std::vector<std::pair<std::string, unsigned char>>* out) {
  int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    close(fd);
    errno = err;
    return false;
  }
  errno = 0;
  while (struct dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    unsigned char type = entry->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st;
      if (fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) type = ModeType(st.st_mode);
    }
    out->emplace_back(name, type);
  }
  int err = errno;
  closedir(dir);
  errno = err;
  return err == 0;
}

// listAt(dirfd): [{ name, type }].
Napi::Value JsListAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArgs(info, "n", "listAt(dirfd)")) return env.Undefined();
  std::vector<std::pair<std::string, unsigned char>> entries;
  if (!ListFd(ArgInt(info, 0), &entries)) {
    ThrowErrno(env, errno, "readdir", "fd " + std::to_string(ArgInt(info, 0)));
    return env.Undefined();
  }
  Napi::Array result = Napi::Array::New(env, entries.size());
  for (size_t i = 0; i < entries.size(); i++) {
    Napi::Object item = Napi::Object::New(env);
    item.Set("name", entries[i].first);
    item.Set("type", TypeName(entries[i].second));
    result.Set(static_cast<uint32_t>(i), item);
  }
  return result;
}

// The mount a descriptor is on: statx's mount id (5.8+), else the device.
bool MountOf(int fd, const char* name, unsigned long long* id) {
  struct statx sx;
  if (statx(fd, name, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH, STATX_MNT_ID, &sx) != 0) return false;
  if (sx.stx_mask & STATX_MNT_ID) {
    *id = sx.stx_mnt_id;
  } else {
    *id = (static_cast<unsigned long long>(sx.stx_dev_major) << 32) | sx.stx_dev_minor;
  }
  return true;
}

struct RemoveState {
  std::vector<std::string> skipped;  // mount points left in place
  int err = 0;
  std::string where;
};

// One directory being emptied: its identity (to check the way back up),
// the sub-directories still to enter, and its path for messages.
struct Level {
  dev_t dev;
  ino_t ino;
  std::vector<std::string> pending;
  std::string where;
  std::string name;  // its entry name in the level above
};

// Removes the non-directory entries of dirfd; fills level->pending with its
// sub-directories. false with state set on an error.
bool ClearFiles(int dirfd, Level* level, RemoveState* state) {
  std::vector<std::pair<std::string, unsigned char>> entries;
  if (!ListFd(dirfd, &entries)) {
    state->err = errno;
    state->where = level->where;
    return false;
  }
  for (const auto& [name, type] : entries) {
    if (type == DT_DIR) {
      level->pending.push_back(name);
    } else if (unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) {
      if (errno == EBUSY) {
        state->skipped.push_back(level->where + "/" + name);
        continue;
      }
      state->err = errno;
      state->where = level->where + "/" + name;
      return false;
    }
  }
  return true;
}

// Empties the directory open at topfd (path `where` for messages) without
// following links and without entering another mount. Iterative, with one
// open descriptor at a time whatever the depth: it goes down by openat
// (O_NOFOLLOW) and back up by "..", checking that ".." is the directory it
// came from (device and inode): a directory moved elsewhere meanwhile stops
// the removal with EXDEV instead of leading it out of the tree. Memory is
// proportional to the pending sub-directory names, not to open files.
void EmptyDir(int topfd, unsigned long long mount, const std::string& where, RemoveState* state) {
  int fd = openat(topfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    state->err = errno;
    state->where = where;
    return;
  }
  std::vector<Level> stack;
  auto enter = [&](int dirfd, const std::string& path, const std::string& name) -> bool {
    struct stat st;
    if (fstat(dirfd, &st) != 0) {
      state->err = errno;
      state->where = path;
      return false;
    }
    stack.push_back(Level{st.st_dev, st.st_ino, {}, path, name});
    return ClearFiles(dirfd, &stack.back(), state);
  };
  if (!enter(fd, where, "")) {
    close(fd);
    return;
  }
  while (!stack.empty()) {
    Level& level = stack.back();
    if (!level.pending.empty()) {
      std::string name = level.pending.back();
      level.pending.pop_back();
      std::string path = level.where + "/" + name;
      int child = openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child < 0) {
        if (errno == ENOENT) continue;
        if (errno == ENOTDIR || errno == ELOOP) {  // replaced by a file or link meanwhile: the name goes
          if (unlinkat(fd, name.c_str(), 0) == 0 || errno == ENOENT) continue;
        }
        state->err = errno;
        state->where = path;
        break;
      }
      unsigned long long childMount = 0;
      if (!MountOf(child, "", &childMount) || childMount != mount) {
        close(child);
        state->skipped.push_back(path);
        continue;
      }
      close(fd);
      fd = child;
      if (!enter(fd, path, name)) break;
      continue;
    }
    // This level is empty (but for skipped mount points): back up, remove it.
    if (stack.size() == 1) break;
    std::string name = level.name;
    std::string path = level.where;
    stack.pop_back();
    int parent = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    if (parent < 0 || fstat(parent, &st) != 0 || st.st_dev != stack.back().dev || st.st_ino != stack.back().ino) {
      state->err = parent < 0 ? errno : EXDEV;
      state->where = path + " (moved during removal)";
      if (parent >= 0) close(parent);
      break;
    }
    close(fd);
    fd = parent;
    if (unlinkat(fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST) {
      state->err = errno;
      state->where = path;
      break;
    }
  }
  close(fd);
}

// removeTreeBeneath(base, rel, keepTop): removes rel (or only its content
// with keepTop) without following links or crossing mounts. Returns the
// mount points it left in place.
Napi::Value JsRemoveTreeBeneath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArgs(info, "ss", "removeTreeBeneath(base, rel, keepTop)")) return env.Undefined();
  std::string base = ArgStr(info, 0), rel = ArgStr(info, 1);
  bool keepTop = info.Length() > 2 && info[2].ToBoolean().Value();
  std::vector<std::string> parts;
  if (!SplitRelative(rel, &parts) || (parts.empty() && !keepTop)) {
    ThrowErrno(env, EINVAL, "removeTree", base + "/" + rel);
    return env.Undefined();
  }
  int basefd = open(base.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (basefd < 0) {
    ThrowErrno(env, errno, "open", base);
    return env.Undefined();
  }
  Napi::Array skippedOut = Napi::Array::New(env);
  std::string parentRel;
  for (size_t i = 0; i + 1 < parts.size(); i++) parentRel += (parentRel.empty() ? "" : "/") + parts[i];
  int parent = OpenBeneath(basefd, parentRel, O_RDONLY | O_DIRECTORY, 0, false);
  close(basefd);
  if (parent < 0) {
    if (-parent == ENOENT) return skippedOut;
    ThrowErrno(env, -parent, "openat2", base + "/" + parentRel);
    return env.Undefined();
  }
  unsigned long long mount = 0;
  if (!MountOf(parent, "", &mount)) {
    int err = errno;
    close(parent);
    ThrowErrno(env, err, "statx", base + "/" + parentRel);
    return env.Undefined();
  }
  RemoveState state;
  std::string where = base + "/" + rel;
  if (parts.empty()) {
    EmptyDir(parent, mount, where, &state);
  } else {
    const std::string& name = parts.back();
    int top = openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (top < 0 && (errno == ENOTDIR || errno == ELOOP)) {
      // A file or a link: only the name goes, never what it points to.
      if (!keepTop && unlinkat(parent, name.c_str(), 0) != 0 && errno != ENOENT) {
        state.err = errno;
        state.where = where;
      }
    } else if (top < 0) {
      if (errno != ENOENT) {
        state.err = errno;
        state.where = where;
      }
    } else {
      unsigned long long topMount = 0;
      if (!MountOf(top, "", &topMount) || topMount != mount) {
        state.skipped.push_back(where);
        if (keepTop) EmptyDir(top, topMount, where, &state);
      } else {
        EmptyDir(top, mount, where, &state);
        if (state.err == 0 && !keepTop && state.skipped.empty() && unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
          state.err = errno;
          state.where = where;
        }
      }
      close(top);
    }
  }
  close(parent);
  if (state.err != 0) {
    ThrowErrno(env, state.err, "remove", state.where);
    return env.Undefined();
  }
  for (size_t i = 0; i < state.skipped.size(); i++) skippedOut.Set(static_cast<uint32_t>(i), state.skipped[i]);
  return skippedOut;
}

// fsyncDir is fsync on any fd; Node's fsyncSync works on numbers. The flags
// Node's fs.constants lacks:
void SetConstants(Napi::Env env, Napi::Object exports) {
  Napi::Object c = Napi::Object::New(env);
  c.Set("O_PATH", O_PATH);
  c.Set("O_DIRECTORY", O_DIRECTORY);
  c.Set("O_NOFOLLOW", O_NOFOLLOW);
  c.Set("O_NONBLOCK", O_NONBLOCK);
  c.Set("O_CLOEXEC", O_CLOEXEC);
  c.Set("O_NOCTTY", O_NOCTTY);
  exports.Set("safeFsConstants", c);
}

}  // namespace

void InitSafeFs(Napi::Env env, Napi::Object exports) {
  exports.Set("openBeneath", Napi::Function::New(env, JsOpenBeneath, "openBeneath"));
  exports.Set("openAt", Napi::Function::New(env, JsOpenAt, "openAt"));
  exports.Set("mkdirAt", Napi::Function::New(env, JsMkdirAt, "mkdirAt"));
  exports.Set("renameAt", Napi::Function::New(env, JsRenameAt, "renameAt"));
  exports.Set("unlinkAt", Napi::Function::New(env, JsUnlinkAt, "unlinkAt"));
  exports.Set("listAt", Napi::Function::New(env, JsListAt, "listAt"));
  exports.Set("removeTreeBeneath", Napi::Function::New(env, JsRemoveTreeBeneath, "removeTreeBeneath"));
  SetConstants(env, exports);
}

}  // namespace slapos
