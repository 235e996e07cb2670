// The frame memory of Tasks and their operations' handlers (task.hpp).
#include "task.hpp"

#include <array>
#include <new>
#include <utility>

namespace orchlab::async::detail {

namespace {

constexpr std::size_t kGranule = 64;
constexpr std::size_t kClasses = 32;         // blocks of 64 B .. 1,984 B (class 1..31)
constexpr std::size_t kKeepPerClass = 1024;  // per thread: a fan-out of 1000 in flight

struct FreeLists {
  struct Node {
    Node* next;
  };
  std::array<Node*, kClasses> head{};
  std::array<std::size_t, kClasses> count{};

  ~FreeLists();
};

thread_local FreeLists lists;
// Set when this thread's lists are gone (thread exit): later frees go to
// operator delete.
thread_local bool lists_gone = false;

FreeLists::~FreeLists() {
  lists_gone = true;
  for (Node*& n : head) {
    while (n != nullptr) ::operator delete(std::exchange(n, n->next));
  }
}

std::size_t size_class(std::size_t size) {
  return size == 0 ? 1 : (size + kGranule - 1) / kGranule;
}

// A new block of class `c`, always the class's whole size: a block may end
// in another thread's list and be reused there for any size of its class.
void* new_block(std::size_t c) {
  const std::size_t bytes = c * kGranule;
  return ::operator new(bytes);
}

}  // namespace

void* frame_allocate(std::size_t size) {
  if constexpr (!kFrameFreeLists) return ::operator new(size);
  const std::size_t c = size_class(size);
  if (c >= kClasses) return ::operator new(size);
  if (lists_gone) return new_block(c);
  FreeLists& l = lists;
  if (FreeLists::Node* n = l.head[c]) {
    l.head[c] = n->next;
    --l.count[c];
    return n;
  }
  return new_block(c);
}

void frame_deallocate(void* p, std::size_t size) noexcept {
  if constexpr (!kFrameFreeLists) {
    ::operator delete(p);
    return;
  }
  const std::size_t c = size_class(size);
  if (c >= kClasses || lists_gone) {
    ::operator delete(p);
    return;
  }
  FreeLists& l = lists;
  if (l.count[c] >= kKeepPerClass) {
    ::operator delete(p);
    return;
  }
  l.head[c] = new (p) FreeLists::Node{l.head[c]};
  ++l.count[c];
}

}  // namespace orchlab::async::detail
