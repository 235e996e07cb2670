// Registration entry points of the orchlab-micro benchmark families, called
// from main() after benchmark::Initialize (the pattern list is only known at
// run time, so nothing registers from a static initializer).
#pragma once

namespace orchlab::micro {

/// BM_Aggregate/<strategy>/real_time/threads:N — one result stored per
/// iteration by every thread; items/s is the aggregate throughput.
void register_aggregate();

/// BM_Orchestrate/<pattern>/fanout:N — one whole orchestration per
/// iteration with an in-process fetch that answers at once.
void register_orchestrate();

/// BM_Spawn/<kind> — the floor: start one empty task and wait for it
/// (std-thread, std-jthread, go-census, asio-thread-pool), and
/// BM_Spawn/std-thread-batch/fanout:N — start N threads, join them all.
void register_spawn();

/// Marks the run as failed (main() then exits 1). A benchmark that cannot run
/// by design is skipped with a "skipped:" message and does not count.
void note_failure();

}  // namespace orchlab::micro
