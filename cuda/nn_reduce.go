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
		return reduction{warp: true, splits: 1, grid: (s.C + planesPerCTA - 1) / planesPerCTA}
	}
	target := splitBlocksPerSM * max(d.info.SMs, 1)
	splits := max(1, min((target+s.C-1)/s.C, (units+minSplitUnits-1)/minSplitUnits))
	return reduction{splits: splits, grid: s.C * splits}
}

// addReduce queues the first stage of a channel reduction over s: kernel
// takes lead, then N, C, HW, splits, warp and the partials. It returns the
// partials (2 doubles per block or warp), which the caller frees after
// queuing the plan, and the shape.
func (d *Device) addReduce(p *Plan, kernel string, s BNShape, lead ...any) (*Buffer, reduction, error) {
	r := d.reductionFor(s)
	part, err := d.AllocFloat32(4 * s.C * r.splits)
	if err != nil {
		return nil, r, err
	}
	args := append(append([]any{}, lead...), int32(s.N), int32(s.C), int32(s.HW), int32(r.splits), nnFlag(r.warp), part)
	if err := p.add(kernelRef{nnSource, kernel}, r.grid, maxBlock, args...); err != nil {
		return nil, r, errorsJoinFree(err, part)
	}
	return part, r, nil
}

// addChannelSum queues out[c] (+)= the first sum kernel computes over
// channel c (nn_chan_sum: Σx; nn_chan_dot: Σx·y) and returns the scratch
// to free. With no values per channel, out is zeroed (or left, when
// accumulating) and there is no scratch.
func (d *Device) addChannelSum(p *Plan, kernel string, s BNShape, out *Buffer, acc bool, inputs ...any) (*Buffer, error) {
	if s.N*s.HW == 0 {
		if acc {
			return nil, nil
		}
		return nil, p.add(kernelRef{nnSource, "nn_fill"}, d.mapGrid(s.C), maxBlock, out, float32(0), int64(s.C))
	}
	part, r, err := d.addReduce(p, kernel, s, inputs...)
	if err != nil {
		return nil, err
	}
	err = p.add(kernelRef{nnSource, "nn_chan_sum_final"}, perChannelGrid(s.C), maxBlock, part, out, int32(s.C), int32(r.splits), nnFlag(acc))
	if err != nil {
		return nil, errorsJoinFree(err, part)
	}
	return part, nil
}

// perChannelGrid is the grid of a finalize kernel, a thread per channel.
func perChannelGrid(c int) int { return (c + maxBlock - 1) / maxBlock }

// errorsJoinFree frees scratch after a failure to build a plan.
func errorsJoinFree(err error, scratch ...*Buffer) error {
	return errors.Join(err, freeAll(scratch...))
}
