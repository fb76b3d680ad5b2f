package instance

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTransitionTable checks every pair of states: the legal ones are
// exactly these, and every other is a *TransitionError naming from and
// to.
func TestTransitionTable(t *testing.T) {
	legal := map[[2]State]bool{}
	for _, p := range [][2]State{
		{StateBorn, StateStarting}, {StateBorn, StateStopped}, {StateBorn, StateCrashed},
		{StateBorn, StateResuming}, {StateBorn, StateEvacuating},
		{StateStarting, StateRunning}, {StateStarting, StateStopping}, {StateStarting, StateCrashed}, {StateStarting, StateEvacuating},
		{StateRunning, StateStopping}, {StateRunning, StateCrashed}, {StateRunning, StateEvacuating},
		{StateStopping, StateStopped},
		{StateStopped, StateDeleted},
		{StateCrashed, StateDeleted},
		{StateResuming, StateRunning}, {StateResuming, StateStopping}, {StateResuming, StateCrashed}, {StateResuming, StateEvacuating},
		{StateEvacuating, StateStopping}, {StateEvacuating, StateCrashed},
	} {
		legal[p] = true
	}
	all := append([]State{0, StateEvacuating + 1}, States...)
	n := 0
	for _, from := range all {
		for _, to := range all {
			err := CheckTransition(from, to)
			if legal[[2]State{from, to}] {
				n++
				assert.NoError(t, err, "%s -> %s", from, to)
				assert.True(t, from.CanTransitionTo(to))
				assert.Contains(t, from.Next(), to)
				continue
			}
			te, ok := errors.AsType[*TransitionError](err)
			require.True(t, ok, "%s -> %s: %v", from, to, err)
			assert.Equal(t, from, te.From)
			assert.Equal(t, to, te.To)
			assert.ErrorIs(t, err, ErrIllegalTransition)
			assert.Contains(t, err.Error(), "from "+from.String()+" to "+to.String())
		}
	}
	assert.Equal(t, len(legal), n)
	assert.Empty(t, StateDeleted.Next(), "DELETED is terminal")
}

func TestStateNames(t *testing.T) {
	want := []string{"BORN", "STARTING", "RUNNING", "STOPPING", "STOPPED", "CRASHED", "DELETED", "RESUMING", "EVACUATING"}
	require.Len(t, States, len(want))
	for i, s := range States {
		assert.Equal(t, want[i], s.String())
		p, err := ParseState(want[i])
		require.NoError(t, err)
		assert.Equal(t, s, p)
		b, err := json.Marshal(s)
		require.NoError(t, err)
		assert.Equal(t, `"`+want[i]+`"`, string(b))
		var back State
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, s, back)
	}
	_, err := ParseState("running")
	assert.ErrorIs(t, err, ErrInvalidSpec)
	_, err = State(0).MarshalText()
	assert.Error(t, err)
	assert.Equal(t, "State(42)", State(42).String())
}

func TestReservationsByState(t *testing.T) {
	mem := map[State]bool{StateBorn: true, StateStarting: true, StateRunning: true, StateStopping: true, StateResuming: true, StateEvacuating: true}
	for _, s := range States {
		assert.Equal(t, mem[s], s.reservesMemory(), s.String())
		assert.Equal(t, mem[s] || s == StateCrashed, s.reservesDisk(), s.String())
	}
}
