// Persistent tap/tun devices through /dev/net/tun ioctls.
//
// rtnetlink cannot create tun/tap devices ("tun/tap creation via rtnetlink is
// not supported"), so this is the one place where the node needs C++ for the
// network: TUNSETIFF + TUNSETOWNER/TUNSETGROUP + TUNSETPERSIST. Everything
// else about links (bridge, up, addresses) goes through netlink from TS.
#include <fcntl.h>
#include <net/if.h>  // before linux/if_tun.h, which then skips linux/if.h
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include <napi.h>

#include "errors.h"

namespace slapos {
namespace {

const char kDefaultDevice[] = "/dev/net/tun";

struct TapArgs {
  std::string name;
  bool tun = false;  // IFF_TUN (layer 3) instead of IFF_TAP (layer 2)
  std::string device = kDefaultDevice;
};

// Reads name + {type, device} from (name, options?) and validates them.
bool ParseTapArgs(const Napi::CallbackInfo& info, TapArgs* out) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    ThrowArg(env, "device name must be a string");
    return false;
  }
  out->name = info[0].As<Napi::String>().Utf8Value();
  if (out->name.empty() || out->name.size() >= IFNAMSIZ) {
    ThrowArg(env, "device name '" + out->name + "' must be 1 to " + std::to_string(IFNAMSIZ - 1) + " bytes");
    return false;
  }
  if (out->name.find_first_of("/ \t\n:%") != std::string::npos) {
    ThrowArg(env, "device name '" + out->name + "' contains a character not allowed in an interface name");
    return false;
  }
  if (info.Length() >= 2 && info[1].IsObject()) {
    Napi::Object opts = info[1].As<Napi::Object>();
    if (opts.Has("type")) {
      std::string type = opts.Get("type").ToString().Utf8Value();
      if (type != "tap" && type != "tun") {
        ThrowArg(env, "type must be 'tap' or 'tun', got '" + type + "'");
        return false;
      }
      out->tun = type == "tun";
    }
    if (opts.Has("device") && opts.Get("device").IsString()) {
      out->device = opts.Get("device").As<Napi::String>().Utf8Value();
    }
  }
  return true;
}

// Opens the clone device and attaches to (or creates) the named interface.
// Returns the fd, or -1 with a pending JS exception.
int Attach(Napi::Env env, const TapArgs& args) {
  int fd = open(args.device.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    ThrowErrno(env, errno, "open", args.device);
    return -1;
  }
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = (args.tun ? IFF_TUN : IFF_TAP) | IFF_NO_PI;
  std::strncpy(ifr.ifr_name, args.name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, err, "TUNSETIFF", args.name);
    return -1;
  }
  return fd;
}

bool Ioctl(Napi::Env env, int fd, unsigned long request, unsigned long value, const char* what,
           const std::string& name) {
  if (ioctl(fd, request, value) < 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, err, what, name);
    return false;
  }
  return true;
}

long ReadSysfsNumber(const std::string& path, int base) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text)) return -2;  // not there
  try {
    return std::stol(text, nullptr, base);
  } catch (...) {
    return -2;
  }
}

// createTap(name, {type, uid, gid?, device?}) → name
// Creates the device if needed, (re)sets owner and group, makes it persistent.
// Idempotent: on an existing persistent device it only re-applies ownership.
Napi::Value CreateTap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TapArgs args;
  if (!ParseTapArgs(info, &args)) return env.Undefined();
  Napi::Object opts = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  if (!opts.Has("uid") || !opts.Get("uid").IsNumber()) {
    ThrowArg(env, "uid (a number) is required to create " + args.name);
    return env.Undefined();
  }
  int64_t uid = opts.Get("uid").As<Napi::Number>().Int64Value();
  int64_t gid = opts.Has("gid") && opts.Get("gid").IsNumber() ? opts.Get("gid").As<Napi::Number>().Int64Value() : -1;
  if (uid < 0 || uid > 0xfffffffeLL || gid < -1 || gid > 0xfffffffeLL) {
    ThrowArg(env, "uid/gid out of range for " + args.name);
    return env.Undefined();
  }
  int fd = Attach(env, args);
  if (fd < 0) return env.Undefined();
  if (!Ioctl(env, fd, TUNSETOWNER, static_cast<unsigned long>(uid), "TUNSETOWNER", args.name)) return env.Undefined();
  if (gid >= 0 && !Ioctl(env, fd, TUNSETGROUP, static_cast<unsigned long>(gid), "TUNSETGROUP", args.name))
    return env.Undefined();
  if (!Ioctl(env, fd, TUNSETPERSIST, 1, "TUNSETPERSIST", args.name)) return env.Undefined();
  close(fd);
  return Napi::String::New(env, args.name);
}

// deleteTap(name, {type?, device?}) → true if it existed.
// Attaching then clearing TUNSETPERSIST makes the kernel drop the device when
// the fd closes. A missing device is not an error (idempotent).
Napi::Value DeleteTap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TapArgs args;
  if (!ParseTapArgs(info, &args)) return env.Undefined();
  if (if_nametoindex(args.name.c_str()) == 0) return Napi::Boolean::New(env, false);
  int fd = Attach(env, args);
  if (fd < 0) return env.Undefined();
  if (!Ioctl(env, fd, TUNSETPERSIST, 0, "TUNSETPERSIST", args.name)) return env.Undefined();
  close(fd);
  return Napi::Boolean::New(env, true);
}

// tapInfo(name) → {owner, group, type, persist} or null when there is no such
// tun/tap device. owner/group are -1 when unset. Read from sysfs, which the
// tun driver fills for its devices (under `ip netns exec`, sysfs is the netns').
Napi::Value TapInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TapArgs args;
  if (!ParseTapArgs(info, &args)) return env.Undefined();
  const std::string base = "/sys/class/net/" + args.name + "/";
  long flags = ReadSysfsNumber(base + "tun_flags", 16);
  if (flags == -2) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("owner", Napi::Number::New(env, static_cast<double>(ReadSysfsNumber(base + "owner", 10))));
  out.Set("group", Napi::Number::New(env, static_cast<double>(ReadSysfsNumber(base + "group", 10))));
  out.Set("type", Napi::String::New(env, (flags & IFF_TUN) ? "tun" : "tap"));
  out.Set("persist", Napi::Boolean::New(env, (flags & IFF_PERSIST) != 0));
  return out;
}

// openTap(name, {type?, device?}) → fd. Attaches to an existing device as the
// calling user; the kernel refuses (EPERM) a user who is neither its owner nor
// in its group. The caller closes the fd (fs.closeSync).
Napi::Value OpenTap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TapArgs args;
  if (!ParseTapArgs(info, &args)) return env.Undefined();
  if (if_nametoindex(args.name.c_str()) == 0) {
    ThrowErrno(env, ENODEV, "if_nametoindex", args.name);
    return env.Undefined();
  }
  int fd = Attach(env, args);
  if (fd < 0) return env.Undefined();
  return Napi::Number::New(env, fd);
}

}  // namespace

void InitTap(Napi::Env env, Napi::Object exports) {
  exports.Set("createTap", Napi::Function::New(env, CreateTap, "createTap"));
  exports.Set("deleteTap", Napi::Function::New(env, DeleteTap, "deleteTap"));
  exports.Set("tapInfo", Napi::Function::New(env, TapInfo, "tapInfo"));
  exports.Set("openTap", Napi::Function::New(env, OpenTap, "openTap"));
}

}  // namespace slapos
