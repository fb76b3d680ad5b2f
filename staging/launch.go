package staging

import (
	"fmt"
	"path"

	"github.com/paaskit/paaskit/container"
)

// launchScript is Diego's launcher script: cd to the app, source the
// droplet's profile.d/*, then app/.profile.d/*, then app/.profile, and exec
// the command with bash -c. $1 is the app directory, $2 the command.
const launchScript = `cd "$1" || exit 1
if [ -d ../profile.d ]; then
  for f in ../profile.d/*; do [ -f "$f" ] && . "$f"; done
fi
if [ -d .profile.d ]; then
  for f in .profile.d/*; do [ -f "$f" ] && . "$f"; done
fi
if [ -f .profile ]; then . ./.profile; fi
shift
exec bash -c "$@"
`

// LaunchOptions tunes Launch. The zero value is Diego's layout.
type LaunchOptions struct {
	// Root is where the droplet was extracted in the container; default
	// DropletRoot (/home/vcap).
	Root string
}

// Launch returns the process that runs a staged droplet in a container: the
// runtime half of the buildpack contract. command overrides the droplet's
// start command (the user's `cf push -c`); env is the app's environment
// (KEY=value: PORT, VCAP_APPLICATION, user env…), to which HOME (the app
// directory), TMPDIR and DEPS_DIR are added. The process sources
// profile.d/*, app/.profile.d/* and app/.profile in that order, then execs
// `bash -c <command>`, so its exit code is the app's. info may be nil when
// command is given. The process runs as the container's default user
// unless the caller sets User. With no command at all it fails with
// ErrNoStartCommand.
func Launch(info *StagingInfo, command string, env []string, opts LaunchOptions) (container.ProcessSpec, error) {
	root := opts.Root
	if root == "" {
		root = DropletRoot
	}
	if command == "" && info != nil {
		command = info.StartCommand
	}
	if command == "" {
		return container.ProcessSpec{}, ErrNoStartCommand
	}
	if prefix, ok := info.entrypointPrefix(); ok {
		command = prefix + command
	}
	app := path.Join(root, "app")
	out := container.ProcessSpec{
		Path: "/bin/bash",
		Args: []string{"-c", launchScript, "launcher", app, command},
		Dir:  app,
	}
	out.Env = append(out.Env, env...)
	out.Env = append(out.Env,
		"HOME="+app,
		"TMPDIR="+path.Join(root, "tmp"),
		"DEPS_DIR="+path.Join(root, "deps"),
	)
	return out, nil
}

func (info *StagingInfo) entrypointPrefix() (string, bool) {
	if info == nil || info.Config == nil {
		return "", false
	}
	p, ok := info.Config["entrypoint_prefix"].(string)
	if !ok || p == "" {
		return "", false
	}
	return fmt.Sprintf("%s ", p), true
}
