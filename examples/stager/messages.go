package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/paaskit/paaskit/nats"
	"github.com/paaskit/paaskit/staging"
)

// The nats package types the DEA-era staging request (nats.StagingRequest)
// but not the v1 stager's, so V1Request is defined here.

// V1Request is what Cloud Controller v1 sent the stager on the "staging"
// queue (AppStager.stage_app): the app, its properties and where to fetch
// the package and put the droplet.
type V1Request struct {
	// AppID is the app's id (an integer in v1, a guid later); required.
	AppID FlexString `json:"app_id"`
	// Properties describe the app.
	Properties V1Properties `json:"properties"`
	// DownloadURI is where to fetch the app package (a zip); required.
	DownloadURI string `json:"download_uri"`
	// UploadURI is where to POST the droplet; required.
	UploadURI string `json:"upload_uri"`
}

// V1Properties are a v1 request's properties.
type V1Properties struct {
	// FrameworkInfo names the framework plugin (here: the admin buildpack
	// of that name).
	FrameworkInfo *V1FrameworkInfo `json:"framework_info,omitempty"`
	// Buildpack is a buildpack URL (zip or git) or an admin buildpack key.
	Buildpack string `json:"buildpack,omitempty"`
	// Services are the bound services.
	Services []staging.Service `json:"services,omitempty"`
	// Resources are the app's limits.
	Resources struct {
		Memory int64  `json:"memory"`
		Disk   int64  `json:"disk"`
		FDs    uint64 `json:"fds"`
	} `json:"resources"`
	// Environment is "KEY=VALUE" strings.
	Environment []string `json:"environment,omitempty"`
	// Meta holds the user's command (meta.command).
	Meta json.RawMessage `json:"meta,omitempty"`
}

// V1FrameworkInfo is properties.framework_info.
type V1FrameworkInfo struct {
	Name string `json:"name"`
}

// FlexString is a JSON string or number, kept as a string.
type FlexString string

// UnmarshalJSON accepts a string or a number.
func (f *FlexString) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = FlexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("app_id: want a string or a number: %w", err)
	}
	*f = FlexString(n.String())
	return nil
}

// Validate reports a missing app_id and bad URIs.
func (r *V1Request) Validate() error {
	var errs []error
	if r.AppID == "" {
		errs = append(errs, errors.New("app_id: required"))
	}
	if err := checkURL(r.DownloadURI); err != nil {
		errs = append(errs, fmt.Errorf("download_uri: %w", err))
	}
	if err := checkURL(r.UploadURI); err != nil {
		errs = append(errs, fmt.Errorf("upload_uri: %w", err))
	}
	return errors.Join(errs...)
}

func checkURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}

// V1Reply is the v1 stager's only reply. Error is null on success.
type V1Reply struct {
	TaskID  string  `json:"task_id"`
	TaskLog string  `json:"task_log"`
	Error   *string `json:"error"`
}

// kind says which protocol a request speaks.
type kind int

const (
	kindV1 kind = iota
	kindDEA
)

func (k kind) String() string {
	if k == kindDEA {
		return "dea"
	}
	return "v1"
}

// ErrMalformedRequest is the class of requests that are not a staging
// request of either protocol.
var ErrMalformedRequest = errors.New("stager: malformed request")

