package nats

import (
	"errors"
	"fmt"
)

// Sentinel errors. Test for them with [errors.Is]; the typed errors below
// match the sentinel of their class, so errors.Is(err, ErrInvalidMessage)
// holds for every [*ValidationError].
var (
	// ErrInvalidMessage is the class of messages that decode but break a
	// rule of the protocol (a required field missing, a negative limit, an
	// unknown state). Errors of this class are [*ValidationError]s.
	ErrInvalidMessage = errors.New("nats: invalid message")

	// ErrMalformed is the class of payloads that are not the JSON of the
	// expected message (syntax errors, wrong types, invalid UTF-8).
	// Errors of this class are [*DecodeError]s.
	ErrMalformed = errors.New("nats: malformed message")

	// ErrInvalidSubject is returned when a subject is empty, has an empty
	// or blank token, or uses wildcards where they are not allowed (in a
	// publish, or in a token given to a subject builder). Errors of this
	// class are [*SubjectError]s.
	ErrInvalidSubject = errors.New("nats: invalid subject")

	// ErrClosed is returned by calls on a [Bus] after Close or Drain, and
	// by calls whose connection was closed underneath them.
	ErrClosed = errors.New("nats: bus closed")

	// ErrNoResponders is returned by [Request] and [RequestMany] when the
	// server knows of no subscriber for the request's subject.
	ErrNoResponders = errors.New("nats: no responders")

	// ErrBufferFull is returned by a publish made while the connection is
	// down once the reconnect buffer (see [WithReconnectBufferSize]) is
	// full: that message is not sent. Messages that fit in the buffer are
	// sent when the connection comes back.
	ErrBufferFull = errors.New("nats: reconnect buffer full, message not sent")

	// ErrTooLarge is returned when an encoded message is larger than the
	// server's maximum payload.
	ErrTooLarge = errors.New("nats: message larger than the server's max payload")

	// ErrSlowConsumer is reported to the error handler (see
	// [WithErrorHandler]) when a subscription's pending queue overflowed
	// and messages were dropped; [Subscription.Dropped] counts them.
	ErrSlowConsumer = errors.New("nats: slow consumer, messages dropped")
)

// ValidationError says which field of which message breaks which rule.
// Validate methods return one ValidationError per problem, joined with
// [errors.Join]; use [errors.As] to get the first, or unwrap the join to
// get them all.
type ValidationError struct {
	// Message is the Go name of the message type, e.g. "StartMessage".
	Message string
	// Field is the path of the field as it is spelled on the wire, e.g.
	// "limits.mem" or "droplets[3].state".
	Field string
	// Reason says what is wrong, e.g. "required" or "must not be negative".
	Reason string
}

// Error returns "nats: invalid <Message>: <Field>: <Reason>".
func (e *ValidationError) Error() string {
	return fmt.Sprintf("nats: invalid %s: %s: %s", e.Message, e.Field, e.Reason)
}

// Is reports whether target is [ErrInvalidMessage].
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidMessage }

// DecodeError is returned when a payload is not valid JSON for the
// message type it was decoded into.
type DecodeError struct {
	// Subject is the subject the payload arrived on; empty when it was
	// decoded outside a bus (see [Decode]).
	Subject string
	// Message is the Go name of the message type, e.g. "HeartbeatMessage".
	Message string
	// Err is the error of the JSON decoder.
	Err error
}

// Error names the message type, the subject and the decoder's error.
func (e *DecodeError) Error() string {
	if e.Subject == "" {
		return fmt.Sprintf("nats: malformed %s: %v", e.Message, e.Err)
	}
	return fmt.Sprintf("nats: malformed %s on %q: %v", e.Message, e.Subject, e.Err)
}

// Unwrap returns [ErrMalformed] and the decoder's error.
func (e *DecodeError) Unwrap() []error { return []error{ErrMalformed, e.Err} }

// SubjectError is returned for a subject that cannot be used.
type SubjectError struct {
	// Subject is the offending subject (or token, for a builder).
	Subject string
	// Reason says what is wrong with it.
	Reason string
}

// Error names the subject and what is wrong with it.
func (e *SubjectError) Error() string {
	return fmt.Sprintf("nats: invalid subject %q: %s", e.Subject, e.Reason)
}

// Is reports whether target is [ErrInvalidSubject].
func (e *SubjectError) Is(target error) bool { return target == ErrInvalidSubject }

// DeliveryError is what a [Bus] reports to its error handler (see
// [WithErrorHandler]) when a received message could not be handed to a
// handler (a [*DecodeError] or a [ValidationError]), when a handler
// returned an error, or when messages were dropped ([ErrSlowConsumer]).
// These errors happen on the bus's goroutines, so there is no caller to
// return them to.
type DeliveryError struct {
	// Subject is the subject the message arrived on, or the
	// subscription's subject for dropped messages.
	Subject string
	// Queue is the queue group of the subscription, if any.
	Queue string
	// Err is the cause.
	Err error
}

// Error names the subject and the cause.
func (e *DeliveryError) Error() string {
	return fmt.Sprintf("nats: delivery on %q: %v", e.Subject, e.Err)
}

// Unwrap returns the cause.
func (e *DeliveryError) Unwrap() error { return e.Err }

// StagingError is a staging failure reported by a stager, as returned by
// [StagingReply.Failure].
type StagingError struct {
	// TaskID is the failed task.
	TaskID string
	// Type is the error_info type, if any.
	Type string
	// Message is the error, or the error_info message.
	Message string
}

// Error names the task, the error type if any, and the message.
func (e *StagingError) Error() string {
	if e.Type != "" {
		return fmt.Sprintf("nats: staging task %s failed: %s: %s", e.TaskID, e.Type, e.Message)
	}
	return fmt.Sprintf("nats: staging task %s failed: %s", e.TaskID, e.Message)
}
