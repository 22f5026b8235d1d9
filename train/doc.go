// Package train trains the zoo's models (package srm) on the data sets of
// package datasets, with the SGD recipes of the SRM paper, and keeps every
// run resumable to the bit.
//
// # Running
//
// Start from DefaultConfig (He et al.'s CIFAR recipe: batch 128, SGD with
// learning rate 0.1, momentum 0.9, weight decay 1e-4 except on SRM's cfc and
// BatchNorm, the rate divided by 10 at 50 % and 75 % of the epochs), name a
// model, a data set spec (datasets.Open), a number of epochs and a run
// folder, and call Run. Schedules are "step", "cosine" and "constant", each
// with an optional linear warm-up; Config.RateAt gives the rate of any step.
//
// Images reach the model through a Recipe: the CIFAR recipe (pad-4 random
// crop and flip, the training images' own channel statistics) for images up
// to 64 pixels, the ImageNet recipe (RandomResizedCrop(224) and flip, then
// Resize(256) and CenterCrop(224) for testing) for larger ones.
//
// A Callback hears of every step and every epoch, so a notebook can plot a
// run live; Terminal is the progress line of "srmlab train". Evaluate scores
// any model on any data set, top-1 and top-5.
//
// # The run folder
//
//	OUT/metrics.csv             one row per finished epoch (see Row):
//	                            epoch, lr, train_loss, train_top1, test_loss,
//	                            test_top1, test_top5, images_per_s, seconds;
//	                            losses are mean cross-entropies, accuracies
//	                            percentages; rewritten after every epoch
//	OUT/checkpoint.safetensors  where the run stands: every model tensor
//	                            (BatchNorm running statistics included), SGD's
//	                            momentum buffers (optimizer.momentum_buffer.*),
//	                            and as metadata the configuration
//	                            (srmlab.config), the recipe (srmlab.recipe),
//	                            the epoch and batch reached, the partial
//	                            epoch's sums, the metrics rows, GOMAXPROCS and
//	                            the BLAS (srmlab.state); rewritten after every
//	                            epoch, every Config.CheckpointEvery batches and
//	                            when the run is stopped
//	OUT/weights.safetensors     the final weights, once the last epoch is done,
//	                            under PyTorch's state_dict names with the
//	                            configuration and recipe as metadata; loads with
//	                            weights.Load, "srmlab predict" and "srmlab eval"
//
// Every file is replaced atomically (a temporary file, fsync, rename), so a
// crash or kill -9 at any moment leaves the previous or the new version,
// never a torn one. Run refuses to start a new run in a folder that holds a
// checkpoint.
//
// # Exact resumption
//
// Run with Config.Resume continues from the checkpoint, and a run stopped or
// killed at any point and resumed ends with the same weights, bit for bit,
// as an uninterrupted one, because nothing it computes depends on anything
// outside the checkpoint:
//
//   - the batches, their order and their augmentation depend only on the
//     seed, the epoch and the batch number (datasets.Loader), so an epoch
//     resumed at batch k sees what the uninterrupted one saw;
//   - the learning rate is a function of the epoch and batch (RateAt);
//   - the weights, BatchNorm statistics and float32 momentum buffers are
//     stored exactly, and there is no other random state: the seed that
//     drew the initial weights and drives the loader is the whole of it;
//   - the arithmetic is deterministic for a given GOMAXPROCS and BLAS (the
//     convolutions split gradient sums per core, in a fixed order). The
//     checkpoint records both, and resuming under others is refused with
//     an error that says what to set (GOMAXPROCS=N, SRMLAB_BLAS).
//
// Cancelling Run's context (Ctrl-C in "srmlab train") stops the run at the
// next step and writes the checkpoint first. A NaN or Inf in the loss or a
// gradient stops the run before the update with a *NonFiniteError naming
// the epoch, batch and parameter, and leaves the checkpoint as it was.
package train
