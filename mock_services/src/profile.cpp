// Latency samplers and the fault trigger (see profile.hpp).
#include "orchlab/mock/profile.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace orchlab::mock {

namespace {

// Φ⁻¹(0.99): how many standard deviations the 99th percentile lies above
// the median; turns the user's (p50, p99) into the lognormal's sigma.
constexpr double kZ99 = 2.3263478740408408;

double standard_normal(std::uint64_t seed, std::uint64_t index) {
  // Box-Muller on two independent streams of the same request.
  const double u1 = draw_unit(seed, index, static_cast<std::uint32_t>(DrawStream::latency_a));
  const double u2 = draw_unit(seed, index, static_cast<std::uint32_t>(DrawStream::latency_b));
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

}  // namespace

double sample_latency_ms(const LatencySpec& spec, std::uint64_t seed, std::uint64_t index) {
  const double u = draw_unit(seed, index, static_cast<std::uint32_t>(DrawStream::latency_a));
  double ms = 0;
  switch (spec.dist) {
    case LatencyDist::fixed:
      ms = spec.ms;
      break;
    case LatencyDist::uniform:
      ms = spec.min_ms + (spec.max_ms - spec.min_ms) * u;
      break;
    case LatencyDist::normal:
      ms = spec.mean_ms + spec.stddev_ms * standard_normal(seed, index);
      break;
    case LatencyDist::lognormal: {
      const double mu = std::log(spec.p50_ms);
      const double sigma = (std::log(spec.p99_ms) - mu) / kZ99;
      ms = std::exp(mu + sigma * standard_normal(seed, index));
      break;
    }
    case LatencyDist::pareto:
      // Inverse CDF: P(X > x) = (scale / x)^alpha.
      ms = spec.scale_ms / std::pow(u, 1.0 / spec.alpha);
      break;
  }
  if (!std::isfinite(ms)) ms = kMaxDelayMs;
  ms = std::clamp(ms, 0.0, kMaxDelayMs);
  if (spec.cap_ms) ms = std::min(ms, *spec.cap_ms);
  return ms;
}

const FaultSpec* pick_fault(const ServiceConfig& service, std::uint64_t index) {
  for (std::size_t f = 0; f < service.faults.size(); ++f) {
    const FaultSpec& fault = service.faults[f];
    if (fault.every_nth != 0) {
      if ((index + 1) % fault.every_nth == 0) return &fault;
      continue;
    }
    const auto stream =
        static_cast<std::uint32_t>(DrawStream::fault) + static_cast<std::uint32_t>(f);
    if (draw_unit(service.seed, index, stream) < fault.probability) return &fault;
  }
  return nullptr;
}

}  // namespace orchlab::mock
