// Entry point of the slapos_native addon: each source file registers its own
// functions. The addon is deliberately thin (see docs/design.md): system calls,
// argument checks, errno → Error. Policy lives in TypeScript.
#include <napi.h>

namespace slapos {
void InitTap(Napi::Env env, Napi::Object exports);
void InitCgroups(Napi::Env env, Napi::Object exports);
void InitPasswd(Napi::Env env, Napi::Object exports);
void InitSafeFs(Napi::Env env, Napi::Object exports);
void InitPidfd(Napi::Env env, Napi::Object exports);
void InitPeerCred(Napi::Env env, Napi::Object exports);
}  // namespace slapos

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  slapos::InitTap(env, exports);
  slapos::InitCgroups(env, exports);
  slapos::InitPasswd(env, exports);
  slapos::InitSafeFs(env, exports);
  slapos::InitPidfd(env, exports);
  slapos::InitPeerCred(env, exports);
  return exports;
}

NODE_API_MODULE(slapos_native, Init)
