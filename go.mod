module github.com/srmlab/srmlab

go 1.26.8

require (
	github.com/ebitengine/purego v0.11.3
	golang.org/x/sys v0.50.0
	gonum.org/v1/gonum v0.17.0
)
