package staging

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// procfileLine is Heroku's Procfile line format: "type: command".
var procfileLine = regexp.MustCompile(`^([A-Za-z0-9_-]+):\s*(.+)$`)

// ParseProcfile reads a Procfile in Heroku's line format ("type: command",
// the command may contain colons; blank lines and "#" comments are
// skipped). A later line for the same type replaces an earlier one.
// A Procfile without any valid line fails with ErrInvalidProcfile.
func ParseProcfile(r io.Reader) (map[string]string, error) {
	types := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if m := procfileLine.FindStringSubmatch(line); m != nil {
			types[m[1]] = strings.TrimSpace(m[2])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProcfile, err)
	}
	if len(types) == 0 {
		return nil, fmt.Errorf("%w: no \"type: command\" line", ErrInvalidProcfile)
	}
	return types, nil
}

// Release is what a buildpack's bin/release prints (or an in-process
// Plugin returns).
type Release struct {
	// DefaultProcessTypes maps process types to commands.
	DefaultProcessTypes map[string]string `yaml:"default_process_types" json:"default_process_types,omitempty"`
	// ConfigVars are environment defaults for the app (Heroku's legacy
	// config_vars); the app's own environment overrides them.
	ConfigVars map[string]string `yaml:"config_vars" json:"config_vars,omitempty"`
	// Addons are recorded but not acted on.
	Addons []string `yaml:"addons" json:"addons,omitempty"`
}

// ParseRelease parses bin/release output. Empty output is an empty
// Release; anything that is not a YAML hash of the known shape fails with
// an error wrapping ErrReleaseFailed.
func ParseRelease(b []byte) (*Release, error) {
	var rel Release
	if strings.TrimSpace(string(b)) == "" {
		return &rel, nil
	}
	if err := yaml.Unmarshal(b, &rel); err != nil {
		return nil, fmt.Errorf("%w: invalid YAML: %w", ErrReleaseFailed, err)
	}
	return &rel, nil
}

// launchYAML is deps/IDX/launch.yml.
type launchYAML struct {
	Processes []struct {
		Type    string `yaml:"type"`
		Command string `yaml:"command"`
	} `yaml:"processes"`
}

// depsConfig is deps/IDX/config.yml.
type depsConfig struct {
	Name    string         `yaml:"name"`
	Version string         `yaml:"version"`
	Config  map[string]any `yaml:"config"`
}

// BuildpackMetadata describes one buildpack used, as Diego's result.json.
type BuildpackMetadata struct {
	Key     string         `json:"key"`
	Name    string         `json:"name,omitempty"`
	Version string         `json:"version,omitempty"`
	Config  map[string]any `json:"config,omitempty"`
}

// StagingInfo is the droplet's staging_info.yml. It is written as JSON,
// which is valid YAML, as Diego writes it; ReadStagingInfo reads both.
type StagingInfo struct {
	DetectedBuildpack string              `json:"detected_buildpack" yaml:"detected_buildpack"`
	StartCommand      string              `json:"start_command" yaml:"start_command"`
	EffectiveProcfile map[string]string   `json:"effective_procfile,omitempty" yaml:"effective_procfile"`
	BuildpackKey      string              `json:"buildpack_key,omitempty" yaml:"buildpack_key"`
	Buildpacks        []BuildpackMetadata `json:"buildpacks,omitempty" yaml:"-"`
	ConfigVars        map[string]string   `json:"config_vars,omitempty" yaml:"config_vars"`
	Config            map[string]any      `json:"config,omitempty" yaml:"config"`
}

// ReadStagingInfo parses a staging_info.yml (JSON or YAML, so dea_ng's and
// Diego's droplets both work).
func ReadStagingInfo(r io.Reader) (*StagingInfo, error) {
	b, err := io.ReadAll(io.LimitReader(r, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("staging: read staging_info.yml: %w", err)
	}
	var info StagingInfo
	if err := yaml.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("staging: parse staging_info.yml: %w", err)
	}
	return &info, nil
}

// Result is the outcome of a successful staging, also Diego's result.json
// document (see JSON).
type Result struct {
	// DropletSHA1 and DropletSize identify the uploaded droplet.
	DropletSHA1 string `json:"droplet_sha1"`
	DropletSize int64  `json:"droplet_size"`
	// DetectedBuildpack is the name detection printed (or config.yml's).
	DetectedBuildpack string `json:"detected_buildpack"`
	// BuildpackKey is the key of the final buildpack.
	BuildpackKey string `json:"buildpack_key"`
	// Buildpacks lists every buildpack used, in order.
	Buildpacks []BuildpackMetadata `json:"buildpacks"`
	// StartCommand is the web command (user > Procfile > release); empty
	// when there is none (a warning was logged).
	StartCommand string `json:"start_command"`
	// ProcessTypes is the effective Procfile.
	ProcessTypes map[string]string `json:"process_types"`
	// Warnings are the warnings printed to the log.
	Warnings []string `json:"warnings,omitempty"`
}

// JSON returns Diego's result.json for r.
func (r *Result) JSON() ([]byte, error) {
	type proc struct {
		Type    string `json:"type"`
		Command string `json:"command"`
	}
	procs := []proc{}
	for _, t := range sortedKeys(r.ProcessTypes) {
		procs = append(procs, proc{t, r.ProcessTypes[t]})
	}
	return json.Marshal(map[string]any{
		"process_types":  r.ProcessTypes,
		"processes":      procs,
		"sidecars":       []any{},
		"lifecycle_type": "buildpack",
		"lifecycle_metadata": map[string]any{
			"detected_buildpack": r.DetectedBuildpack,
			"buildpack_key":      r.BuildpackKey,
			"buildpacks":         r.Buildpacks,
		},
		"execution_metadata": "",
	})
}

// mergeProcessTypes merges layers type by type, later layers winning.
func mergeProcessTypes(layers ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, l := range layers {
		maps.Copy(out, l)
	}
	return out
}

// startCommand is user > Procfile web > release web.
func startCommand(user string, procfile, release map[string]string) string {
	switch {
	case user != "":
		return user
	case procfile["web"] != "":
		return procfile["web"]
	}
	return release["web"]
}
