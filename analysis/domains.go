package analysis

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/srmlab/srmlab/datasets"
	"github.com/srmlab/srmlab/tensor"
	"github.com/srmlab/srmlab/train"
)

// The two multi-domain protocols of DomainRow.Experiment.
const (
	// AllDomains trains on every domain and scores each domain's test
	// images separately (the Office-Home protocol of the paper).
	AllDomains = "all-domains"
	// LeaveOneOut trains on all domains but one and scores the held-out
	// domain's test images: how well a module carries across styles.
	LeaveOneOut = "leave-one-out"
)

// DomainRow is one model's accuracy on one domain: a line of domains.csv.
type DomainRow struct {
	Experiment string `csv:"experiment"`
	Model      string `csv:"model"`
	// Data is the spec the model was trained on.
	Data   string  `csv:"data"`
	Seed   uint64  `csv:"seed"`
	Domain string  `csv:"domain"`
	Images int     `csv:"images"`
	Top1   float64 `csv:"test_top1"`
	// Dir is the run folder, relative to the results folder.
	Dir string `csv:"dir"`
}

var domainOption = regexp.MustCompile(`:domain=[^:]*`)

// WithDomains returns spec restricted to the named domains, replacing any
// domain option it had; for the bundled "domains" set and "officehome".
func WithDomains(spec string, domains []string) string {
	return domainOption.ReplaceAllString(spec, "") + ":domain=" + strings.Join(domains, ",")
}

// PerDomain scores each run's model on the test images of every domain of
// its data, one pass over the test split per run.
func PerDomain(ctx context.Context, root string, runs []RunRow, batch int) ([]DomainRow, error) {
	var rows []DomainRow
	for _, r := range runs {
		tr, err := LoadRun(root, r)
		if err != nil {
			return nil, err
		}
		names := tr.Data.Test.Domains()
		if names == nil {
			return nil, fmt.Errorf("analysis: %s has no domains", r.Data)
		}
		hits, n := make([]int, len(names)), make([]int, len(names))
		err = eachBatch(ctx, tr.Model, tr.Data.Test, tr.Recipe.TestTransform(), batch, func(b *datasets.Batch, logits *tensor.Tensor) error {
			for i, y := range b.Labels {
				d := b.Domains[i]
				n[d]++
				if argmax(logits, i) == y {
					hits[d]++
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for d, name := range names {
			if n[d] == 0 {
				continue
			}
			rows = append(rows, DomainRow{Experiment: AllDomains, Model: r.Model, Data: r.Data, Seed: r.Seed,
				Domain: name, Images: n[d], Top1: 100 * float64(hits[d]) / float64(n[d]), Dir: r.Dir})
		}
	}
	return rows, nil
}

// argmax is row i's predicted class, the lower index winning a tie.
func argmax(logits *tensor.Tensor, i int) int {
	k := logits.Dim(1)
	best := 0
	for j := 1; j < k; j++ {
		if logits.At(i*k+j) > logits.At(i*k+best) {
			best = j
		}
	}
	return best
}

// LeaveOneOut trains g's models once per domain of each of g.Data's
// multi-domain specs, on every other domain, and scores each on the
// held-out domain's test images. It returns the grid's runs (their Top1 is
// on the training domains' test images) and the held-out scores.
func (g Grid) LeaveOneOut(ctx context.Context, root string, batch int) ([]RunRow, []DomainRow, error) {
	var runs []RunRow
	var rows []DomainRow
	for _, base := range g.Data {
		splits, err := datasets.Open(base)
		if err != nil {
			return nil, nil, err
		}
		names := splits.Train.Domains()
		if len(names) < 2 {
			return nil, nil, fmt.Errorf("analysis: leave-one-domain-out needs a data set with several domains, not %s", base)
		}
		for i, held := range names {
			others := append(append([]string(nil), names[:i]...), names[i+1:]...)
			one := g
			one.Data = []string{WithDomains(base, others)}
			rs, err := one.Run(ctx, root)
			if err != nil {
				return nil, nil, err
			}
			heldOut, err := datasets.Open(WithDomains(base, []string{held}))
			if err != nil {
				return nil, nil, err
			}
			for _, r := range rs {
				tr, err := LoadRun(root, r)
				if err != nil {
					return nil, nil, err
				}
				met, err := train.Evaluate(ctx, tr.Model, heldOut.Test, tr.Recipe.TestTransform(), batch)
				if err != nil {
					return nil, nil, err
				}
				rows = append(rows, DomainRow{Experiment: LeaveOneOut, Model: r.Model, Data: r.Data, Seed: r.Seed,
					Domain: held, Images: met.Images, Top1: met.Top1, Dir: r.Dir})
			}
			runs = append(runs, rs...)
		}
	}
	return runs, rows, nil
}
