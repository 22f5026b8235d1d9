package main

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestParamRows(t *testing.T) {
	rows, err := paramRows(context.Background(), []string{"resnet20", " srm-resnet50"}, []string{"A", "B"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"model", "shortcut", "params", "gmacs", "caffe_gmacs"},
		{"resnet20", "A", "269722", "0.0406", ""},
		{"resnet20", "B", "272474", "0.0408", ""},
		{"srm-resnet50", "B", "25617448", "4.1113", "3.8801"},
	}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("got %q\nwant %q", rows, want)
	}
	var b strings.Builder
	printAligned(&b, rows[:3])
	if got := b.String(); got != `model     shortcut  params   gmacs  caffe_gmacs
resnet20         A  269722  0.0406            -
resnet20         B  272474  0.0408            -
` {
		t.Errorf("table:\n%s", got)
	}
	if _, err := paramRows(context.Background(), []string{"resnet21"}, nil, 0); err == nil {
		t.Error("unknown model: no error")
	}
}
