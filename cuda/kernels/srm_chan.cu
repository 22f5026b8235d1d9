// The by-channel SRM and block-tail kernels (srm.cuh, "by channel"): each
// training pass pair in one kernel, a block per channel, in every layout of
// CHAN_LAYOUTS. A candidate that Device.SetSRMKernels and cuda-check's
// variants launch; a module of its own, so that default plans never wait
// for its compile.
#include "srm.cuh"

#define CHAN_KERNEL(name, impl, PARAMS, ARGS, tag, Lay, R) SRM_ENTRY(name##_##tag, (impl<Lay, R>(ARGS)), PARAMS)
#define CHAN_KERNELS(tag, Lay, R)                                                                     \
  CHAN_KERNEL(srm_train, train_by_channel, CHAN_TRAIN_PARAMS, CHAN_TRAIN_ARGS, tag, Lay, R)             \
  CHAN_KERNEL(srm_bwd, bwd_by_channel, CHAN_BWD_PARAMS, CHAN_BWD_ARGS, tag, Lay, R)                     \
  CHAN_KERNEL(srm_tail_fwd, tail_fwd_by_channel, CHAN_TAIL_FWD_PARAMS, CHAN_TAIL_FWD_ARGS, tag, Lay, R) \
  CHAN_KERNEL(srm_tail_bwd, tail_bwd_by_channel, CHAN_TAIL_BWD_PARAMS, CHAN_TAIL_BWD_ARGS, tag, Lay, R)

CHAN_LAYOUTS(CHAN_KERNELS)
