package display

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync/atomic"
)

// Publisher sends a bundle to the notebook. update is false for a new
// output (display_data) and true to replace the output whose display_id
// the bundle's Transient carries (update_display_data).
type Publisher func(d Data, update bool) error

var publisher atomic.Pointer[Publisher]

// SetPublisher connects the package to a kernel: srmlab's kernel calls it
// once at start-up. Without it Display and updates fail, since there is no
// notebook to show anything in.
func SetPublisher(p Publisher) {
	publisher.Store(&p)
}

// ErrNoKernel is returned when output is shown outside a notebook kernel.
var ErrNoKernel = errors.New("display: not running in a notebook kernel")

func publish(d Data, update bool) error {
	p := publisher.Load()
	if p == nil || *p == nil {
		return ErrNoKernel
	}
	return (*p)(d, update)
}

// Display shows d now, below the cell's earlier output, rather than as the
// cell's result: from inside loops and functions, or to show several
// bundles from one cell. A display_id in d.Transient lets later updates
// replace it, as in gophernotes.
func Display(d Data) error {
	return publish(d, false)
}

// Update replaces every output shown with the given display_id by d.
func Update(id string, d Data) error {
	d.Transient = merge(d.Transient, MIMEMap{"display_id": id})
	return publish(d, true)
}

// Handle is one output area that can be redrawn in place, the way a
// progress line or a live loss curve should be: showing each state anew
// would bury the notebook under copies.
type Handle struct {
	// ID is the Jupyter display_id shared by the output and its updates.
	ID    string
	shown bool
}

// NewHandle returns a handle whose output is not shown yet.
func NewHandle() *Handle {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Handle{ID: "srmlab-" + hex.EncodeToString(b[:])}
}

// Show displays d under the handle the first time and replaces it after:
// a loop can call Show on every step without first checking whether
// anything is on screen.
func (h *Handle) Show(d Data) error {
	if h.shown {
		return Update(h.ID, d)
	}
	d.Transient = merge(d.Transient, MIMEMap{"display_id": h.ID})
	if err := publish(d, false); err != nil {
		return err
	}
	h.shown = true
	return nil
}
