// llama.cpp, ggml and mtmd log through one callback: quiet by default (errors only), with the
// recent error lines kept so that a failed load can say why.
#pragma once
#include <string>

namespace srf {

enum class LogLevel { kNone = 0, kError = 1, kWarn = 2, kInfo = 3, kDebug = 4 };

void InstallLogger();
void SetLogLevel(LogLevel level);
// Error/warning lines this thread logged since its last call (cleared on read), joined by "; ".
std::string TakeRecentErrors();

}  // namespace srf
