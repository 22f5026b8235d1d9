// Package blas gives srmlab its matrix products from the fastest BLAS it can
// find at run time: OpenBLAS (Debian's libopenblas0), loaded with purego so
// that no cgo and no build tags are needed, or gonum's pure-Go BLAS when no
// OpenBLAS library can be opened. Name says which one is in use.
//
// SRMLAB_BLAS selects explicitly: "gonum" forces the pure-Go fallback; a path
// names the OpenBLAS library to open.
package blas
