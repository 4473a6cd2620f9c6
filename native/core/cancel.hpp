// Cooperative cancellation: JS AbortSignal -> CancelToken::cancel(); long native loops call check().
#pragma once
#include <atomic>
#include <memory>
#include "core/error.hpp"

namespace fg {

class CancelToken {
 public:
  void cancel() { flag_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return flag_.load(std::memory_order_relaxed); }
  void check(const char* where = "operation") const {
    if (cancelled()) fail(ErrorCode::Cancelled, std::string(where) + " was cancelled");
  }

 private:
  std::atomic<bool> flag_{false};
};

using CancelTokenPtr = std::shared_ptr<CancelToken>;

}  // namespace fg
