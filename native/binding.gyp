{
  "targets": [
    {
      "target_name": "berth_native",
      "sources": ["berth_native.c", "stdio_relay.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra"],
      "cflags_c": ["-std=gnu11"],
      "libraries": ["-lm", "-pthread"]
    }
  ]
}
