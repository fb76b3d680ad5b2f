// Package nats carries the DEA protocol of Cloud Foundry over NATS: every
// message as a typed Go struct with the wire's field names, a [Bus] on the
// official client (github.com/nats-io/nats.go) with typed publish,
// subscribe, request and multi-reply request, and subject builders. The
// embedded server is in the subpackage natsserver, so that programs which
// connect to a real NATS cluster do not link it; natstest has helpers for
// tests.
//
// It does not decide what to do with the messages: the daemons under
// examples/ do. It needs no privileges and works on every platform.
//
// # Messages
//
// One type per message of PROTOCOL.md §1, with JSON member names exactly
// as Cloud Controller, the DEA and gorouter wrote them:
//
//	dea.advertise            AdvertiseMessage          DEA → CC, every 5 s
//	dea.<uuid>.start         StartMessage              CC → one DEA (DEAStart)
//	dea.stop                 StopMessage               CC → DEAs
//	dea.update               UpdateMessage             CC → DEAs
//	dea.find.droplet         FindDropletRequest        CC → DEAs, one
//	                         → FindDropletResponse     reply per instance
//	dea.heartbeat            HeartbeatMessage          DEA → health manager
//	droplet.exited           ExitedMessage             DEA → CC
//	dea.shutdown             ShutdownMessage           DEA → CC
//	dea.locate               LocateMessage             CC → DEAs: advertise now
//	router.register          RegistryMessage           DEA → gorouter
//	router.unregister        RegistryMessage           DEA → gorouter
//	router.start             RouterStartMessage        gorouter → all
//	router.greet             LocateMessage             → RouterStartMessage
//	staging.<uuid>.start     StagingRequest            CC → one DEA (StagingStart),
//	                         → StagingReply ×2         setup reply, completion reply
//	staging.stop             StagingStopMessage        CC → DEAs
//	staging.locate           LocateMessage             CC → stagers
//	staging.advertise        StagingAdvertiseMessage   stager → CC
//
// Subjects are typed values ([Subject], [RequestSubject]): [Publish] on
// [DEAHeartbeat] only takes a [HeartbeatMessage], and the subjects with a
// DEA's uuid in them are built by [DEAStart] and [StagingStart], which
// check the uuid is one subject token. Subjects the DEA dropped before
// 2016 and never used by the DEA of HEAD (dea.status, dea.discover,
// droplet.status, the dea.start hello, healthmanager.start) and the
// health manager's own hm9000.* messages are not included.
//
// A message decoded from what a Cloud Controller of that era sent encodes
// back to the same JSON (testdata/golden holds one file per message; a
// null and an absent member count as the same). Members a type does not
// know are kept, by name, in its Extra field and written back when the
// message is encoded, at every level (a start message's limits too), so a
// message from a newer peer passes through unchanged. Members whose
// content the protocol leaves open (services, vcap_application, meta,
// procfile) are kept verbatim as json.RawMessage.
//
// # Validation and errors
//
// Every message has Validate, reporting each broken rule (a missing
// droplet, sha1 or executableUri in a start message, negative limits, a
// stop message with nothing to match, an unknown state, a route service
// that is not https, ...) as a [*ValidationError] naming the wire path of
// the field, joined with errors.Join. [Encode] refuses invalid messages;
// [Decode] returns a [*DecodeError] for bytes that are not the message's
// JSON. The bus validates what it sends and what it receives: an invalid
// message is never sent, and a malformed or invalid one received never
// reaches a handler; it is counted ([Bus.Stats]) and reported to the
// error handler ([WithErrorHandler]). The decoders never panic (they are
// fuzzed: see fuzz_test.go). Errors match the sentinels of errors.go with
// errors.Is.
//
// The types encode and decode with encoding/json as well, with the same
// results. Internally the package uses github.com/go-json-experiment/json
// (the reference implementation of encoding/json/v2), for Extra and for
// speed; no type of it is part of the API. A heartbeat of the usual shape
// takes a hand-written fast path, checked against the general decoder by
// a fuzzer: 1,000 instances decode in well under a millisecond.
//
// # The bus
//
// [Connect] returns a [Bus]; [Publish], [Subscribe], [Request],
// [RequestMany], [Replies] and [Handle] are functions (Go methods cannot
// have type parameters). Subscriptions may join a queue group
// ([WithQueue]) so that each message reaches one member.
//
// Handlers run on the subscription's goroutine, one message at a time in
// order, or on up to n goroutines with [WithWorkers]; never on the
// connection's reader. Messages waiting for a busy handler are held by
// the client up to [WithPendingLimits]; past that they are dropped and
// the drop is reported ([ErrSlowConsumer], [Subscription.Dropped]): a
// slow handler delays its own subscription, never the connection.
//
// [RequestMany] is how Cloud Controller asked: collect replies until a
// count or a time window ([Gather]), as for dea.find.droplet, where every
// DEA answers once per matching instance. [Replies] yields replies as they
// come, for staging, whose first reply (the streaming-log URL) comes
// minutes before the second. Multi-reply requests share one wildcard
// inbox subscription per bus.
//
// [Bus.Drain] stops receiving, lets handlers finish (they can still
// reply), sends what was published and closes; [Bus.Close] closes at
// once, cancelling the handlers' context, and waits for them.
//
// # Reconnection, and what can be lost
//
// By default a bus reconnects forever (as the DEA did), every 250 ms
// plus up to 100 ms of jitter, and pings every 20 s, giving up on a
// connection after 3 unanswered pings. While disconnected:
//
//   - Publish keeps messages in a buffer of 8 MiB
//     ([WithReconnectBufferSize]) and sends them, in order, on reconnect,
//     after subscribing again. A publish that does not fit fails with
//     [ErrBufferFull]: that loss is reported to the publisher.
//   - Subscriptions are made again on reconnect.
//   - Requests wait for their replies until their context ends.
//
// NATS without JetStream is at-most-once: a message the server receives
// while no subscriber is interested is dropped without trace. After a
// server restart, messages buffered by one client reach subscribers of
// another client only if those reconnected first; the DEA protocol lives
// with this (heartbeats, advertisements and route registrations repeat).
// [WithConnEventHandler] reports disconnects and reconnects.
//
// # Concurrency and lifetimes
//
// A Bus and its Subscriptions are safe for concurrent use. Everything a
// Bus starts ends with Close or Drain; after it, calls return [ErrClosed].
// Callbacks (errors, connection events) run in order on one goroutine of
// the bus, never under its locks. The bus logs through the *slog.Logger
// given with [WithLogger] and is silent without one.
package nats
