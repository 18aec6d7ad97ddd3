// The kernel's identity of a unix-socket peer (SO_PEERCRED): the master's
// unix-socket listener knows its caller by uid without trusting anything the
// caller says. Credentials are those of the process that connected, taken at
// connect() time by the kernel.
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

// One NETLINK_SOCK_DIAG exact lookup (no dump): the uid owning the TCP socket
// whose local end is (src, sport) and remote end (dst, dport), in this
// network namespace. -1 when there is no such socket; throws on other errors.
// Costs one round trip to the kernel whatever the number of sockets, where
// reading /proc/net/tcp{,6} formats the whole table (10–16 ms per connection
// on a busy master, docs/performance.md).
int TcpSocketUid(int family, const void* src, int sport, const void* dst, int dport) {
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return -2 - errno;
  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 req;
  } msg {};
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST;
  msg.req.sdiag_family = static_cast<__u8>(family);
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = ~0U;
  msg.req.id.idiag_sport = htons(static_cast<uint16_t>(sport));
  msg.req.id.idiag_dport = htons(static_cast<uint16_t>(dport));
  std::memcpy(msg.req.id.idiag_src, src, family == AF_INET ? 4 : 16);
  std::memcpy(msg.req.id.idiag_dst, dst, family == AF_INET ? 4 : 16);
  msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  struct sockaddr_nl kernel {};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, &msg, sizeof msg, 0, reinterpret_cast<struct sockaddr*>(&kernel), sizeof kernel) < 0) {
    int e = errno;
    close(fd);
    return -2 - e;
  }
  alignas(struct nlmsghdr) char buf[8192];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  int e = errno;
  close(fd);
  if (n < 0) return -2 - e;
  auto* h = reinterpret_cast<struct nlmsghdr*>(buf);
  if (!NLMSG_OK(h, static_cast<unsigned>(n))) return -2 - EPROTO;
  if (h->nlmsg_type == NLMSG_ERROR) {
    auto* err = static_cast<struct nlmsgerr*>(NLMSG_DATA(h));
    return err->error == -ENOENT ? -1 : -2 - (-err->error);
  }
  if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) return -2 - EPROTO;
  return static_cast<int>(static_cast<struct inet_diag_msg*>(NLMSG_DATA(h))->idiag_uid);
}

// tcpSocketUid(localAddress, localPort, remoteAddress, remotePort) → the uid
// owning that socket, or undefined when none. Addresses as Node spells them;
// an IPv4-mapped IPv6 address is looked up as IPv4 first (the usual client
// socket), then as IPv6.
Napi::Value TcpSocketUidJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsString() || !info[3].IsNumber()) {
    ThrowArg(env, "tcpSocketUid(localAddress, localPort, remoteAddress, remotePort)");
    return env.Undefined();
  }
  std::string local = info[0].As<Napi::String>().Utf8Value();
  std::string remote = info[2].As<Napi::String>().Utf8Value();
  int lport = info[1].As<Napi::Number>().Int32Value();
  int rport = info[3].As<Napi::Number>().Int32Value();
  if (lport <= 0 || lport > 65535 || rport <= 0 || rport > 65535) {
    ThrowArg(env, "ports must be 1..65535");
    return env.Undefined();
  }
  unsigned char l6[16], r6[16];
  struct in_addr l4 {}, r4 {};
  int uid;
  if (inet_pton(AF_INET, local.c_str(), &l4) == 1 && inet_pton(AF_INET, remote.c_str(), &r4) == 1) {
    uid = TcpSocketUid(AF_INET, &l4, lport, &r4, rport);
  } else if (inet_pton(AF_INET6, local.c_str(), l6) == 1 && inet_pton(AF_INET6, remote.c_str(), r6) == 1) {
    uid = -1;
    if (IN6_IS_ADDR_V4MAPPED(reinterpret_cast<struct in6_addr*>(l6)) && IN6_IS_ADDR_V4MAPPED(reinterpret_cast<struct in6_addr*>(r6))) {
      uid = TcpSocketUid(AF_INET, l6 + 12, lport, r6 + 12, rport);
    }
    if (uid == -1) uid = TcpSocketUid(AF_INET6, l6, lport, r6, rport);
  } else {
    ThrowArg(env, "not a pair of IP addresses of one family: " + local + ", " + remote);
    return env.Undefined();
  }
  if (uid == -1) return env.Undefined();
  if (uid < -1) {
    ThrowErrno(env, -2 - uid, "NETLINK_SOCK_DIAG lookup", local + " " + remote);
    return env.Undefined();
  }
  return Napi::Number::New(env, uid);
}

}  // namespace

void InitPeerCred(Napi::Env env, Napi::Object exports) {
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
  exports.Set("tcpSocketUid", Napi::Function::New(env, TcpSocketUidJs, "tcpSocketUid"));
}

}  // namespace slapos
