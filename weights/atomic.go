package weights

import (
	"bufio"
	"fmt"

	"github.com/srmlab/srmlab/internal/atomicfile"
)

// writeAtomic replaces path atomically (see atomicfile.Write), so a crash or
// a full disk never leaves a half-written checkpoint under the real name.
func writeAtomic(path string, write func(w *bufio.Writer) error) error {
	if err := atomicfile.Write(path, write); err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	return nil
}
