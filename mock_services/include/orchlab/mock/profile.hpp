// The deterministic decisions a mock service makes per request: which fault
// fires and how long it waits. Draws come from a counter-based generator,
// a pure function of (seed, index, stream): request i of a service sees the
// same draws whatever the thread interleaving, and a request carrying
// X-Orchlab-Key k sees the draws of (seed, k) whatever its arrival order.
#pragma once

#include <cstdint>

#include "orchlab/mock/config.hpp"

namespace orchlab::mock {

/// splitmix64's finaliser: a bijective 64-bit mix with full avalanche.
constexpr std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// Independent draw streams of one request.
enum class DrawStream : std::uint32_t {
  latency_a = 1,  ///< first uniform of the latency sample
  latency_b = 2,  ///< second uniform (Box-Muller partner)
  fault = 16,     ///< fault f uses fault + f
};

/// 64 random bits for (seed, index, stream); a pure function.
constexpr std::uint64_t draw_bits(std::uint64_t seed, std::uint64_t index, std::uint32_t stream) {
  return mix64(mix64(mix64(seed) ^ index) ^ (static_cast<std::uint64_t>(stream) << 32 | stream));
}

/// A uniform double in the open interval (0, 1) for (seed, index, stream).
constexpr double draw_unit(std::uint64_t seed, std::uint64_t index, std::uint32_t stream) {
  // 53 random bits, offset by half a step so neither 0 nor 1 is possible
  // (the inverse-CDF samplers take logarithms).
  return (static_cast<double>(draw_bits(seed, index, stream) >> 11) + 0.5) * 0x1.0p-53;
}

/// The latency in ms of draw `index` of `spec`: a sample of the distribution,
/// clamped to [0, cap_ms] and to kMaxDelayMs.
double sample_latency_ms(const LatencySpec& spec, std::uint64_t seed, std::uint64_t index);

/// The fault that fires for draw `index` (request index, or X-Orchlab-Key),
/// or nullptr. Faults are checked in order and the first one firing wins.
/// every_nth = n fires when (index + 1) % n == 0: the n-th, 2n-th, ...
/// request of a service counting from 1.
const FaultSpec* pick_fault(const ServiceConfig& service, std::uint64_t index);

}  // namespace orchlab::mock
