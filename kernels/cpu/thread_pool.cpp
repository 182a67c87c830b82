#include "kernels/cpu/thread_pool.h"

#include <algorithm>

namespace tok1d {

ThreadPool::ThreadPool(size_t threads) {
  for (size_t i = 1; i < std::max<size_t>(threads, 1); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  std::unique_lock lock(mutex_);
  while (true) {
    work_ready_.wait(lock, [&] { return stopping_ || generation_ != seen; });
    if (stopping_) return;
    seen = generation_;
    lock.unlock();
    RunChunks();
    lock.lock();
  }
}

void ThreadPool::RunChunks() {
  std::unique_lock lock(mutex_);
  ++active_;
  while (body_ != nullptr && next_ < count_) {
    const size_t begin = next_;
    const size_t end = std::min(count_, begin + chunk_);
    next_ = end;
    const auto* body = body_;
    lock.unlock();
    (*body)(begin, end);
    lock.lock();
  }
  if (--active_ == 0) work_done_.notify_all();
}

void ThreadPool::ParallelFor(size_t count, size_t grain,
                             const std::function<void(size_t, size_t)>& body) {
  if (count == 0) return;
  // About four chunks per thread balances uneven chunks without much locking.
  const size_t chunk = std::max<size_t>({grain, 1, (count + 4 * size() - 1) / (4 * size())});
  if (workers_.empty() || count <= chunk) {
    body(0, count);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    body_ = &body;
    count_ = count;
    chunk_ = chunk;
    next_ = 0;
    ++generation_;
  }
  work_ready_.notify_all();
  RunChunks();
  std::unique_lock lock(mutex_);
  // All chunks are claimed once the caller leaves RunChunks; wait for those still running.
  work_done_.wait(lock, [&] { return active_ == 0; });
  body_ = nullptr;
}

}  // namespace tok1d
