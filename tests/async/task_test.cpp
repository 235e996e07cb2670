// Task and UseTask (patterns/async/task.hpp), the coroutine machinery under
// Group: values and exceptions through nested Tasks, resumption on the
// group's strand whatever executor an operation completes on, cancellation
// through the Stop's slot, and the frame memory's free lists.
#include "async/task.hpp"

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "async/group.hpp"

namespace orchlab::async {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Suspends on a timer before it answers, so its awaiter really is resumed.
Task<int> four_later(Stop stop) {
  asio::steady_timer timer(stop.executor(), 5ms);
  auto [ec] = co_await timer.async_wait(stop.token());
  co_return ec ? -1 : 4;
}

Task<int> throws_later(Stop stop) {
  co_await asio::post(stop.executor(), stop.token());
  throw std::runtime_error("from below");
  co_return 0;
}

TEST(TaskTest, NestedTasksHandTheirValueAndTheirExceptionToTheAwaiter) {
  Runtime runtime(2);
  const Outcome out = run_group(runtime, 10s, Policy::collect_all, [&](Group& g) {
    g.go([](Stop stop) -> Task<Reply> {
      const int v = co_await four_later(stop);
      co_return Reply{200 + v, {}, ReplyError::none};
    });
    g.go([](Stop stop) -> Task<Reply> {
      std::string what;
      try {
        (void)co_await throws_later(stop);
      } catch (const std::runtime_error& e) {
        what = e.what();
      }
      co_return Reply{200, what, ReplyError::none};
    });
  });
  ASSERT_EQ(out.slots.size(), 2u);
  ASSERT_TRUE(out.slots[0].has_value());
  EXPECT_EQ(out.slots[0]->status, 204);
  ASSERT_TRUE(out.slots[1].has_value());
  EXPECT_EQ(out.slots[1]->body, "from below");
}

// The handler's associated executor is the strand: an operation of another
// executor (here a post to the bare io_context) still resumes the call on
// its group's strand, where Stop and the group's state may be touched.
TEST(TaskTest, AnOperationResumesTheCallOnItsStrand) {
  Runtime runtime(2);
  asio::io_context& ioc = runtime.context();
  const Outcome out = run_group(runtime, 10s, Policy::collect_all, [&](Group& g) {
    for (int i = 0; i < 8; ++i) {
      g.go([&ioc](Stop stop) -> Task<Reply> {
        int on_strand = 0;
        for (int k = 0; k < 50; ++k) {
          co_await asio::post(ioc.get_executor(), stop.token());
          on_strand += stop.executor().running_in_this_thread() ? 1 : 0;
        }
        co_return Reply{on_strand == 50 ? 200 : 500, std::to_string(on_strand), ReplyError::none};
      });
    }
  });
  ASSERT_EQ(out.slots.size(), 8u);
  for (const auto& slot : out.slots) {
    ASSERT_TRUE(slot.has_value());
    EXPECT_EQ(slot->status, 200) << "resumed on the strand " << slot->body << " times of 50";
  }
}

// The first error's cancellation reaches the operation a sibling awaits,
// through the slot UseTask binds: its 10 s timer ends at once, aborted.
TEST(TaskTest, TheStopsSlotCancelsTheAwaitedOperation) {
  Runtime runtime(2);
  const auto t0 = Clock::now();
  bool aborted = false;
  const Outcome out = run_group(runtime, 20s, Policy::fail_fast, [&](Group& g) {
    g.go([&aborted](Stop stop) -> Task<Reply> {
      asio::steady_timer timer(stop.executor(), 10s);
      auto [ec] = co_await timer.async_wait(stop.token());
      aborted = ec == asio::error::operation_aborted && stop.requested();
      co_return Reply{0, {}, ReplyError::cancelled};
    });
    g.go([](Stop stop) -> Task<Reply> {
      asio::steady_timer timer(stop.executor(), 20ms);
      (void)co_await timer.async_wait(stop.token());
      co_return Reply{503, {}, ReplyError::http};
    });
  });
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_TRUE(aborted);
  EXPECT_EQ(out.error, "HTTP 503");
}

// A call that needs no I/O runs inside go(): by the time go() returns it has
// answered (the census has its completion), with no post in between.
TEST(TaskTest, ACallThatNeverSuspendsHasFinishedWhenGoReturns) {
  Runtime runtime(2);
  std::vector<int> finished_at_return;
  const Outcome out = run_group(runtime, 10s, Policy::collect_all, [&](Group& g) {
    int answered = 0;
    for (int i = 0; i < 5; ++i) {
      g.go([&answered](Stop) -> Task<Reply> {
        ++answered;
        co_return Reply{200, {}, ReplyError::none};
      });
      finished_at_return.push_back(answered);
    }
  });
  EXPECT_EQ(finished_at_return, (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(out.verdict, Verdict::complete);
}

// A call that cannot even begin (here its callable throws when go() moves
// it into the call's frame; a frame that cannot be allocated is the same) is
// the group's exception: the sibling already running is cancelled, the
// caller gets the exception, and the group does not wait for the call that
// never began (it used to count as outstanding forever).
struct ThrowsWhenMoved {
  ThrowsWhenMoved() = default;
  ThrowsWhenMoved(ThrowsWhenMoved&&) { throw std::runtime_error("cannot move the call"); }
  Task<Reply> operator()(Stop) const { co_return Reply{200, {}, ReplyError::none}; }
};

TEST(TaskTest, ACallThatCannotBeginIsTheGroupsExceptionAndDoesNotHangIt) {
  Runtime runtime(2);
  const auto t0 = Clock::now();
  bool sibling_cancelled = false;
  EXPECT_THROW(run_group(runtime, 20s, Policy::collect_all,
                         [&](Group& g) {
                           g.go([&sibling_cancelled](Stop stop) -> Task<Reply> {
                             asio::steady_timer timer(stop.executor(), 10s);
                             auto [ec] = co_await timer.async_wait(stop.token());
                             sibling_cancelled = ec == asio::error::operation_aborted;
                             co_return Reply{0, {}, ReplyError::cancelled};
                           });
                           g.go(ThrowsWhenMoved{});
                         }),
               std::runtime_error);
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_TRUE(sibling_cancelled);
}

// Every block is its own while it is live, in every size class and above
// them, also when blocks are freed on another thread and then reused.
TEST(FrameMemoryTest, LiveBlocksNeverOverlapAcrossClassesAndThreads) {
  std::vector<std::pair<unsigned char*, std::size_t>> blocks;
  for (int round = 0; round < 3; ++round) {
    for (std::size_t size = 1; size <= 2600; size += 37) {
      auto* p = static_cast<unsigned char*>(detail::frame_allocate(size));
      blocks.emplace_back(p, size);
    }
    for (std::size_t i = 0; i < blocks.size(); ++i)
      std::memset(blocks[i].first, static_cast<int>(i & 0xff), blocks[i].second);
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      for (std::size_t b = 0; b < blocks[i].second; ++b) {
        ASSERT_EQ(blocks[i].first[b], static_cast<unsigned char>(i & 0xff))
            << "block " << i << " of " << blocks[i].second << " bytes overwritten at " << b;
      }
    }
    // Half freed on another thread (into its lists, gone with it), half here.
    const std::size_t half = blocks.size() / 2;
    std::thread([&] {
      for (std::size_t i = 0; i < half; ++i)
        detail::frame_deallocate(blocks[i].first, blocks[i].second);
    }).join();
    for (std::size_t i = half; i < blocks.size(); ++i)
      detail::frame_deallocate(blocks[i].first, blocks[i].second);
    blocks.clear();
  }
}

TEST(FrameMemoryTest, AFreedBlockIsReusedForItsSizeClassOnItsThread) {
  if (!detail::kFrameFreeLists)
    GTEST_SKIP() << "ASan build: frames are plain allocations (task.cpp)";
  void* p = detail::frame_allocate(100);
  detail::frame_deallocate(p, 100);
  void* q = detail::frame_allocate(120);  // the same 128-byte class
  EXPECT_EQ(q, p);
  void* r = detail::frame_allocate(130);  // the next class: not that block
  EXPECT_NE(r, p);
  detail::frame_deallocate(q, 120);
  detail::frame_deallocate(r, 130);
}

}  // namespace
}  // namespace orchlab::async
