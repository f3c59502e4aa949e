// What happens when llama.cpp or ggml gives up (GGML_ABORT: a CUDA error, a failed assertion):
// ggml calls abort() right after its abort callback, so the process ends whatever srf-native does.
// The callback installed here makes that end tell what it can: which engine (device) it happened
// on, what to do next, and, through a hook the addon sets, asks the JS thread to write out what is
// still buffered (the journal's last lines) and waits for it, briefly, before ggml aborts.
#pragma once
#include <functional>
#include <string>

namespace srf {

// Installs the callback once per process.
void InstallFatalAbortHandler();

// A JS environment's "write out what is buffered" hook (one per environment: the main thread, each
// worker); it returns once that is done or given up. Returns the id that removes it.
int AddFatalFlushHook(std::function<void()> hook);
void RemoveFatalFlushHook(int id);

// The calling thread's engine, for the message (an engine's loop thread sets it once).
void SetThreadEngineLabel(const std::string& label);

}  // namespace srf
