{
  "targets": [
    {
      "target_name": "slapos_native",
      "sources": ["native/addon.cc", "native/tap.cc", "native/cgroups.cc", "native/errors.cc", "native/passwd.cc", "native/safefs.cc", "native/pidfd.cc", "native/peercred.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions"]
    },
    {
      "target_name": "slapos-launch",
      "type": "executable",
      "sources": ["native/launch.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "slapos-buildout-client",
      "type": "executable",
      "sources": ["native/buildout-client.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"]
    }
  ]
}
