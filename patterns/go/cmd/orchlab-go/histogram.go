package main

import (
	"math"
	"math/bits"
)

// logHistogram is the lab's histogram (patterns/support/histogram.cpp): values below
// 128 exactly, then 128 sub-buckets per power of two; quantiles are nearest-rank,
// the bucket's midpoint clamped to the recorded min and max.
type logHistogram struct {
	buckets              []uint64
	count, min, max, sum uint64
}

const (
	subBits = 7
	sub     = 1 << subBits
)

func bucketOf(v uint64) int {
	if v < sub {
		return int(v)
	}
	msb := 63 - bits.LeadingZeros64(v)
	shift := msb - subBits
	return sub + shift*sub + int((v>>uint(shift))-sub)
}

func bucketLow(i int) uint64 {
	if i < sub {
		return uint64(i)
	}
	shift := uint((i - sub) / sub)
	return uint64(sub+(i-sub)%sub) << shift
}

func bucketHigh(i int) uint64 {
	if i < sub {
		return uint64(i)
	}
	shift := uint((i - sub) / sub)
	return bucketLow(i) + (uint64(1)<<shift - 1)
}

func (h *logHistogram) record(v uint64) {
	b := bucketOf(v)
	for len(h.buckets) <= b {
		h.buckets = append(h.buckets, 0)
	}
	h.buckets[b]++
	if h.count == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.count++
	h.sum += v
}

func (h *logHistogram) merge(o *logHistogram) {
	if o.count == 0 {
		return
	}
	for len(h.buckets) < len(o.buckets) {
		h.buckets = append(h.buckets, 0)
	}
	for i, n := range o.buckets {
		h.buckets[i] += n
	}
	if h.count == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.count += o.count
	h.sum += o.sum
}

func (h *logHistogram) quantile(q float64) uint64 {
	if h.count == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.count)))
	var seen uint64
	for i, n := range h.buckets {
		seen += n
		if seen >= rank && n != 0 {
			lo, hi := bucketLow(i), bucketHigh(i)
			mid := lo + (hi-lo)/2
			if mid < h.min {
				mid = h.min
			}
			if mid > h.max {
				mid = h.max
			}
			return mid
		}
	}
	return h.max
}

// minSamples is how many samples quantile q needs to be more than the maximum in
// disguise (report.cpp): p50 2, p90 10, p99 100, p99.9 1,000.
func minSamples(q float64) uint64 { return uint64(1/(1-q) + 0.5) }

// quantileUs is quantile q in µs, or nil with too few samples.
func (h *logHistogram) quantileUs(q float64) *float64 {
	if h.count < minSamples(q) {
		return nil
	}
	v := float64(h.quantile(q)) / 1000
	return &v
}

// histogramJSON is report.cpp's histogram_json: non-empty buckets [low, high, count].
type histogramJSON struct {
	Buckets [][3]uint64 `json:"buckets"`
	Count   uint64      `json:"count"`
	Min     *uint64     `json:"min"`
	Max     *uint64     `json:"max"`
	Sum     uint64      `json:"sum"`
}

func (h *logHistogram) json() histogramJSON {
	out := histogramJSON{Buckets: [][3]uint64{}, Count: h.count, Sum: h.sum}
	for i, n := range h.buckets {
		if n != 0 {
			out.Buckets = append(out.Buckets, [3]uint64{bucketLow(i), bucketHigh(i), n})
		}
	}
	if h.count > 0 {
		mn, mx := h.min, h.max
		out.Min, out.Max = &mn, &mx
	}
	return out
}
