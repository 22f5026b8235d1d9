// Package analysis runs the SRM paper's analyses on srmlab's models and
// writes their results as CSV tables (github.com/gocarina/gocsv, replaced
// atomically) that later steps and package report read back.
//
// # Experiments
//
//   - Module comparison and pooling ablation (Grid): models × data × seeds
//     trained by package train with one recipe and budget; mean ± sd over
//     seeds (Summarize), DTD's ten splits pooled the same way.
//   - Channel pruning (PruneCurves): channels ranked by the mean gate of
//     their block's module over the training images (GateScores), by BN |γ|
//     (BNScores) or at random (RandomScores); the lowest fraction of each
//     block zeroed through the branch's last BatchNorm (Pruning says exactly
//     where, and why that is structured pruning) without fine-tuning.
//   - Multi-domain (PerDomain, Grid.LeaveOneOut): per-domain accuracy after
//     training on all domains, and on each held-out domain.
//   - Gate statistics (GateStats): every channel's gate per class and per
//     domain, and each block's between-class and between-domain variance.
//
// Config strings the steps together as "srmlab reproduce" does; each step
// is also a subcommand and records its command line in steps.csv.
//
// # The results folder
//
// Runs live in runs/MODEL/DATA/seed-S (package train's run folders, shared
// by the experiments that need the same run). The tables, one row per:
//
//	compare.csv, ablation.csv, dtd.csv, loo.csv   trained run (RunRow):
//	    experiment, model, data, seed, epochs, params, test_top1, test_top5,
//	    test_loss (mean cross-entropy), seconds (training), dir, command
//	summary.csv      experiment × model × data, splits pooled (Summary):
//	    experiment, model, data, n, mean_top1, sd_top1, min_top1, max_top1
//	pruning.csv      model × seed × ranking × fraction (PruneRow):
//	    model, data, seed, ranking (gate|bn|random), fraction, pruned,
//	    channels, test_top1
//	domains.csv      run × domain (DomainRow): experiment (all-domains |
//	    leave-one-out), model, data (trained on), seed, domain, images,
//	    test_top1, dir
//	gates.csv        model × seed × block × channel × group (GateRow):
//	    model, data, seed, block, channel, by (class|domain), group, n,
//	    mean, sd
//	gate_variance.csv  model × seed × block (GateVarRow): model, data,
//	    seed, block, class_var, domain_var, total_var
//	steps.csv        step (StepRow): step, command, seconds, finished
//
// Accuracies are percentages, as in the paper's tables; sd is the sample
// standard deviation (n−1).
package analysis
