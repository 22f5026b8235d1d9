module github.com/srmlab/srmlab

go 1.26.8

require (
	github.com/ebitengine/purego v0.11.3
	github.com/gocarina/gocsv v0.0.0-20240520201108-78e41c74b4b1
	github.com/nlpodyssey/gopickle v0.2.0
	golang.org/x/image v0.48.0
	golang.org/x/sys v0.50.0
	gonum.org/v1/gonum v0.17.0
)

require golang.org/x/text v0.44.0 // indirect
