#include "logging.h"

#include <atomic>
#include <cstdio>
#include <deque>
#include <mutex>

#include "ggml.h"
#include "llama.h"
#include "mtmd-helper.h"
#include "mtmd.h"

namespace srf {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kError)};
std::mutex g_printMutex;  // whole lines on stderr
// Per thread: llama.cpp logs on the thread that does the work (a model's loop thread, a load's
// pool thread), so one model's errors are never attached to another's failure, and taking them
// clears nobody else's.
thread_local std::deque<std::string> t_recent;
thread_local std::string t_partial;  // ggml logs a line in pieces (GGML_LOG_LEVEL_CONT)
thread_local int t_partialLevel = GGML_LOG_LEVEL_INFO;

int Rank(ggml_log_level level) {
  switch (level) {
    case GGML_LOG_LEVEL_ERROR: return 1;
    case GGML_LOG_LEVEL_WARN: return 2;
    case GGML_LOG_LEVEL_INFO: return 3;
    default: return 4;
  }
}

void OnLog(ggml_log_level level, const char* text, void*) {
  if (level != GGML_LOG_LEVEL_CONT) {
    t_partial.clear();
    t_partialLevel = level;
  }
  t_partial += text ? text : "";
  const int rank = Rank(static_cast<ggml_log_level>(t_partialLevel));
  if (t_partial.empty() || t_partial.back() != '\n') return;
  std::string line = t_partial.substr(0, t_partial.size() - 1);
  t_partial.clear();
  if (rank <= 2) {
    t_recent.push_back(line);
    if (t_recent.size() > 8) t_recent.pop_front();
  }
  if (rank <= g_level.load()) {
    std::lock_guard<std::mutex> lock(g_printMutex);
    std::fprintf(stderr, "[llama.cpp] %s\n", line.c_str());
  }
}

}  // namespace

void InstallLogger() {
  llama_log_set(OnLog, nullptr);
  mtmd_helper_log_set(OnLog, nullptr);
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

std::string TakeRecentErrors() {
  std::string out;
  for (auto& line : t_recent) {
    if (!out.empty()) out += "; ";
    out += line;
  }
  t_recent.clear();
  return out;
}

}  // namespace srf
