#include "kv_budget.h"

namespace srf {
namespace {

// KV cells kept free of any reservation: llama.cpp may not be able to use every last cell.
constexpr int64_t kCellSlack = 16;

}  // namespace

KvBudget::KvBudget(int64_t contextCells, int32_t streamCells, PrefixCache& prefixes)
    : budget_(contextCells - kCellSlack), streamCells_(streamCells), prefixes_(prefixes) {}

KvBudget::Decision KvBudget::Admit(int64_t own, int64_t prefixTokens, bool prefixCached, bool othersRunning) {
  if (streamCells_ > 0) {
    // Per sequence: the request's stream holds a copy of its prefix and the request; it never grows.
    if (prefixTokens + own <= streamCells_ - kCellSlack) return {};
    return {Verdict::kNever, "the image prefix and the request need " + std::to_string(prefixTokens + own) + " KV cells but each sequence holds " +
                                 std::to_string(streamCells_) + " (contextSize / (parallel + prefixCache)): raise contextSize or lower maxTokens"};
  }
  const int64_t need = own + (prefixCached ? 0 : prefixTokens);
  if (need > budget_) {
    return {Verdict::kNever, "the request needs " + std::to_string(need) + " KV cells (image prefix " + std::to_string(prefixTokens) +
                                 ", prompt and maxTokens " + std::to_string(own) + ") but the context holds " + std::to_string(budget_) +
                                 ": raise contextSize or lower maxTokens"};
  }
  if (MakeRoom(need)) return {};
  // Running requests free their cells as they finish; with none running nothing would change.
  if (othersRunning) return {Verdict::kWait, ""};
  return {Verdict::kNever, "the request needs " + std::to_string(need) + " KV cells but only " + std::to_string(budget_ - Reserved()) +
                               " are free: raise contextSize"};
}

// Makes `cells` KV cells free in the unified pool, evicting idle cached prefixes only when that
// frees enough: evicting them for nothing would cost the next request on their image its prefix.
bool KvBudget::MakeRoom(int64_t cells) {
  if (Reserved() + cells <= budget_) return true;
  if (Reserved() - prefixes_.IdleCells() + cells > budget_) return false;
  while (Reserved() + cells > budget_ && prefixes_.EvictIdle()) {
  }
  return Reserved() + cells <= budget_;
}

}  // namespace srf
