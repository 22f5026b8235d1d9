package analysis

import "math"

// MeanSD returns the mean and the sample standard deviation (n-1), the
// spread the paper-style "mean ± sd over seeds" quotes; one value has sd 0.
func MeanSD(xs []float64) (mean, sd float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) == 1 {
		return mean, 0
	}
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)-1))
}

// popVariance is the variance of group means across groups, dividing by the
// number of groups: the groups (classes, domains) are the whole population
// being compared, not a sample of it.
func popVariance(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var m, v float64
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	return v / float64(len(xs))
}
