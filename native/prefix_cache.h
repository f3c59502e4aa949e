// Image prefixes (system text + image embedding) evaluated once into a KV-cache sequence of their
// own and shared by every request on that image with llama_memory_seq_cp. With a unified KV
// cache, seq_cp only tags cells with the request's sequence: no copy, no extra memory.
//
// An entry's cells stay in use while the entry is cached or any request still shares them, so
// the cache accounts cells per entry with a user count. Bounded by the number of cache sequences;
// the least recently used idle entry is evicted first.
#pragma once
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "llama.h"

namespace srf {

struct PrefixEntry {
  std::string key;
  llama_seq_id seq = -1;  // -1 once evicted from the cache while requests still share its cells
  llama_pos nPast = 0;    // position after the prefix
  int32_t nTokens = 0;    // KV cells it occupies
  int32_t users = 0;      // active requests sharing its cells
};

class PrefixCache {
 public:
  PrefixCache(llama_context* ctx, llama_seq_id firstSeq, int32_t capacity);

  std::shared_ptr<PrefixEntry> Find(const std::string& key);
  // A cache sequence for a new entry, evicting the LRU idle entry if needed; -1 if all are busy.
  llama_seq_id ReserveSeq();
  void Insert(std::shared_ptr<PrefixEntry> entry);
  // Gives back a sequence from ReserveSeq that was not used (its prefix failed to evaluate).
  void ReturnSeq(llama_seq_id seq);
  // A request stops sharing the entry's cells.
  void Release(const std::shared_ptr<PrefixEntry>& entry);
  // Evicts the least recently used entry no request shares, freeing its cells; false if none.
  bool EvictIdle();
  // Drops every cached prefix (e.g. after LoRA adapters changed the weights).
  void Clear();
  // KV cells held by cached entries and by evicted entries still in use.
  int64_t CellsInUse() const { return cells_; }
  // Cells that evicting every idle entry would free.
  int64_t IdleCells() const;
  int32_t Size() const { return static_cast<int32_t>(lru_.size()); }

 private:
  void Drop(const std::shared_ptr<PrefixEntry>& entry);

  llama_context* ctx_;
  std::vector<llama_seq_id> freeSeqs_;
  std::list<std::shared_ptr<PrefixEntry>> lru_;  // front = most recent
  std::unordered_map<std::string, std::list<std::shared_ptr<PrefixEntry>>::iterator> byKey_;
  int64_t cells_ = 0;
};

}  // namespace srf
