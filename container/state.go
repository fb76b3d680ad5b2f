package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"
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
	Version        int       `json:"version"`
	Handle         string    `json:"handle"`
	Phase          string    `json:"phase"`
	Spec           Spec      `json:"spec"`
	Stack          string    `json:"stack,omitempty"` // the overlay's lower directory
	CgroupPath     string    `json:"cgroup_path"`
	AgentPID       int       `json:"agent_pid,omitempty"`
	AgentStartTime uint64    `json:"agent_start_time,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	Events         []string  `json:"events,omitempty"`
	OOMKills       uint64    `json:"oom_kills,omitempty"`
	Net            *netState `json:"net,omitempty"`
}

func writeState(dir string, st *containerState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(filepath.Join(dir, stateFile), b, 0o600); err != nil {
		return fmt.Errorf("container %q: write state: %w", st.Handle, err)
	}
	return nil
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
