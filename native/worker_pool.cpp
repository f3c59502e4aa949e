#include "worker_pool.h"

#include <algorithm>

namespace srf {

int32_t WorkerPool::DefaultThreads(int32_t cap) {
  const unsigned cores = std::thread::hardware_concurrency();
  return std::max<int32_t>(1, std::min<int32_t>(cap, cores == 0 ? 1 : static_cast<int32_t>(cores)));
}

WorkerPool::WorkerPool(int32_t threads) {
  for (int32_t i = 1; i < threads; ++i) workers_.emplace_back([this] { Work(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

// Claims indices until none is left; an exception stops nothing but is kept for the caller.
void WorkerPool::Drain() {
  for (;;) {
    const size_t i = next_.fetch_add(1);
    if (i >= n_) return;
    try {
      (*fn_)(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }
}

void WorkerPool::Work() {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    Drain();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busy_ == 0) done_.notify_one();
    }
  }
}

void WorkerPool::ForEach(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  if (workers_.empty() || n == 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = &fn;
    n_ = n;
    next_ = 0;
    error_ = nullptr;
    busy_ = workers_.size();
    generation_++;
  }
  wake_.notify_all();
  Drain();
  std::exception_ptr error;
  {
    // Every worker leaves the generation before fn (a caller's local) goes out of scope.
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return busy_ == 0; });
    fn_ = nullptr;
    error = error_;
    error_ = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace srf
