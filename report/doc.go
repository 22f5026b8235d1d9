// Package report turns a results folder of package analysis into one page,
// index.html and report.md with the same tables and figures, beside the SRM
// paper's numbers where the paper has them:
//
//   - the parameter and GMAC table of the paper's ImageNet models, computed
//     by srm.Count and held exactly against the paper's figures;
//   - the paper's ImageNet top-1 quoted (srmlab trains no ImageNet model on
//     a CPU), and the orderings the paper claims (SRM ≥ SE ≥ plain, avg+std
//     the best pooling, CFC ≥ MLP, SRM the most robust to pruning) checked on
//     our runs and marked held or not held, with the seed spread beside
//     them, since two seeds on a few hundred images decide little;
//   - the machine, Go, BLAS, seeds and the command that reruns each table.
//
// Build reads only the CSV tables and the runs' metrics.csv, so a report can
// be rebuilt at any time, also from a folder copied from another machine.
package report
