// V8's LowMemoryNotification, which N-API does not offer: full collections until nothing more is
// freed, with the heap's free pages and the young generation's spare capacity handed back to the
// kernel. The JS-reachable gc() frees objects but keeps the pages (berthd's RSS stayed ~6 MiB
// higher after a pull). Called on the JS thread, from a N-API callback.
#include <v8.h>

extern "C" void berth_low_memory_notification(void) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->LowMemoryNotification();
}
