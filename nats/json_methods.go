package nats

// The methods below make every message type encode and decode with the
// standard library's encoding/json exactly as with [Encode] and [Decode]
// (unknown members kept in Extra, deterministic member order), by
// delegating to this package's JSON codec on a method-less copy of the
// type. Every type follows the same pattern; keep it when adding one.

type limitsPlain Limits

// MarshalJSON implements [encoding/json.Marshaler].
func (m Limits) MarshalJSON() ([]byte, error) { return marshalJSON((limitsPlain)(m)) }

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *Limits) UnmarshalJSON(b []byte) error { return unmarshalJSON(b, (*limitsPlain)(m)) }

type egressRulePlain EgressRule

// MarshalJSON implements [encoding/json.Marshaler].
func (m EgressRule) MarshalJSON() ([]byte, error) { return marshalJSON((egressRulePlain)(m)) }

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *EgressRule) UnmarshalJSON(b []byte) error { return unmarshalJSON(b, (*egressRulePlain)(m)) }

type startMessagePlain StartMessage

// MarshalJSON implements [encoding/json.Marshaler].
func (m StartMessage) MarshalJSON() ([]byte, error) { return marshalJSON((startMessagePlain)(m)) }

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *StartMessage) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*startMessagePlain)(m))
}

type stopMessagePlain StopMessage

// MarshalJSON implements [encoding/json.Marshaler].
func (m StopMessage) MarshalJSON() ([]byte, error) { return marshalJSON((stopMessagePlain)(m)) }

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *StopMessage) UnmarshalJSON(b []byte) error { return unmarshalJSON(b, (*stopMessagePlain)(m)) }

type updateMessagePlain UpdateMessage

// MarshalJSON implements [encoding/json.Marshaler].
func (m UpdateMessage) MarshalJSON() ([]byte, error) { return marshalJSON((updateMessagePlain)(m)) }

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *UpdateMessage) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*updateMessagePlain)(m))
}

type findDropletRequestPlain FindDropletRequest

// MarshalJSON implements [encoding/json.Marshaler].
func (m FindDropletRequest) MarshalJSON() ([]byte, error) {
	return marshalJSON((findDropletRequestPlain)(m))
}

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *FindDropletRequest) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*findDropletRequestPlain)(m))
}

type findDropletResponsePlain FindDropletResponse

// MarshalJSON implements [encoding/json.Marshaler].
func (m FindDropletResponse) MarshalJSON() ([]byte, error) {
	return marshalJSON((findDropletResponsePlain)(m))
}

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *FindDropletResponse) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*findDropletResponsePlain)(m))
}

type instanceStatsPlain InstanceStats

// MarshalJSON implements [encoding/json.Marshaler].
func (m InstanceStats) MarshalJSON() ([]byte, error) { return marshalJSON((instanceStatsPlain)(m)) }

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *InstanceStats) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*instanceStatsPlain)(m))
}

type instanceUsagePlain InstanceUsage

// MarshalJSON implements [encoding/json.Marshaler].
func (m InstanceUsage) MarshalJSON() ([]byte, error) { return marshalJSON((instanceUsagePlain)(m)) }

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *InstanceUsage) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*instanceUsagePlain)(m))
}

type heartbeatInstancePlain HeartbeatInstance

// MarshalJSON implements [encoding/json.Marshaler].
func (m HeartbeatInstance) MarshalJSON() ([]byte, error) {
	return marshalJSON((heartbeatInstancePlain)(m))
}

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *HeartbeatInstance) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*heartbeatInstancePlain)(m))
}

type exitedMessagePlain ExitedMessage

// MarshalJSON implements [encoding/json.Marshaler].
func (m ExitedMessage) MarshalJSON() ([]byte, error) { return marshalJSON((exitedMessagePlain)(m)) }

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *ExitedMessage) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*exitedMessagePlain)(m))
}

type shutdownMessagePlain ShutdownMessage

// MarshalJSON implements [encoding/json.Marshaler].
func (m ShutdownMessage) MarshalJSON() ([]byte, error) { return marshalJSON((shutdownMessagePlain)(m)) }

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *ShutdownMessage) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*shutdownMessagePlain)(m))
}

type advertiseMessagePlain AdvertiseMessage

// MarshalJSON implements [encoding/json.Marshaler].
func (m AdvertiseMessage) MarshalJSON() ([]byte, error) {
	return marshalJSON((advertiseMessagePlain)(m))
}

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *AdvertiseMessage) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*advertiseMessagePlain)(m))
}

type placementPropertiesPlain PlacementProperties

// MarshalJSON implements [encoding/json.Marshaler].
func (m PlacementProperties) MarshalJSON() ([]byte, error) {
	return marshalJSON((placementPropertiesPlain)(m))
}

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *PlacementProperties) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*placementPropertiesPlain)(m))
}

