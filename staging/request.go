package staging

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/paaskit/paaskit/container"
	"github.com/paaskit/paaskit/droplet"
)

// DefaultTimeout is the staging timeout when Request.Timeout is zero
// (dea_ng's max_staging_duration).
const DefaultTimeout = 15 * time.Minute

// Source locates a blob: a key of the Stager's BlobStore (WithBlobStore) or
// an http(s) URL. Exactly one of Key and URL is set.
type Source struct {
	Key string
	URL string
}

// IsZero reports whether s names nothing.
func (s Source) IsZero() bool { return s.Key == "" && s.URL == "" }

func (s Source) validate(field string) error {
	switch {
	case s.Key != "" && s.URL != "":
		return &RequestError{field, "both Key and URL are set"}
	case s.Key != "":
		if err := droplet.ValidKey(s.Key); err != nil {
			return &RequestError{field + ".Key", err.Error()}
		}
	case s.URL != "":
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &RequestError{field + ".URL", "not an http(s) URL"}
		}
	}
	return nil
}

// BuildpackSource is one buildpack of a Request. Exactly one field is set.
type BuildpackSource struct {
	// Dir is a buildpack directory on the host (holding bin/). It is
	// mounted read-only into the staging container.
	Dir string
	// Admin is the key of an admin buildpack: a directory below the
	// Stager's admin buildpack directory (WithAdminBuildpacks).
	Admin string
	// Zip is a zip archive of a buildpack, by blob key or URL. A zip with
	// a single top-level directory holding bin/ is accepted.
	Zip Source
	// Git is a git URL, optionally with "#branch"; it is cloned on the
	// host with the git program, which must be installed.
	Git string
	// Plugin is an in-process buildpack (see Plugin).
	Plugin Plugin
}

// key names the buildpack in logs, errors and staging_info.yml.
func (b BuildpackSource) key() string {
	switch {
	case b.Dir != "":
		return b.Dir
	case b.Admin != "":
		return b.Admin
	case b.Zip.Key != "":
		return b.Zip.Key
	case b.Zip.URL != "":
		return b.Zip.URL
	case b.Git != "":
		return b.Git
	case b.Plugin != nil:
		return b.Plugin.Name()
	}
	return ""
}

// Service is a bound service instance, as it appears in VCAP_SERVICES.
type Service struct {
	Name        string         `json:"name"`
	Label       string         `json:"label"`
	Tags        []string       `json:"tags"`
	Plan        string         `json:"plan"`
	Credentials map[string]any `json:"credentials"`
}

// Request says what to stage. Stage validates it with Validate and does not
// keep it. Required: AppID, Stack, Package and Droplet.
type Request struct {
	// AppID identifies the app (its guid); required. It names the cache
	// directories and the container's properties.
	AppID string
	// AppName is the app's name in VCAP_APPLICATION; optional.
	AppName string
	// Stack names a stack of the Stager (WithStack); required.
	Stack string
	// Package is the app package, a zip file; required.
	Package Source
	// Buildpacks, in order. Empty means detection over the admin
	// buildpacks (AdminBuildpacks, or every admin buildpack by name).
	Buildpacks []BuildpackSource
	// AdminBuildpacks orders the admin buildpacks tried by detection when
	// Buildpacks is empty; optional.
	AdminBuildpacks []string
	// SkipDetect uses every buildpack of Buildpacks in order (all but the
	// last supply, the last finalizes or compiles) without running
	// bin/detect, as `cf push -b A -b B` does. Without it, detection picks
	// the first of Buildpacks that accepts the app.
	SkipDetect bool
	// StartCommand is the user's command (`cf push -c`); it wins over the
	// Procfile and the buildpack's defaults. Optional.
	StartCommand string
	// Env is the user's environment; StagingEnvGroup the platform's
	// staging environment variable group, which Env overrides. Both are
	// exported to the buildpack scripts and written to ENV_DIR.
	Env             map[string]string
	StagingEnvGroup map[string]string
	// Services become VCAP_SERVICES (and DATABASE_URL).
	Services []Service
	// MemoryMB, DiskMB and FDs limit the staging container; zero means
	// the Stager's defaults (1024, 2048, 16384 as dea_ng's staging).
	MemoryMB, DiskMB int64
	FDs              uint64
	// Egress are the staging security group rules; without networking
	// on the container manager they are ignored with a warning.
	Egress []container.NetOutRule
	// Timeout bounds the whole staging; zero means DefaultTimeout.
	Timeout time.Duration
	// CacheSource is the buildpack cache to restore and CacheDest where
	// to save it; both optional. A missing or corrupt cache is a warning.
	CacheSource, CacheDest Source
	// Droplet is where to upload the droplet; required. A URL gets a
	// multipart POST (Cloud Controller's upload URI), a key a BlobStore Put.
	Droplet Source
}

// Validate reports the first problem of r as a *RequestError, or nil.
func (r *Request) Validate() error {
	switch {
	case r.AppID == "":
		return &RequestError{"AppID", "required"}
	case strings.ContainsAny(r.AppID, "/\\\x00") || r.AppID == "." || r.AppID == "..":
		return &RequestError{"AppID", "must not contain slashes"}
	case r.Stack == "":
		return &RequestError{"Stack", "required"}
	case r.Package.IsZero():
		return &RequestError{"Package", "required"}
	case r.Droplet.IsZero():
		return &RequestError{"Droplet", "required"}
	case r.MemoryMB < 0 || r.DiskMB < 0 || r.Timeout < 0:
		return &RequestError{"MemoryMB", "limits must not be negative"}
	case r.SkipDetect && len(r.Buildpacks) == 0:
		return &RequestError{"SkipDetect", "needs Buildpacks"}
	}
	for _, s := range []struct {
		f string
		s Source
	}{{"Package", r.Package}, {"Droplet", r.Droplet}, {"CacheSource", r.CacheSource}, {"CacheDest", r.CacheDest}} {
		if err := s.s.validate(s.f); err != nil {
			return err
		}
	}
	for i, b := range r.Buildpacks {
		f := fmt.Sprintf("Buildpacks[%d]", i)
		n := 0
		for _, set := range []bool{b.Dir != "", b.Admin != "", !b.Zip.IsZero(), b.Git != "", b.Plugin != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return &RequestError{f, "exactly one of Dir, Admin, Zip, Git and Plugin must be set"}
		}
		if err := b.Zip.validate(f + ".Zip"); err != nil {
			return err
		}
		if b.Admin != "" && (strings.ContainsAny(b.Admin, "/\\") || strings.HasPrefix(b.Admin, ".")) {
			return &RequestError{f + ".Admin", "not a buildpack key"}
		}
	}
	for i, k := range r.AdminBuildpacks {
		if k == "" || strings.ContainsAny(k, "/\\") || strings.HasPrefix(k, ".") {
			return &RequestError{fmt.Sprintf("AdminBuildpacks[%d]", i), "not a buildpack key"}
		}
	}
	for k := range r.Env {
		if !validEnvName(k) {
			return &RequestError{"Env", fmt.Sprintf("invalid name %q", k)}
		}
	}
	for k := range r.StagingEnvGroup {
		if !validEnvName(k) {
			return &RequestError{"StagingEnvGroup", fmt.Sprintf("invalid name %q", k)}
		}
	}
	for i := range r.Egress {
		if err := r.Egress[i].Validate(); err != nil {
			return &RequestError{fmt.Sprintf("Egress[%d]", i), err.Error()}
		}
	}
	return nil
}

// validEnvName reports whether k can be a shell variable and a file name.
func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i, c := range k {
		if c != '_' && !(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z') && !(i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
