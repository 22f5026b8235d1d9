// The folded second passes of SRM and the block tails (srm.cuh, "folded"):
// the per-channel step inside the second pass, in every layout of
// FOLD_LAYOUTS. A candidate that Device.SetSRMKernels and cuda-check's
// variants launch; a module of its own, so that default plans never wait
// for its compile.
#include "srm.cuh"

#define FOLD_KERNEL(name, impl, PARAMS, ARGS, tag, Lay, R) \
  SRM_ENTRY(name##_##tag, (impl<Lay, R>(work<Lay>(P, rev), ARGS)), PARAMS, int P, int rev)
#define FOLD_KERNELS(tag, Lay, R)                                                                             \
  FOLD_KERNEL(srm_scale_fold, scale_fold_plane, CHAN_TRAIN_PARAMS, CHAN_TRAIN_ARGS, tag, Lay, R)              \
  FOLD_KERNEL(srm_bwd_dx_fold, dx_fold_plane, CHAN_BWD_PARAMS, CHAN_BWD_ARGS, tag, Lay, R)                    \
  FOLD_KERNEL(srm_tail_apply_fold, tail_apply_fold_plane, CHAN_TAIL_FWD_PARAMS, CHAN_TAIL_FWD_ARGS, tag, Lay, R) \
  FOLD_KERNEL(srm_tail_dx_fold, tail_dx_fold_plane, CHAN_TAIL_BWD_PARAMS, CHAN_TAIL_BWD_ARGS, tag, Lay, R)

FOLD_LAYOUTS(FOLD_KERNELS)