type stagingAdvertiseMessagePlain StagingAdvertiseMessage

// MarshalJSON implements [encoding/json.Marshaler].
func (m StagingAdvertiseMessage) MarshalJSON() ([]byte, error) {
	return marshalJSON((stagingAdvertiseMessagePlain)(m))
}

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *StagingAdvertiseMessage) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*stagingAdvertiseMessagePlain)(m))
}

type registryMessagePlain RegistryMessage

// MarshalJSON implements [encoding/json.Marshaler].
func (m RegistryMessage) MarshalJSON() ([]byte, error) { return marshalJSON((registryMessagePlain)(m)) }

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *RegistryMessage) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*registryMessagePlain)(m))
}

type routerStartMessagePlain RouterStartMessage

// MarshalJSON implements [encoding/json.Marshaler].
func (m RouterStartMessage) MarshalJSON() ([]byte, error) {
	return marshalJSON((routerStartMessagePlain)(m))
}

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *RouterStartMessage) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*routerStartMessagePlain)(m))
}

type stagingRequestPlain StagingRequest

// MarshalJSON implements [encoding/json.Marshaler].
func (m StagingRequest) MarshalJSON() ([]byte, error) { return marshalJSON((stagingRequestPlain)(m)) }

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *StagingRequest) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*stagingRequestPlain)(m))
}

type stagingPropertiesPlain StagingProperties

// MarshalJSON implements [encoding/json.Marshaler].
func (m StagingProperties) MarshalJSON() ([]byte, error) {
	return marshalJSON((stagingPropertiesPlain)(m))
}

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *StagingProperties) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*stagingPropertiesPlain)(m))
}

type stagingResourcesPlain StagingResources

// MarshalJSON implements [encoding/json.Marshaler].
func (m StagingResources) MarshalJSON() ([]byte, error) {
	return marshalJSON((stagingResourcesPlain)(m))
}

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *StagingResources) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*stagingResourcesPlain)(m))
}

type adminBuildpackPlain AdminBuildpack

// MarshalJSON implements [encoding/json.Marshaler].
func (m AdminBuildpack) MarshalJSON() ([]byte, error) { return marshalJSON((adminBuildpackPlain)(m)) }

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *AdminBuildpack) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*adminBuildpackPlain)(m))
}

type stagingReplyPlain StagingReply

// MarshalJSON implements [encoding/json.Marshaler].
func (m StagingReply) MarshalJSON() ([]byte, error) { return marshalJSON((stagingReplyPlain)(m)) }

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *StagingReply) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*stagingReplyPlain)(m))
}

type stagingErrorInfoPlain StagingErrorInfo

// MarshalJSON implements [encoding/json.Marshaler].
func (m StagingErrorInfo) MarshalJSON() ([]byte, error) {
	return marshalJSON((stagingErrorInfoPlain)(m))
}

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *StagingErrorInfo) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*stagingErrorInfoPlain)(m))
}

type stagingStopMessagePlain StagingStopMessage

// MarshalJSON implements [encoding/json.Marshaler].
func (m StagingStopMessage) MarshalJSON() ([]byte, error) {
	return marshalJSON((stagingStopMessagePlain)(m))
}

// UnmarshalJSON implements [encoding/json.Unmarshaler].
func (m *StagingStopMessage) UnmarshalJSON(b []byte) error {
	return unmarshalJSON(b, (*stagingStopMessagePlain)(m))
}

type heartbeatMessagePlain HeartbeatMessage

// MarshalJSON implements [encoding/json.Marshaler].
func (m HeartbeatMessage) MarshalJSON() ([]byte, error) {
	return marshalJSON((heartbeatMessagePlain)(m))
}

// UnmarshalJSON implements [encoding/json.Unmarshaler]. It replaces *m.
// Payloads of the shape DEAs send (only known members, strings without
// escapes, integer indices) take a fast path that reads the bytes
// directly; anything else goes through the general decoder, with the same
// result.
func (m *HeartbeatMessage) UnmarshalJSON(b []byte) error {
	if fast, ok := decodeHeartbeatFast(b); ok {
		*m = fast
		return nil
	}
	*m = HeartbeatMessage{}
	return unmarshalJSON(b, (*heartbeatMessagePlain)(m))
}

type locateMessagePlain LocateMessage

// MarshalJSON implements [encoding/json.Marshaler].
func (m LocateMessage) MarshalJSON() ([]byte, error) { return marshalJSON((locateMessagePlain)(m)) }

// UnmarshalJSON implements [encoding/json.Unmarshaler]. An empty or
// blank payload is an empty LocateMessage.
func (m *LocateMessage) UnmarshalJSON(b []byte) error {
	if isBlank(b) {
		*m = LocateMessage{}
		return nil
	}
	return unmarshalJSON(b, (*locateMessagePlain)(m))
}
