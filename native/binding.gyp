{
  "targets": [
    {
      "target_name": "berth_native",
      "sources": ["berth_native.c", "gunzip.c", "log_ndjson.c", "memory.cc", "spawn.c", "stdio_relay.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-Wall", "-Wextra"],
      "cflags_c": ["-std=gnu11"],
      "libraries": ["-lm", "-pthread", "-lisal"]
    },
    {
      "target_name": "berth-pause",
      "type": "executable",
      "sources": ["pause.c"],
      "cflags": ["-Wall", "-Wextra", "-Os"],
      "cflags_c": ["-std=gnu11"],
      "ldflags": ["-static", "-s"]
    }
  ]
}
