package instance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/paaskit/paaskit/container"
	"go.yaml.in/yaml/v3"
)

// ProcessID is the id of the app's process in its container (the
// snapshot's warden_job_id).
const ProcessID = "app"

// Launch is what a Launcher builds the app's process from.
type Launch struct {
	// Attributes of the instance (ports known).
	Attributes Attributes
	// Command is the start command: the Spec's, else the droplet's
	// staging_info.yml start_command. Empty for a legacy droplet (see
	// Legacy).
	Command string
	// Legacy is set for a droplet with no staging_info.yml and a
	// "startup" script at its root (droplets of the first stagers),
	// which is then what runs.
	Legacy bool
	// Env is the process's environment (see Environment).
	Env []string
	// User runs the process (the Manager's app user, "vcap" by default).
	User string
}

// Launcher turns a Launch into the process to run in the container. The
// Manager uses DefaultLauncher unless WithLauncher says otherwise; the
// process's ID must be ProcessID.
//
// The launcher belongs with staging (it sources what buildpacks wrote);
// until package staging offers one, this package has its own.
type Launcher func(l Launch) (container.ProcessSpec, error)

// launchScript runs the start command as Diego's launcher and dea_ng's
// startup script did (BUILDPACKS.md): umask 077, GEM_PATH unset, source
// the droplet's profile.d/*, then app/.profile.d/* and app/.profile,
// record the shell's pid in run.pid, then exec the command with bash -c
// in app/. The command is $1, never interpolated.
const launchScript = `umask 077
unset GEM_PATH
__paaskit_cmd=$1
cd ` + HomeDir + ` || exit 1
for __paaskit_f in ./profile.d/*; do [ -f "$__paaskit_f" ] && [ -r "$__paaskit_f" ] && . "$__paaskit_f"; done
cd app || exit 1
for __paaskit_f in ./.profile.d/*; do [ -f "$__paaskit_f" ] && [ -r "$__paaskit_f" ] && . "$__paaskit_f"; done
[ -f ./.profile ] && [ -r ./.profile ] && . ./.profile
unset __paaskit_f
echo $$ >> ../run.pid
exec bash -c "$__paaskit_cmd"
`

const legacyScript = `umask 077
cd ` + HomeDir + ` || exit 1
exec ./startup
`

// DefaultLauncher runs Launch.Command through /bin/bash with
// launchScript, as l.User, in HomeDir, with l.Env, RLIMIT_NOFILE set to
// the instance's fds limit.
func DefaultLauncher(l Launch) (container.ProcessSpec, error) {
	spec := container.ProcessSpec{
		ID:   ProcessID,
		Path: "/bin/bash",
		Env:  l.Env,
		Dir:  HomeDir,
		User: l.User,
	}
	switch {
	case l.Legacy:
		spec.Args = []string{"-c", legacyScript}
	case l.Command == "":
		return container.ProcessSpec{}, userErr(DescMissingCommand, nil)
	default:
		spec.Args = []string{"-c", launchScript, "launcher", l.Command}
	}
	if fds := l.Attributes.Limits.FDs; fds > 0 {
		n := uint64(fds)
		spec.Limits.Nofile = &n
	}
	return spec, nil
}

// stagingInfo is the droplet's staging_info.yml (JSON from Diego, YAML
// from dea_ng).
type stagingInfo struct {
	DetectedBuildpack string `yaml:"detected_buildpack"`
	StartCommand      string `yaml:"start_command"`
}

// resolveCommand reads the start command of the droplet extracted in
// home: spec's command, else staging_info.yml's; legacy when there is
// neither a staging_info.yml nor a command but a startup script.
func resolveCommand(home, specCommand string) (cmd string, legacy bool, err error) {
	if specCommand != "" {
		return specCommand, false, nil
	}
	b, err := os.ReadFile(filepath.Join(home, "staging_info.yml"))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(filepath.Join(home, "startup")); serr == nil {
			return "", true, nil
		}
		return "", false, userErr(DescMissingCommand, nil)
	}
	if err != nil {
		return "", false, err
	}
	var si stagingInfo
	if err := yaml.Unmarshal(b, &si); err != nil {
		return "", false, userErr(DescFailedToStart, fmt.Errorf("staging_info.yml: %w", err))
	}
	if si.StartCommand == "" {
		return "", false, userErr(DescMissingCommand, nil)
	}
	return si.StartCommand, false, nil
}
