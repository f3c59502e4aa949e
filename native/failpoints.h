// Failure injection for the tests of the engine's recovery paths (test/17-engine-faults.test.ts):
// what a healthy CPU run cannot produce on demand (llama_decode throwing, a KV cache with no slot
// left) is made to happen at the Nth pass of a named point. Read once from SRF_FAILPOINTS, e.g.
// "step-throw@3,decode-full@5"; "device-lost@4#1" arms a point only in engine replica 1 (the
// replica's index in a multi-device engine; an engine that is no replica takes only unscoped
// points). Unset (always, outside those tests) it costs one branch per check.
#pragma once
#include <cstdint>
#include <map>
#include <string>

namespace srf {

class Failpoints {
 public:
  explicit Failpoints(int replica = -1);
  // True on the configured pass of `name` (once); false otherwise and whenever none are set.
  bool Hit(const char* name) {
    if (armed_.empty()) return false;
    return HitSlow(name);
  }

 private:
  bool HitSlow(const std::string& name);
  std::map<std::string, int64_t> armed_;  // name -> passes left before it fires
};

}  // namespace srf
