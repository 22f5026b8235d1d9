// Package atomicfile replaces files so that a crash, a kill -9 or a full disk
// at any moment leaves either the old file or the new one under the real
// name, never a mixture: srmlab's checkpoints, weights and metrics tables are
// all written this way, so an interrupted run can always resume.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Write writes path through a temporary file in the same directory that is
// synced and then renamed over path, and then syncs the directory. Errors
// name path.
func Write(path string, write func(w *bufio.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, tempPrefix(base)+"*")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("%s: %w", path, err)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	if err = write(w); err != nil {
		return err
	}
	if err = w.Flush(); err != nil {
		return err
	}
	// CreateTemp makes the file private (0600); these files are ordinary
	// data.
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// RemoveStale deletes the temporary files that a process killed inside Write
// left beside path; a resumed run calls it so that kills do not pile up
// partial copies of large checkpoints.
func RemoveStale(path string) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	stale, err := filepath.Glob(filepath.Join(dir, tempPrefix(base)+"*"))
	if err != nil {
		return err
	}
	for _, s := range stale {
		if err := os.Remove(s); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// tempPrefix starts the temporary files' names with a dot, hiding them from
// listings and globs such as *.safetensors.
func tempPrefix(base string) string { return "." + base + ".tmp" }

// syncDir makes the rename durable. Some file systems cannot sync a
// directory (EINVAL); the rename has still happened there, so that is not
// an error.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
