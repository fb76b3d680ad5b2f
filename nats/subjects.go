package nats

import "strings"

// Subject is a NATS subject that carries messages of type T. The
// package's variables and builders are the subjects of the DEA protocol;
// [Publish] and [Subscribe] take a Subject so that a message can only go
// where its type belongs. The zero value is not usable (its use returns
// [ErrInvalidSubject]).
type Subject[T Message] struct {
	name string
	err  error // from a builder given a bad token
}

// RequestSubject is a NATS subject that carries requests of type Req
// answered with replies of type Rep (one reply, or several: see
// [RequestMany]). The zero value is not usable.
type RequestSubject[Req, Rep Message] struct {
	name string
	err  error
}

// String returns the subject as sent on the wire.
func (s Subject[T]) String() string { return s.name }

// Err returns the error of a subject built from a bad token (see
// [DEAStart]), or of the zero Subject; nil otherwise.
func (s Subject[T]) Err() error { return subjectErr(s.name, s.err) }

// String returns the subject as sent on the wire.
func (s RequestSubject[Req, Rep]) String() string { return s.name }

// Err returns the error of a subject built from a bad token (see
// [StagingStart]), or of the zero RequestSubject; nil otherwise.
func (s RequestSubject[Req, Rep]) Err() error { return subjectErr(s.name, s.err) }

func subjectErr(name string, err error) error {
	if err != nil {
		return err
	}
	if name == "" {
		return &SubjectError{Subject: name, Reason: "zero subject"}
	}
	return nil
}

// The fixed subjects of the DEA protocol. See PROTOCOL.md §1 for who
// sends what when.
var (
	// DEAAdvertise carries each DEA's periodic offer to Cloud Controller.
	DEAAdvertise = Subject[AdvertiseMessage]{name: "dea.advertise"}
	// DEAStop asks DEAs to stop the instances a filter selects.
	DEAStop = Subject[StopMessage]{name: "dea.stop"}
	// DEAUpdate tells DEAs an app's routes or version changed.
	DEAUpdate = Subject[UpdateMessage]{name: "dea.update"}
	// DEAFindDroplet asks DEAs about instances; one reply per instance.
	DEAFindDroplet = RequestSubject[FindDropletRequest, FindDropletResponse]{name: "dea.find.droplet"}
	// DEAHeartbeat carries each DEA's periodic report of its instances.
	DEAHeartbeat = Subject[HeartbeatMessage]{name: "dea.heartbeat"}
	// DEAShutdown carries a DEA's goodbye.
	DEAShutdown = Subject[ShutdownMessage]{name: "dea.shutdown"}
	// DEALocate asks every DEA to advertise now.
	DEALocate = Subject[LocateMessage]{name: "dea.locate"}
	// DropletExited says an instance crashed (or, for older DEAs, stopped).
	DropletExited = Subject[ExitedMessage]{name: "droplet.exited"}
	// RouterRegister adds routes to gorouter.
	RouterRegister = Subject[RegistryMessage]{name: "router.register"}
	// RouterUnregister removes routes from gorouter.
	RouterUnregister = Subject[RegistryMessage]{name: "router.unregister"}
	// RouterStart is gorouter's greeting: register all routes now.
	RouterStart = Subject[RouterStartMessage]{name: "router.start"}
	// RouterGreet asks gorouters for their [RouterStartMessage].
	RouterGreet = RequestSubject[LocateMessage, RouterStartMessage]{name: "router.greet"}
	// StagingStop asks DEAs to stop the staging tasks of an app.
	StagingStop = Subject[StagingStopMessage]{name: "staging.stop"}
	// StagingLocate asks every stager to advertise now.
	StagingLocate = Subject[LocateMessage]{name: "staging.locate"}
	// StagingAdvertise carries each stager's offer.
	StagingAdvertise = Subject[StagingAdvertiseMessage]{name: "staging.advertise"}
)

// DEAStart returns dea.<deaID>.start, on which one DEA receives the
// [StartMessage]s meant for it. deaID is the uuid of the DEA's
// advertisement; "*" gives the wildcard subject, for subscribing to the
// starts of every DEA (a publish to it fails). A deaID that is not one
// subject token (empty, or containing '.', '>', '*' or white space) gives
// a subject whose use returns a [*SubjectError].
func DEAStart(deaID string) Subject[StartMessage] {
	name, err := tokenSubject("dea.", deaID, ".start")
	return Subject[StartMessage]{name: name, err: err}
}

// StagingStart returns staging.<deaID>.start, on which one DEA receives
// [StagingRequest]s; deaID is as for [DEAStart].
func StagingStart(deaID string) RequestSubject[StagingRequest, StagingReply] {
	name, err := tokenSubject("staging.", deaID, ".start")
	return RequestSubject[StagingRequest, StagingReply]{name: name, err: err}
}

func tokenSubject(prefix, token, suffix string) (string, error) {
	name := prefix + token + suffix
	if token == "*" {
		return name, nil
	}
	if token == "" || strings.ContainsAny(token, ".*> \t\r\n\f\v") {
		return name, &SubjectError{Subject: token, Reason: "not a single subject token"}
	}
	return name, nil
}

// checkSubject reports whether name is a valid subject, with wildcards
// allowed or not.
func checkSubject(name string, wildcards bool) error {
	if name == "" {
		return &SubjectError{Subject: name, Reason: "empty"}
	}
	tokens := strings.Split(name, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return &SubjectError{Subject: name, Reason: "empty token"}
		case strings.ContainsAny(t, " \t\r\n\f\v"):
			return &SubjectError{Subject: name, Reason: "white space"}
		case t == "*" || t == ">":
			if !wildcards {
				return &SubjectError{Subject: name, Reason: "wildcards are for subscriptions only"}
			}
			if t == ">" && i != len(tokens)-1 {
				return &SubjectError{Subject: name, Reason: "'>' must be the last token"}
			}
		case strings.ContainsAny(t, "*>"):
			return &SubjectError{Subject: name, Reason: "wildcard inside a token"}
		}
	}
	return nil
}
