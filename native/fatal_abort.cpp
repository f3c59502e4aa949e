#include "fatal_abort.h"

#include <cstdio>
#include <map>
#include <mutex>

#include "ggml.h"

namespace srf {
namespace {

thread_local std::string t_engineLabel;

std::mutex& HookMutex() {
  static std::mutex m;
  return m;
}

std::map<int, std::function<void()>>& FlushHooks() {
  static std::map<int, std::function<void()>> hooks;
  return hooks;
}

void OnGgmlAbort(const char* message) {
  const std::string where = t_engineLabel.empty() ? "" : " on " + t_engineLabel;
  const std::string text = message ? message : "";
  const bool cuda = text.find("CUDA") != std::string::npos || text.find("cuda") != std::string::npos;
  std::fprintf(stderr, "srf-native: llama.cpp stopped the process%s: %s\n", where.c_str(), text.c_str());
  std::map<int, std::function<void()>> hooks;
  {
    std::lock_guard<std::mutex> lock(HookMutex());
    hooks = FlushHooks();
  }
  for (auto& [id, hook] : hooks) hook();
  std::fprintf(stderr,
               "srf-native: every image finished before this is in the output folder's journal; run the same command "
               "again to resume.%s\n",
               cuda ? " A CUDA error: `srf-native info` says whether this GPU can run the CUDA library that loaded "
                      "(driver, kernels); `nvidia-smi` shows the GPU's state; `--devices` leaves a failing GPU out."
                    : "");
  std::fflush(stderr);
}

}  // namespace

void InstallFatalAbortHandler() {
  static std::once_flag once;
  std::call_once(once, [] { ggml_set_abort_callback(OnGgmlAbort); });
}

int AddFatalFlushHook(std::function<void()> hook) {
  static int next = 0;
  std::lock_guard<std::mutex> lock(HookMutex());
  FlushHooks()[++next] = std::move(hook);
  return next;
}

void RemoveFatalFlushHook(int id) {
  std::lock_guard<std::mutex> lock(HookMutex());
  FlushHooks().erase(id);
}

void SetThreadEngineLabel(const std::string& label) { t_engineLabel = label; }

}  // namespace srf
