package nats

import (
	"net/url"
	"strings"
)

// RegistryMessage registers or unregisters routes with gorouter
// (router.register, router.unregister). Its fields are gorouter's full
// RegistryMessage schema plus the dea field the DEA adds. A DEA sends
// {dea, app, uris, host, port, tags: {component}, private_instance_id}
// for an instance and {host, port, uris, tags} for its directory server.
type RegistryMessage struct {
	// Host is the address to route to. Required.
	Host string `json:"host"`
	// Port is the plain-text port on Host; required unless TLSPort is
	// set, which gorouter then prefers.
	Port int `json:"port"`
	// TLSPort is the TLS port on Host.
	TLSPort int `json:"tls_port,omitzero"`
	// HTTPVersion is the backend's HTTP version (1 or 2); zero means 1.
	HTTPVersion int `json:"http_version,omitzero"`
	// URIs are the routes. At least one is required.
	URIs []string `json:"uris"`
	// Tags are free-form labels, e.g. {"component": "dea-0"}.
	Tags map[string]string `json:"tags,omitzero"`
	// App is the app's GUID.
	App string `json:"app,omitzero"`
	// DEA is the uuid of the registering DEA.
	DEA string `json:"dea,omitzero"`
	// StaleThresholdInSeconds overrides the router's prune threshold for
	// this route.
	StaleThresholdInSeconds int `json:"stale_threshold_in_seconds,omitzero"`
	// RouteServiceURL is the route service to send requests through; it
	// must be https.
	RouteServiceURL string `json:"route_service_url,omitzero"`
	// PrivateInstanceID is the instance id, for sticky sessions.
	PrivateInstanceID string `json:"private_instance_id,omitzero"`
	// ServerCertDomainSAN is the SAN the backend's certificate must have.
	ServerCertDomainSAN string `json:"server_cert_domain_san,omitzero"`
	// PrivateInstanceIndex is the instance's index, as a string.
	PrivateInstanceIndex string `json:"private_instance_index,omitzero"`
	// IsolationSegment names the router group.
	IsolationSegment string `json:"isolation_segment,omitzero"`
	// EndpointUpdatedAtNs is when the endpoint last changed, in
	// nanoseconds since the epoch.
	EndpointUpdatedAtNs int64 `json:"endpoint_updated_at_ns,omitzero"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// Validate reports a missing host, no port, ports out of range, no or
// empty uris, a negative stale threshold and a route service URL that is
// not https (gorouter's own rule).
func (m RegistryMessage) Validate() error {
	c := checker{msg: "RegistryMessage"}
	c.required("host", m.Host)
	c.port("port", m.Port, m.TLSPort != 0)
	c.port("tls_port", m.TLSPort, true)
	if len(m.URIs) == 0 {
		c.add("uris", "at least one route is required")
	}
	c.nonEmptyEach("uris", m.URIs)
	c.nonNegative("stale_threshold_in_seconds", int64(m.StaleThresholdInSeconds))
	c.nonNegative("endpoint_updated_at_ns", m.EndpointUpdatedAtNs)
	if m.RouteServiceURL != "" {
		if u, err := url.Parse(m.RouteServiceURL); err != nil || !strings.EqualFold(u.Scheme, "https") || u.Host == "" {
			c.add("route_service_url", "must be an https URL, got "+m.RouteServiceURL)
		}
	}
	return c.err()
}

// RouterStartMessage is gorouter's greeting (router.start, and the reply
// to router.greet): whoever registers routes should register them all
// now, and again every MinimumRegisterIntervalInSeconds.
type RouterStartMessage struct {
	// ID identifies the router ("<index>-<uuid>"). Required.
	ID string `json:"id"`
	// Hosts are the router's IP addresses.
	Hosts []string `json:"hosts"`
	// MinimumRegisterIntervalInSeconds is how often routes should be
	// registered again.
	MinimumRegisterIntervalInSeconds int `json:"minimumRegisterIntervalInSeconds"`
	// PruneThresholdInSeconds is how long a route lives without being
	// registered again.
	PruneThresholdInSeconds int `json:"pruneThresholdInSeconds"`
	// Extra holds unknown members (see [Extra]).
	Extra Extra `json:",embed"`
}

// Validate reports a missing id and negative intervals.
func (m RouterStartMessage) Validate() error {
	c := checker{msg: "RouterStartMessage"}
	c.required("id", m.ID)
	c.nonNegative("minimumRegisterIntervalInSeconds", int64(m.MinimumRegisterIntervalInSeconds))
	c.nonNegative("pruneThresholdInSeconds", int64(m.PruneThresholdInSeconds))
	return c.err()
}
