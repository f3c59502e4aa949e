// A small fixed pool of threads for the batching loop's per-row host work (sampling a step's rows):
// ForEach(n, fn) runs fn(0) .. fn(n-1) on the pool and the calling thread and returns when all are
// done. Which thread runs which index is not fixed, so fn(i) must touch only what belongs to i.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace srf {

class WorkerPool {
 public:
  // `threads` counts the caller: 1 = no extra thread, everything runs inline.
  explicit WorkerPool(int32_t threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Rethrows the first exception an fn(i) threw, once every index has run.
  void ForEach(size_t n, const std::function<void(size_t)>& fn);

  // Threads for a pool sized to this machine: its cores, at most `cap`.
  static int32_t DefaultThreads(int32_t cap = 16);

 private:
  void Work();
  void Drain();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  size_t busy_ = 0;  // workers still inside the current generation
  const std::function<void(size_t)>* fn_ = nullptr;
  size_t n_ = 0;
  std::atomic<size_t> next_{0};
  std::exception_ptr error_;
};

}  // namespace srf
