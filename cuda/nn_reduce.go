package cuda

import "errors"

// Channel reductions (see the top of kernels/nn.cu): for each channel c, a
// sum over the values x[(n·C + c)·HW + i], n < N, i < HW, in two stages:
// partial sums (double pairs) into a scratch array, then a kernel with one
// thread per channel that adds a channel's partials and finishes.

// reduction is how the first stage covers the channels.
type reduction struct {
	warp   bool // a warp per channel, 8 per block; else splits blocks per channel
	splits int
	grid   int
}

const (
	// warpReduceMax is the most units (float4s where HW is a multiple of
	// 4, else floats) per channel that a warp sums alone: up to 32 per
	// lane. Larger channels get blocks, which would mostly idle on
	// smaller ones (a 7×7 plane per channel in a gate gradient).
	warpReduceMax = 1024
	// minSplitUnits is the fewest units a block of the split shape sums
	// (8 per thread): below that, the block's start-up and its partial
	// cost more than the parallelism gains.
	minSplitUnits = 2048
	// splitBlocksPerSM is the number of 256-thread blocks per SM the
	// split shape aims for: 8 fill an SM's 2048 threads.
	splitBlocksPerSM = 8
)

// reductionFor picks the shape for C channels of N·HW values. Channels are
// split so that about splitBlocksPerSM blocks per SM run, which matters
// when C is small and each channel large (64 channels of 64×112×112: 17
// blocks per channel on 132 SMs), never into chunks below minSplitUnits.
func (d *Device) reductionFor(s BNShape) reduction {
	units := s.N * s.HW
	if s.HW%4 == 0 {
		units /= 4
	}
	if units <= warpReduceMax {
		return reduction{warp: true, splits: 1, grid: warpGrid(s.C)}
	}
	target := splitBlocksPerSM * max(d.info.SMs, 1)
	splits := max(1, min((target+s.C-1)/s.C, (units+minSplitUnits-1)/minSplitUnits))
	return reduction{splits: splits, grid: s.C * splits}
}

// partials is the scratch (floats) the first stage of r writes: a pair of
// doubles per block or warp.
func (r reduction) partials(s BNShape) int { return 4 * s.C * r.splits }

// addReduce queues the first stage of reduction r over s, writing to part:
// kernel takes lead, then N, C, HW, splits, warp and the partials.
func addReduce(p *Plan, kernel string, s BNShape, r reduction, part *Buffer, lead ...any) error {
	args := append(append([]any{}, lead...), int32(s.N), int32(s.C), int32(s.HW), int32(r.splits), nnFlag(r.warp), part)
	return p.add(kernelRef{nnSource, kernel}, r.grid, maxBlock, args...)
}

// channelSumScratch is the scratch addChannelSum needs for s.
func (d *Device) channelSumScratch(s BNShape) []int {
	if s.N*s.HW == 0 {
		return nil
	}
	return []int{d.reductionFor(s).partials(s)}
}

// addChannelSum queues out[c] (+)= the first sum kernel computes over
// channel c (nn_chan_sum: Σx; nn_chan_dot: Σx·y), with the scratch that
// channelSumScratch asked for. With no values per channel, out is zeroed
// (or left, when accumulating).
func (d *Device) addChannelSum(p *Plan, kernel string, s BNShape, scratch []*Buffer, out *Buffer, acc bool, inputs ...any) error {
	if s.N*s.HW == 0 {
		if acc {
			return nil
		}
		return p.add(kernelRef{nnSource, "nn_fill"}, d.mapGrid(s.C), maxBlock, out, float32(0), int64(s.C))
	}
	r := d.reductionFor(s)
	return errors.Join(addReduce(p, kernel, s, r, scratch[0], inputs...),
		p.add(kernelRef{nnSource, "nn_chan_sum_final"}, perChannelGrid(s.C), maxBlock, scratch[0], out, int32(s.C), int32(r.splits), nnFlag(acc)))
}

// perChannelGrid is the grid of a finalize kernel, a thread per channel.
func perChannelGrid(c int) int { return (c + maxBlock - 1) / maxBlock }
