// The engine's one clock, for the stats' and the trace's durations.
#pragma once
#include <chrono>
#include <cstdint>

namespace srf {

using Clock = std::chrono::steady_clock;

inline uint64_t MicrosSince(Clock::time_point start) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
}

}  // namespace srf
