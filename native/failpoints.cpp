#include "failpoints.h"

#include <cstdlib>
#include <sstream>

namespace srf {

Failpoints::Failpoints(int replica) {
  const char* spec = std::getenv("SRF_FAILPOINTS");
  if (!spec || !*spec) return;
  std::stringstream in(spec);
  std::string item;
  while (std::getline(in, item, ',')) {
    const size_t scope = item.find('#');
    if (scope != std::string::npos) {
      if (std::atoi(item.c_str() + scope + 1) != replica) continue;
      item = item.substr(0, scope);
    }
    const size_t at = item.find('@');
    const std::string name = item.substr(0, at);
    const int64_t pass = at == std::string::npos ? 1 : std::atoll(item.c_str() + at + 1);
    if (!name.empty() && pass > 0) armed_[name] = pass;
  }
}

bool Failpoints::HitSlow(const std::string& name) {
  auto found = armed_.find(name);
  if (found == armed_.end() || found->second <= 0) return false;
  return --found->second == 0;
}

}  // namespace srf
