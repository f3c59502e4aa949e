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
std::mutex g_mutex;
std::deque<std::string> g_recent;
std::string g_partial;  // ggml logs a line in pieces (GGML_LOG_LEVEL_CONT)
int g_partialLevel = GGML_LOG_LEVEL_INFO;

int Rank(ggml_log_level level) {
  switch (level) {
    case GGML_LOG_LEVEL_ERROR: return 1;
    case GGML_LOG_LEVEL_WARN: return 2;
    case GGML_LOG_LEVEL_INFO: return 3;
    default: return 4;
  }
}

void OnLog(ggml_log_level level, const char* text, void*) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (level != GGML_LOG_LEVEL_CONT) {
    g_partial.clear();
    g_partialLevel = level;
  }
  g_partial += text ? text : "";
  const int rank = Rank(static_cast<ggml_log_level>(g_partialLevel));
  if (g_partial.empty() || g_partial.back() != '\n') return;
  std::string line = g_partial.substr(0, g_partial.size() - 1);
  g_partial.clear();
  if (rank <= 2) {
    g_recent.push_back(line);
    if (g_recent.size() > 8) g_recent.pop_front();
  }
  if (rank <= g_level.load()) std::fprintf(stderr, "[llama.cpp] %s\n", line.c_str());
}

}  // namespace

void InstallLogger() {
  llama_log_set(OnLog, nullptr);
  mtmd_helper_log_set(OnLog, nullptr);
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

std::string TakeRecentErrors() {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::string out;
  for (auto& line : g_recent) {
    if (!out.empty()) out += "; ";
    out += line;
  }
  g_recent.clear();
  return out;
}

}  // namespace srf
