// A fixed set of worker threads for data-parallel loops (the CPU backend's element-wise,
// normalisation and attention kernels; matrix products use the BLAS's own threads).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tok1d {

class ThreadPool {
 public:
  // `threads` in total, the calling thread included (so threads − 1 workers are started).
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t size() const { return workers_.size() + 1; }

  // Calls body(begin, end) on disjoint ranges covering [0, count), each at least `grain` long
  // (except the last), from up to size() threads; returns when all calls have returned.
  // Not reentrant: body must not call ParallelFor.
  void ParallelFor(size_t count, size_t grain, const std::function<void(size_t, size_t)>& body);

 private:
  void WorkerLoop();
  void RunChunks();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  // The current job, guarded by mutex_ (chunks are claimed under the lock: they are coarse).
  const std::function<void(size_t, size_t)>* body_ = nullptr;
  size_t count_ = 0;
  size_t chunk_ = 0;
  size_t next_ = 0;
  size_t active_ = 0;        // threads inside RunChunks
  uint64_t generation_ = 0;  // incremented per job so sleeping workers see new work
  bool stopping_ = false;
};

}  // namespace tok1d
