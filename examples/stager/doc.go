// Command stager is the standalone stager service of Cloud Foundry v1
// (cloudfoundry-attic/stager), rebuilt on packages staging, droplet and nats.
//
// It subscribes to its queues (by default the subject "staging") in a NATS
// queue group named after each queue, so that several stagers share the work
// and each request is handled by one of them. A request is either the v1
// stager's (app_id, properties with framework_info and buildpack,
// download_uri, upload_uri; see V1Request), answered once with
// {task_id, task_log, error}, or the DEA-era staging request of
// staging.<id>.start (nats.StagingRequest, recognised by its task_id),
// answered twice: a setup reply with the streaming log URL, then the
// completion reply.
//
// Requests run in a bounded worker pool (Config.Workers at once, at most
// Config.QueueSize waiting); a request that finds the queue full is answered
// at once with a "busy" error instead of timing out. Each staging runs in a
// container with the configured limits and Config.MaxStagingDuration, and
// its log is written to a file under the work directory, served over HTTP
// while it grows (the streaming log URL). Metrics are served as JSON at
// /metrics.
//
// Shutdown stops taking requests, lets running stagings finish until its
// deadline (and then cancels them), and answers every request still queued
// with a "shutting down" error: every request gets exactly one final reply.
//
// The service needs Linux and root (containers); main calls container.Init
// first thing, as every program that uses containers must.
package main
