// Package display shows rich output in a srmlab notebook: HTML, Markdown,
// LaTeX, images and plots, shown once or updated in place.
//
// It keeps the API of gophernotes' display package, so that gophernotes
// notebooks run unchanged under srmlab's kernel: functions such as HTML,
// Markdown, PNG or Image wrap content into a Data bundle, which a cell
// shows by leaving it as its last value or by passing it to Display. The
// kernel imports this package into every session as "display", as
// gophernotes does, and also predeclares gophernotes' global Display.
//
// A Handle names one output area so that later updates replace it rather
// than append to the notebook: that is how a training loop redraws its
// progress and loss curves (see TrainingView) without flooding the page.
//
// Outside a kernel there is nobody to show output to, and Display returns
// an error; the functions that build Data work anywhere.
package display
