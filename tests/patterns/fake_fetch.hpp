// An in-process Fetch for tests: each call's behaviour comes from its URL
// ("fake:/x?delay_ms=50&status=503&ignore_stop=1"), and a shared FakeStats
// plays the role of the mock's /__stats.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "orchlab/census.hpp"
#include "orchlab/pattern.hpp"

namespace orchlab::testing {

/// What the fake service saw.
struct FakeStats {
  std::atomic<int> requests{0};
  std::atomic<int> completed{0};
  std::atomic<int> aborts{0};  ///< calls that returned cancelled: the stop reached the "service"
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
};

/// Integer query parameter `key` of `url`, or `fallback`.
inline int query_int(const std::string& url, const std::string& key, int fallback) {
  for (char sep : {'?', '&'}) {
    const auto at = url.find(sep + key + "=");
    if (at != std::string::npos) return std::stoi(url.substr(at + key.size() + 2));
  }
  return fallback;
}

/// A call to the fake service: answers `status` after `delay_ms`, honouring
/// the stop token unless `ignore_stop`.
inline Call fake_call(int delay_ms, int status = 200, bool ignore_stop = false) {
  return {"fake:/call?delay_ms=" + std::to_string(delay_ms) + "&status=" + std::to_string(status) +
          "&ignore_stop=" + (ignore_stop ? "1" : "0")};
}

/// The Fetch; it records completions in the census as the HTTP client does.
inline Fetch fake_fetch(std::shared_ptr<FakeStats> stats) {
  return [stats](const Call& call, std::stop_token stop) -> Reply {
    const auto delay = std::chrono::milliseconds(query_int(call.url, "delay_ms", 0));
    const int status = query_int(call.url, "status", 200);
    const bool ignore_stop = query_int(call.url, "ignore_stop", 0) != 0;
    stats->requests++;
    const int now = ++stats->in_flight;
    int seen = stats->max_in_flight.load();
    while (now > seen && !stats->max_in_flight.compare_exchange_weak(seen, now)) {
    }
    bool stopped = false;
    if (ignore_stop) {
      std::this_thread::sleep_for(delay);
    } else {
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock lock(m);
      cv.wait_for(lock, stop, delay, [] { return false; });
      stopped = stop.stop_requested();
    }
    stats->in_flight--;
    if (stopped) {
      stats->aborts++;
      return {0, "", ReplyError::cancelled};
    }
    stats->completed++;
    census::note_completion();
    return {status, "fake", status / 100 == 2 ? ReplyError::none : ReplyError::http};
  };
}

}  // namespace orchlab::testing
