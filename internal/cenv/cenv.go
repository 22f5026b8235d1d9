// Package cenv sets environment variables where C libraries opened at run
// time read them. Without cgo, os.Setenv changes only Go's copy of the
// environment; a library that reads its settings with getenv when it loads
// (OpenBLAS's core type, OpenMP's wait policy) sees them only when they are
// set through libc itself.
package cenv

import (
	"os"
	"sync"

	"github.com/ebitengine/purego"
)

var (
	once   sync.Once
	setenv func(name, value string, overwrite int32) int32
)

// Default sets name to value, in Go's environment and libc's, unless the
// environment already has it, and reports whether it did.
func Default(name, value string) bool {
	if _, ok := os.LookupEnv(name); ok {
		return false
	}
	once.Do(func() {
		libc, err := purego.Dlopen("libc.so.6", purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			purego.RegisterLibFunc(&setenv, libc, "setenv")
		}
	})
	if setenv != nil {
		setenv(name, value, 0)
	}
	os.Setenv(name, value)
	return true
}
