// Package datasets feeds images to srmlab's training loops: readers for the
// data sets of the SRM paper (CIFAR-10/100, DTD, Office-Home, Stylized-
// ImageNet and any ImageFolder tree), two small data sets generated in
// process so that every experiment runs without a download, the
// augmentations of the CIFAR and ImageNet recipes, and a Loader that turns a
// Dataset into batches.
//
// The package sits upstream of the engine and shares no types with it: a
// Batch is plain float32 data in NCHW order with integer labels, ready to be
// copied into a tensor.
//
// # Pieces
//
// A Dataset decodes sample i on demand into a CHW float32 Image in [0, 1]
// with its class label and, for multi-domain data, its domain. Open parses a
// spec string such as "cifar10:/data/cifar-10-batches-bin" or "textures"
// into train, validation and test Splits.
//
// A Transform augments one Image with a random source; Compose chains them
// and the CIFARTrain, CIFARTest, ImageNetTrain and ImageNetTest presets
// follow the recipes of He et al. and of the official SRM code.
//
// A Loader streams the batches of one epoch. Decoding and augmentation run
// in parallel goroutines, yet the bits of every batch depend only on the
// seed, the epoch and the batch number: each sample draws its augmentation
// from a generator seeded by (seed, epoch, sample index), never from a
// shared one whose order would depend on goroutine timing. This is also
// what lets a resumed run start an epoch at batch k and see exactly the
// batches that the interrupted run would have seen.
//
// # Bundled data
//
// "textures" stands in for DTD: ten texture classes that share the same
// distribution of mean colour per image and differ only in second-order
// statistics (contrast, spatial frequency, orientation, grain), so a
// recalibration that pools only means cannot tell them apart from colour.
// "domains" stands in for Office-Home: ten letters drawn in four visual
// styles (flat colour, sketch, photo-like, pixel art), each style a domain.
// Both are 32x32 RGB, generated from a seed in well under a second.
//
// Readers never panic on bad input: a truncated or corrupt file gives an
// error that names the file and the record, line or byte offset at fault.
package datasets
