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

// The JS side's "write out what is buffered" hook; it returns once that is done (or gave up).
// Empty: nothing to flush.
void SetFatalFlushHook(std::function<void()> hook);

// The calling thread's engine, for the message (an engine's loop thread sets it once).
void SetThreadEngineLabel(const std::string& label);

}  // namespace srf