// decodeRequest tells the protocols apart (a DEA-era request has task_id)
// and decodes. On error the returned kind and taskID still say how to reply.
func decodeRequest(data []byte) (k kind, taskID string, v1 *V1Request, dea *nats.StagingRequest, err error) {
	var probe struct {
		TaskID json.RawMessage `json:"task_id"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return kindV1, "", nil, nil, fmt.Errorf("%w: %w", ErrMalformedRequest, err)
	}
	if len(probe.TaskID) > 0 && !bytes.Equal(probe.TaskID, []byte("null")) {
		_ = json.Unmarshal(probe.TaskID, &taskID)
		req, err := nats.Decode[nats.StagingRequest](data)
		if err != nil {
			return kindDEA, taskID, nil, nil, fmt.Errorf("%w: %w", ErrMalformedRequest, err)
		}
		return kindDEA, req.TaskID, nil, &req, nil
	}
	var req V1Request
	if err := json.Unmarshal(data, &req); err != nil {
		return kindV1, "", nil, nil, fmt.Errorf("%w: %w", ErrMalformedRequest, err)
	}
	if err := req.Validate(); err != nil {
		return kindV1, "", nil, nil, fmt.Errorf("%w: %w", ErrMalformedRequest, err)
	}
	return kindV1, "", &req, nil, nil
}

// buildpackFor turns a user's buildpack (URL, git URL or admin key) into a
// source.
func buildpackFor(s string) staging.BuildpackSource {
	switch {
	case strings.HasPrefix(s, "git://") || strings.HasSuffix(strings.SplitN(s, "#", 2)[0], ".git"):
		return staging.BuildpackSource{Git: s}
	case strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://"):
		return staging.BuildpackSource{Zip: staging.Source{URL: s}}
	default:
		return staging.BuildpackSource{Admin: s}
	}
}

func startCommand(meta json.RawMessage) string {
	var m struct {
		Command string `json:"command"`
	}
	if len(meta) > 0 {
		_ = json.Unmarshal(meta, &m)
	}
	return m.Command
}

func envMap(kv []string) map[string]string {
	if len(kv) == 0 {
		return nil
	}
	m := make(map[string]string, len(kv))
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		if k != "" {
			m[k] = v
		}
	}
	return m
}

// v1Request turns a v1 request into a staging request.
func (s *Service) v1Request(r *V1Request) staging.Request {
	req := staging.Request{
		AppID:        string(r.AppID),
		Stack:        s.cfg.DefaultStack,
		Package:      staging.Source{URL: r.DownloadURI},
		Droplet:      staging.Source{URL: r.UploadURI},
		Env:          envMap(r.Properties.Environment),
		Services:     r.Properties.Services,
		StartCommand: startCommand(r.Properties.Meta),
		MemoryMB:     max(s.cfg.Container.MemoryMB, r.Properties.Resources.Memory),
		DiskMB:       max(s.cfg.Container.DiskMB, r.Properties.Resources.Disk),
		FDs:          max(s.cfg.Container.FDs, r.Properties.Resources.FDs),
		Timeout:      s.cfg.MaxStagingDuration,
	}
	switch {
	case r.Properties.Buildpack != "":
		req.Buildpacks = []staging.BuildpackSource{buildpackFor(r.Properties.Buildpack)}
	case r.Properties.FrameworkInfo != nil && r.Properties.FrameworkInfo.Name != "":
		// v1's framework plugins: the admin buildpack named after the framework.
		req.Buildpacks = []staging.BuildpackSource{{Admin: r.Properties.FrameworkInfo.Name}}
	}
	return req
}

// deaRequest turns a DEA-era request into a staging request.
func (s *Service) deaRequest(r *nats.StagingRequest) staging.Request {
	p := r.Properties
	req := staging.Request{
		AppID:        r.AppID,
		Stack:        r.Stack,
		Package:      staging.Source{URL: r.DownloadURI},
		Droplet:      staging.Source{URL: r.UploadURI},
		Env:          envMap(p.Environment),
		StartCommand: startCommand(p.Meta),
		MemoryMB:     max(s.cfg.Container.MemoryMB, int64(p.Resources.Memory), int64(r.MemoryLimit)),
		DiskMB:       max(s.cfg.Container.DiskMB, int64(p.Resources.Disk), int64(r.DiskLimit)),
		FDs:          max(s.cfg.Container.FDs, uint64(max(p.Resources.FDs, 0))),
		Timeout:      s.cfg.MaxStagingDuration,
	}
	if req.Stack == "" {
		req.Stack = s.cfg.DefaultStack
	}
	if r.BuildpackCacheDownloadURI != "" {
		req.CacheSource = staging.Source{URL: r.BuildpackCacheDownloadURI}
	}
	if r.BuildpackCacheUploadURI != "" {
		req.CacheDest = staging.Source{URL: r.BuildpackCacheUploadURI}
	}
	for _, raw := range p.Services {
		var svc staging.Service
		if json.Unmarshal(raw, &svc) == nil {
			req.Services = append(req.Services, svc)
		}
	}
	switch {
	case p.BuildpackGitURL != "":
		req.Buildpacks = []staging.BuildpackSource{{Git: p.BuildpackGitURL}}
	case p.BuildpackKey != "":
		req.Buildpacks = []staging.BuildpackSource{{Admin: p.BuildpackKey}}
	case p.Buildpack != "":
		req.Buildpacks = []staging.BuildpackSource{buildpackFor(p.Buildpack)}
	}
	// Admin buildpacks the stager has, in the controller's order.
	for _, bp := range r.AdminBuildpacks {
		if s.cfg.BuildpacksDir == "" || !filepath.IsLocal(bp.Key) {
			continue
		}
		if fi, err := os.Stat(filepath.Join(s.cfg.BuildpacksDir, bp.Key)); err == nil && fi.IsDir() {
			req.AdminBuildpacks = append(req.AdminBuildpacks, bp.Key)
		}
	}
	return req
}

// Error types of the completion reply's error_info, as Cloud Controller
// names them, and the keys of Metrics.Failed.
const (
	ErrTypeNoAppDetected   = "NoAppDetectedError"
	ErrTypeCompileFailed   = "BuildpackCompileFailed"
	ErrTypeReleaseFailed   = "BuildpackReleaseFailed"
	ErrTypeTimeout         = "StagingTimeExpired"
	ErrTypeInsufficient    = "InsufficientResources"
	ErrTypeBusy            = "StagerBusy"
	ErrTypeShuttingDown    = "StagerShuttingDown"
	ErrTypeMalformed       = "MalformedRequest"
	ErrTypeStagingError    = "StagingError"
	ErrTypeInvalidRequest  = "InvalidRequest"
	ErrTypePackageInvalid  = "AppPackageInvalid"
	ErrTypeBuildpackAbsent = "BuildpackNotFound"
	ErrTypeStackNotFound   = "StackNotFound"
)

// errType classifies a staging error.
func errType(err error) string {
	for _, c := range []struct {
		err error
		t   string
	}{
		{staging.ErrTimeout, ErrTypeTimeout},
		{staging.ErrNoAppDetected, ErrTypeNoAppDetected},
		{staging.ErrCompileFailed, ErrTypeCompileFailed},
		{staging.ErrSupplyFailed, ErrTypeCompileFailed},
		{staging.ErrFinalizeFailed, ErrTypeCompileFailed},
		{staging.ErrReleaseFailed, ErrTypeReleaseFailed},
		{staging.ErrInsufficientResources, ErrTypeInsufficient},
		{staging.ErrPackageInvalid, ErrTypePackageInvalid},
		{staging.ErrBuildpackNotFound, ErrTypeBuildpackAbsent},
		{staging.ErrStackNotFound, ErrTypeStackNotFound},
		{staging.ErrInvalidRequest, ErrTypeInvalidRequest},
		{ErrBusy, ErrTypeBusy},
		{ErrShuttingDown, ErrTypeShuttingDown},
		{ErrMalformedRequest, ErrTypeMalformed},
	} {
		if errors.Is(err, c.err) {
			return c.t
		}
	}
	return ErrTypeStagingError
}
