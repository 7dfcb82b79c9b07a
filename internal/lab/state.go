package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// StateFile is the name of the state file in a lab dir.
const StateFile = "lab.json"

// State records what a lab dir holds, so a later process (imagefs-lab down)
// can tear down what an earlier one (imagefs-lab up) set up.
type State struct {
	Dir         string        `json:"dir"`
	Mounts      []*Mount      `json:"mounts"`
	Containerds []*Containerd `json:"containerds"`
	Images      []string      `json:"images,omitempty"` // refs imported
}

// ReadState reads dir/lab.json; the error wraps fs.ErrNotExist if there is none.
func ReadState(dir string) (*State, error) {
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, fmt.Errorf("reading lab state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("reading lab state %s: %w", filepath.Join(dir, StateFile), err)
	}
	s.Dir = dir
	return &s, nil
}

// Save writes s to s.Dir/lab.json atomically (a crash never leaves half a file).
func (s *State) Save() error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("saving lab state: %w", err)
	}
	tmp := filepath.Join(s.Dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("saving lab state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.Dir, StateFile)); err != nil {
		return fmt.Errorf("saving lab state: %w", err)
	}
	return nil
}

// Teardown stops every recorded containerd, then unmounts every recorded
// mount, newest first. Each step is idempotent, so a failed Teardown can be
// retried.
func (s *State) Teardown() error {
	var errs []error
	for i := len(s.Containerds) - 1; i >= 0; i-- {
		if err := s.Containerds[i].Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(s.Mounts) - 1; i >= 0; i-- {
		if err := s.Mounts[i].Unmount(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Down tears down the lab recorded in dir/lab.json and removes dir. A dir that
// no longer exists is already down (nil). A dir without lab.json is left alone:
// it is not ours to delete.
func Down(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	s, err := ReadState(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("%s has no %s, so it is not a lab dir; leaving it alone", dir, StateFile)
	}
	if err != nil {
		return err
	}
	if err := s.Teardown(); err != nil {
		return fmt.Errorf("lab down %s: %w (state kept; retry down)", dir, err)
	}
	// RemoveAll would descend into anything still mounted: check first.
	if left, err := MountsUnder(dir); err != nil || len(left) > 0 {
		return fmt.Errorf("lab down %s: still mounted below it: %v %v (state kept; retry down)", dir, left, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("lab down %s: %w", dir, err)
	}
	return nil
}
