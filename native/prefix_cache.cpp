#include "prefix_cache.h"

namespace srf {

PrefixCache::PrefixCache(llama_context* ctx, llama_seq_id firstSeq, int32_t capacity) : ctx_(ctx) {
  for (int32_t i = capacity - 1; i >= 0; --i) freeSeqs_.push_back(firstSeq + i);
}

std::shared_ptr<PrefixEntry> PrefixCache::Find(const std::string& key) {
  auto found = byKey_.find(key);
  if (found == byKey_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, found->second);
  return *found->second;
}

llama_seq_id PrefixCache::ReserveSeq() {
  if (freeSeqs_.empty() && !EvictIdle()) {
    // Every entry is shared by running requests: evict the oldest anyway; its cells live on
    // with its users, and its sequence id is free again.
    if (lru_.empty()) return -1;
    auto entry = lru_.back();
    Drop(entry);
    lru_.pop_back();
  }
  llama_seq_id seq = freeSeqs_.back();
  freeSeqs_.pop_back();
  return seq;
}

void PrefixCache::Insert(std::shared_ptr<PrefixEntry> entry) {
  cells_ += entry->nTokens;
  lru_.push_front(entry);
  byKey_[entry->key] = lru_.begin();
}

void PrefixCache::ReturnSeq(llama_seq_id seq) {
  llama_memory_seq_rm(llama_get_memory(ctx_), seq, -1, -1);
  freeSeqs_.push_back(seq);
}

void PrefixCache::Release(const std::shared_ptr<PrefixEntry>& entry) {
  entry->users--;
  // An evicted entry's cells are freed with its last user's sequence.
  if (entry->seq < 0 && entry->users == 0) cells_ -= entry->nTokens;
}

void PrefixCache::Drop(const std::shared_ptr<PrefixEntry>& entry) {
  llama_memory_seq_rm(llama_get_memory(ctx_), entry->seq, -1, -1);
  freeSeqs_.push_back(entry->seq);
  entry->seq = -1;
  if (entry->users == 0) cells_ -= entry->nTokens;
  byKey_.erase(entry->key);
}

bool PrefixCache::EvictIdle() {
  for (auto it = lru_.rbegin(); it != lru_.rend(); ++it) {
    if ((*it)->users == 0) {
      auto entry = *it;
      Drop(entry);
      lru_.erase(std::next(it).base());
      return true;
    }
  }
  return false;
}

int64_t PrefixCache::IdleCells() const {
  int64_t cells = 0;
  for (auto& entry : lru_) cells += entry->users == 0 ? entry->nTokens : 0;
  return cells;
}

void PrefixCache::Clear() {
  while (!lru_.empty()) {
    auto entry = lru_.back();
    Drop(entry);
    lru_.pop_back();
  }
}

}  // namespace srf
