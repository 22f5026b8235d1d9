// Package plots draws srmlab's figures with gonum.org/v1/plot in one shared
// style: pruning and training curves (Lines, with error bands over seeds),
// ablation and per-domain results (Bars, grouped, with error bars), and gate
// distributions (Boxes). Save writes each figure as PNG, for reports and
// notebooks, and as SVG, for print.
//
// The functions take plain numbers rather than srmlab's result tables, so
// that a notebook can plot anything with them; package report turns the
// analysis tables into these inputs.
//
// One style for all: the Okabe-Ito colour-blind-safe palette, series drawn
// in the order given with the same colour for the same series index across
// figures, a grid behind the data, the legend outside the data where the
// data fills the canvas, 7 x 4.5 inch canvases at 120 dpi.
package plots
