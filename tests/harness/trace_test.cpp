// The tracer's parts that need no run: the call table and the path check.
#include "orchlab/harness/trace.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace orchlab::harness::trace {
namespace {

TEST(TraceCallTableTest, ClaimsEachKeyOnceAndFindsIt) {
  CallTable table(4);
  CallSlot* a = table.claim(42);
  ASSERT_NE(a, nullptr);
  a->start_ns.store(7);
  EXPECT_EQ(table.claim(42), nullptr) << "a key twice keeps the first slot";
  EXPECT_EQ(table.claim(0), nullptr) << "0 is no key";
  ASSERT_NE(table.find(42), nullptr);
  EXPECT_EQ(table.find(42)->start_ns.load(), 7);
  EXPECT_EQ(table.find(43), nullptr);
}

TEST(TraceCallTableTest, StopsRecordingPastHalfFull) {
  CallTable table(4);  // 16 slots: 8 calls
  int claimed = 0;
  for (std::uint64_t k = 1; k <= 20; ++k) claimed += table.claim(k) != nullptr;
  EXPECT_LE(claimed, 9);
  EXPECT_GE(claimed, 8);
  for (std::uint64_t k = 1; k <= 8; ++k) EXPECT_NE(table.find(k), nullptr) << k;
}

TEST(TraceCallTableTest, TracedFetchRecordsACall) {
  auto table = std::make_shared<CallTable>(4);
  const Fetch fetch = traced_fetch(
      [](const Call&, std::stop_token) {
        return Reply{503, "", ReplyError::http};
      },
      table);
  Call call;
  call.key = 9;
  EXPECT_EQ(fetch(call, {}).status, 503);
  const CallSlot* slot = table->find(9);
  ASSERT_NE(slot, nullptr);
  EXPECT_GT(slot->start_ns.load(), 0);
  EXPECT_GE(slot->reply_ns.load(), slot->start_ns.load());
  EXPECT_EQ(slot->status.load(), 503);
  EXPECT_EQ(slot->error.load(), static_cast<int>(ReplyError::http));
  forget_pending();
}

TEST(TracePathTest, RefusesADirectoryAndAMissingFolder) {
  EXPECT_THROW(check_path("/tmp"), std::invalid_argument);
  EXPECT_THROW(check_path("/nonexistent-orchlab-folder/t.json"), std::invalid_argument);
  EXPECT_THROW(check_path(""), std::invalid_argument);
  EXPECT_NO_THROW(check_path(::testing::TempDir() + "/orchlab-trace.json"));
}

}  // namespace
}  // namespace orchlab::harness::trace
