// The SRM and block-tail kernels the host's plans launch (see srm.cuh for
// the maths and the code): the per-channel steps, the plane kernels of
// every layout in SRM_LAYOUTS, and the loop kernels for planes too large
// for a block.
#include "srm.cuh"

// ---- the per-channel steps -------------------------------------------------

#define PER_CHANNEL_KERNEL(name, step, PARAMS, ARGS) \
  SRM_ENTRY(name, const int c = warp_channel(); if (c < C) step(c, ARGS), PARAMS)
PER_CHANNEL_KERNEL(srm_train_gate, train_gate_channel, TRAIN_GATE_PARAMS, TRAIN_GATE_ARGS)
PER_CHANNEL_KERNEL(srm_bwd_gate, bwd_gate_channel, BWD_GATE_PARAMS, BWD_GATE_ARGS)
PER_CHANNEL_KERNEL(srm_tail_fwd, tail_fwd_channel, TAIL_FWD_PARAMS, TAIL_FWD_ARGS)
PER_CHANNEL_KERNEL(srm_tail_bwd, tail_bwd_channel, TAIL_BWD_PARAMS, TAIL_BWD_ARGS)

// ---- planes of any size: a block a plane, looping ---------------------------

SRM_ENTRY(srm_eval_loop, eval_loop(EVAL_ARGS, P), EVAL_PARAMS)
SRM_ENTRY(srm_stats_loop, stats_loop(STATS_ARGS(true), P), STATS_PARAMS)
SRM_ENTRY(srm_tail_stats_loop, stats_loop(STATS_ARGS(false), P), STATS_PARAMS)
SRM_ENTRY(srm_scale_loop, apply_loop(SCALE_ARGS, P, rev), SCALE_PARAMS)
SRM_ENTRY(srm_tail_apply_loop, apply_loop(APPLY_ARGS, P, rev), APPLY_PARAMS)
SRM_ENTRY(srm_bwd_dot_loop, sums_loop(DOT_ARGS, P), DOT_PARAMS)
SRM_ENTRY(srm_tail_bwd_sums_loop, sums_loop(SUMS_ARGS, P), SUMS_PARAMS)
SRM_ENTRY(srm_bwd_dx_loop, dx_loop(DX_ARGS, P, rev), DX_PARAMS)
SRM_ENTRY(srm_tail_dx_loop, dx_loop(TAIL_DX_ARGS, P, rev), TAIL_DX_PARAMS)

// ---- the group and block layouts ---------------------------------------------

#define SRM_KERNEL(name, impl, PARAMS, ARGS, order, tag, Lay, R) \
  SRM_ENTRY(name##_##tag, (impl<Lay, R>(work<Lay>(P, order), ARGS)), PARAMS)
#define SRM_KERNELS(tag, Lay, R)                                                           \
  SRM_KERNEL(srm_eval, eval_plane, EVAL_PARAMS, EVAL_ARGS, 0, tag, Lay, R)                 \
  SRM_KERNEL(srm_stats, stats_plane, STATS_PARAMS, STATS_ARGS(true), 0, tag, Lay, R)       \
  SRM_KERNEL(srm_scale, apply_plane, SCALE_PARAMS, SCALE_ARGS, rev, tag, Lay, R)           \
  SRM_KERNEL(srm_bwd_dot, sums_plane, DOT_PARAMS, DOT_ARGS, 0, tag, Lay, R)                \
  SRM_KERNEL(srm_bwd_dx, dx_plane, DX_PARAMS, DX_ARGS, rev, tag, Lay, R)                   \
  SRM_KERNEL(srm_tail_stats, stats_plane, STATS_PARAMS, STATS_ARGS(false), 0, tag, Lay, R) \
  SRM_KERNEL(srm_tail_apply, apply_plane, APPLY_PARAMS, APPLY_ARGS, rev, tag, Lay, R)      \
  SRM_KERNEL(srm_tail_bwd_sums, sums_plane, SUMS_PARAMS, SUMS_ARGS, 0, tag, Lay, R)        \
  SRM_KERNEL(srm_tail_dx, dx_plane, TAIL_DX_PARAMS, TAIL_DX_ARGS, rev, tag, Lay, R)

SRM_LAYOUTS(SRM_KERNELS)
