// Package symbols holds what srmlab's notebook kernel knows of compiled Go:
// yaegi symbol tables of the standard library (that of the Go release the
// kernel is built with), of srmlab's packages, gonum/plot and gocsv, and
// the doc comments of srmlab's exported names.
//
// Interpreted cells call into these packages at compiled speed; a package
// missing here cannot be imported in a notebook. The std_*.go, pkg_*.go and
// docs.go files are generated; regenerate them after changing an exported
// API or the Go release:
//
//	go generate ./kernel/symbols
//
// TestGenerated fails while they are stale.
package symbols

import "reflect"

//go:generate go run ../internal/gensym

// Symbols maps "importpath/name" to the package's exported symbols, the
// form yaegi's Interpreter.Use takes. The "." entry carries MapTypes.
var Symbols = map[string]map[string]reflect.Value{}

// MapTypes tells yaegi which interfaces the arguments of some functions
// may implement, so that it wraps interpreted values in them: without it
// fmt would not call an interpreted type's String method.
var MapTypes = map[reflect.Value][]reflect.Type{}

func init() {
	Symbols["."] = map[string]reflect.Value{"MapTypes": reflect.ValueOf(MapTypes)}
}
