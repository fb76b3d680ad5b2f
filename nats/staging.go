package nats

import (
	"encoding/json"
	"fmt"
)

// StagingRequest asks one DEA to stage an app (staging.<uuid>.start, see
// [StagingStart]). The DEA answers twice on the request's inbox: a
// [StagingReply] when the staging container is ready (with the URL to
// stream the log from), and another when the droplet is uploaded (with
// its SHA-1 and what was detected). A failure before the container is
// ready is a single reply with Error set.
type StagingRequest struct {
	// AppID is the app's GUID. Required.
	AppID string `json:"app_id"`
	// Stack is the stack to stage on.
	Stack string `json:"stack,omitzero"`
	// TaskID identifies this staging task. Required.
	TaskID string `json:"task_id"`
	// Properties describe the app.
	Properties StagingProperties `json:"properties"`
	// DownloadURI is where to download the app package. Required.
	DownloadURI string `json:"download_uri"`
	// UploadURI is where to upload the droplet. Required.
	UploadURI string `json:"upload_uri"`
	// BuildpackCacheDownloadURI and BuildpackCacheUploadURI are where the
	// buildpack cache is fetched from and saved to.
	BuildpackCacheDownloadURI string `json:"buildpack_cache_download_uri,omitzero"`
	BuildpackCacheUploadURI   string `json:"buildpack_cache_upload_uri,omitzero"`
	// StartMessage, when set, asks the DEA to start instance 0 of the app
	// itself once staged, with SHA1 set to the new droplet's.
	StartMessage *StartMessage `json:"start_message,omitzero"`
	// AdminBuildpacks are the buildpacks to try, in order.
	AdminBuildpacks []AdminBuildpack `json:"admin_buildpacks,omitzero"`
	// EgressNetworkRules are the staging security group rules.
	EgressNetworkRules []EgressRule `json:"egress_network_rules,omitzero"`
	// MemoryLimit and DiskLimit, in MiB, override the staging container's
	// limits; zero means the DEA's minimums.
	MemoryLimit int `json:"memory_limit,omitzero"`
	DiskLimit   int `json:"disk_limit,omitzero"`
	// AcceptsHTTP says Cloud Controller takes the result by HTTP callback.
	AcceptsHTTP bool `json:"accepts_http,omitzero"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// Validate reports missing app_id, task_id, download_uri or upload_uri,
// URLs that are not absolute, negative resources and limits, admin
// buildpacks without key or url, and what [StartMessage.Validate]
// reports of the start message (whose sha1 may be empty here).
func (m StagingRequest) Validate() error {
	c := checker{msg: "StagingRequest"}
	c.required("app_id", m.AppID)
	c.required("task_id", m.TaskID)
	c.absURL("download_uri", m.DownloadURI, true)
	c.absURL("upload_uri", m.UploadURI, true)
	c.absURL("buildpack_cache_download_uri", m.BuildpackCacheDownloadURI, false)
	c.absURL("buildpack_cache_upload_uri", m.BuildpackCacheUploadURI, false)
	r := m.Properties.Resources
	c.nonNegative("properties.resources.memory", int64(r.Memory))
	c.nonNegative("properties.resources.disk", int64(r.Disk))
	c.nonNegative("properties.resources.fds", int64(r.FDs))
	c.env("properties.environment", m.Properties.Environment)
	c.nonNegative("memory_limit", int64(m.MemoryLimit))
	c.nonNegative("disk_limit", int64(m.DiskLimit))
	for i, b := range m.AdminBuildpacks {
		c.required(fmt.Sprintf("admin_buildpacks[%d].key", i), b.Key)
		c.absURL(fmt.Sprintf("admin_buildpacks[%d].url", i), b.URL, true)
	}
	checkEgress(&c, "egress_network_rules", m.EgressNetworkRules)
	if m.StartMessage != nil {
		m.StartMessage.check(&c, "start_message.", false)
	}
	return c.err()
}

// StagingProperties describe the app to stage.
type StagingProperties struct {
	// Services are the service bindings, kept verbatim.
	Services []json.RawMessage `json:"services"`
	// Resources are the app's limits.
	Resources StagingResources `json:"resources"`
	// Environment is the staging environment as "KEY=VALUE" strings.
	Environment []string `json:"environment"`
	// Meta is the app's metadata (meta.command is the user's start
	// command), kept verbatim.
	Meta json.RawMessage `json:"meta,omitzero"`
	// Buildpack, BuildpackGitURL and BuildpackKey name the buildpack the
	// user asked for: a URL or name, a git URL, or an admin buildpack key.
	Buildpack       string `json:"buildpack,omitzero"`
	BuildpackGitURL string `json:"buildpack_git_url,omitzero"`
	BuildpackKey    string `json:"buildpack_key,omitzero"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// StagingResources are the app's limits as the staging request gives
// them: memory and disk in MiB, and file descriptors.
type StagingResources struct {
	// Memory is the app's memory limit in MiB.
	Memory int `json:"memory"`
	// Disk is the app's disk quota in MiB.
	Disk int `json:"disk"`
	// FDs is the app's limit on open file descriptors.
	FDs int `json:"fds"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// AdminBuildpack is a buildpack installed by the operator.
type AdminBuildpack struct {
	// Key identifies it (the blobstore key).
	Key string `json:"key"`
	// URL is where to download it.
	URL string `json:"url"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// StagingReply is one reply to a [StagingRequest]: the setup reply
// (TaskID, TaskStreamingLogURL, maybe Error) or the completion reply
// (which adds DetectedBuildpack, BuildpackKey, DropletSHA1,
// DetectedStartCommand, Procfile, AppID, and Error and ErrorInfo on
// failure). Both arrive on the same inbox, in that order; [StagingReply.Final] tells
// whether a reply ends the task.
type StagingReply struct {
	// TaskID is the staging task's id. Required.
	TaskID string `json:"task_id"`
	// TaskStreamingLogURL is where to stream the staging log from while
	// it runs.
	TaskStreamingLogURL string `json:"task_streaming_log_url,omitzero"`
	// DetectedBuildpack is the name the buildpack's detect printed.
	DetectedBuildpack string `json:"detected_buildpack,omitzero"`
	// BuildpackKey is the key of the admin buildpack used.
	BuildpackKey string `json:"buildpack_key,omitzero"`
	// DropletSHA1 is the hex SHA-1 of the uploaded droplet.
	DropletSHA1 string `json:"droplet_sha1,omitzero"`
	// DetectedStartCommand is the start command from the buildpack's
	// release or the app's Procfile.
	DetectedStartCommand string `json:"detected_start_command,omitzero"`
	// Procfile is the app's Procfile as staging found it, kept verbatim.
	Procfile json.RawMessage `json:"procfile,omitzero"`
	// AppID is the app's GUID.
	AppID string `json:"app_id,omitzero"`
	// Error is set when staging failed, e.g. "Error staging: task
	// stopped" or "Not enough memory resources available".
	Error string `json:"error,omitzero"`
	// ErrorInfo classifies the failure.
	ErrorInfo *StagingErrorInfo `json:"error_info,omitzero"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// Final reports whether r ends the staging task: it failed, or the
// droplet is uploaded.
func (r StagingReply) Final() bool {
	return r.Error != "" || r.ErrorInfo != nil || r.DropletSHA1 != ""
}

// Failure returns a [*StagingError] when r reports a failure, else nil.
func (r StagingReply) Failure() error {
	if r.Error == "" && r.ErrorInfo == nil {
		return nil
	}
	e := &StagingError{TaskID: r.TaskID, Message: r.Error}
	if r.ErrorInfo != nil {
		e.Type = r.ErrorInfo.Type
		if e.Message == "" {
			e.Message = r.ErrorInfo.Message
		}
	}
	return e
}

// Validate reports a missing task_id and a malformed droplet_sha1.
func (r StagingReply) Validate() error {
	c := checker{msg: "StagingReply"}
	c.required("task_id", r.TaskID)
	if r.DropletSHA1 != "" {
		c.sha1("droplet_sha1", r.DropletSHA1)
	}
	c.absURL("task_streaming_log_url", r.TaskStreamingLogURL, false)
	return c.err()
}

// StagingErrorInfo classifies a staging failure.
type StagingErrorInfo struct {
	// Type is e.g. "NoAppDetectedError" or "BuildpackCompileFailed".
	Type string `json:"type"`
	// Message is for humans.
	Message string `json:"message"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// StagingStopMessage asks every DEA to stop the staging tasks of an app
// (staging.stop). Cloud Controller sends it before every staging.
type StagingStopMessage struct {
	// AppID is the app's GUID. Required.
	AppID string `json:"app_id"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// Validate reports a missing app_id.
func (m StagingStopMessage) Validate() error {
	c := checker{msg: "StagingStopMessage"}
	c.required("app_id", m.AppID)
	return c.err()
}
