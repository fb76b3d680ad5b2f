package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

const (
	stateVersion  = 1
	stateFile     = "state.json"
	phaseCreating = "creating"
	phaseActive   = "active"
	phaseStopped  = "stopped"
)

// containerState is what the depot keeps of a container, rewritten
// atomically (write to a temporary file, rename) on every change.
type containerState struct {
	Version        int        `json:"version"`
	Handle         string     `json:"handle"`
	Phase          string     `json:"phase"`
	Spec           Spec       `json:"spec"`
	Stack          string     `json:"stack,omitempty"` // the overlay's lower directory
	CgroupPath     string     `json:"cgroup_path"`
	AgentPID       int        `json:"agent_pid,omitempty"`
	AgentStartTime uint64     `json:"agent_start_time,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	Events         []string   `json:"events,omitempty"`
	OOMKills       uint64     `json:"oom_kills,omitempty"`
	Net            *netState  `json:"net,omitempty"`
	Disk           *diskState `json:"disk,omitempty"`
}

func writeState(dir string, st *containerState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, stateFile), b); err != nil {
		return fmt.Errorf("container %q: write state: %w", st.Handle, err)
	}
	return nil
}

// writeFileAtomic replaces path with data (mode 0600) by writing a
// temporary file beside it and renaming it over path, so that a reader or
// a crash of this process never sees half a file. It does not fsync, as
// renameio would: the state it writes describes running processes, which
// do not survive the power loss that fsync guards against, and an fsync
// costs milliseconds per write on many disks.
func writeFileAtomic(path string, data []byte) (retErr error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func loadState(dir string) (*containerState, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var st containerState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("container: state %s: %w", dir, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("container: state %s: version %d, want %d", dir, st.Version, stateVersion)
	}
	return &st, nil
}
