// The KV cells of one context, as the engine budgets them before it admits a request. With one
// unified cache the cells are a pool: running requests reserve their prompt and reply, cached
// image prefixes hold theirs (PrefixCache), and idle prefixes are evicted only when that makes
// enough room. With one stream per sequence, a request's stream is fixed and holds a copy of its
// prefix, so only that stream's size matters.
#pragma once
#include <cstdint>
#include <string>

#include "prefix_cache.h"

namespace srf {

class KvBudget {
 public:
  // `streamCells` > 0: one stream of that many cells per sequence (EngineConfig::streamCells).
  KvBudget(int64_t contextCells, int32_t streamCells, PrefixCache& prefixes);

  enum class Verdict { kFits, kWait, kNever };
  struct Decision {
    Verdict verdict = Verdict::kFits;
    std::string message;  // kNever: what the request's CONTEXT_TOO_SMALL error says
  };
  // Whether a request reserving `own` cells (its prompt and maxTokens) on an image prefix of
  // `prefixTokens` (new unless `prefixCached`) can start now, evicting idle prefixes when that
  // makes room. With `othersRunning` a request that does not fit yet waits for them to finish.
  Decision Admit(int64_t own, int64_t prefixTokens, bool prefixCached, bool othersRunning);
  // A started request's cells, held until it ends.
  void Reserve(int64_t cells) { requestCells_ += cells; }
  void Release(int64_t cells) { requestCells_ -= cells; }

 private:
  int64_t Reserved() const { return prefixes_.CellsInUse() + requestCells_; }
  bool MakeRoom(int64_t cells);

  int64_t budget_;  // the context's cells less a slack llama.cpp may not be able to use
  int32_t streamCells_;
  PrefixCache& prefixes_;
  int64_t requestCells_ = 0;
};

}  // namespace srf
