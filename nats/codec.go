package nats

import (
	"reflect"

	jsonv2 "github.com/go-json-experiment/json"
)

// The JSON codec is github.com/go-json-experiment/json, the reference
// implementation of encoding/json/v2 (in the standard library behind
// GOEXPERIMENT=jsonv2 until it is stable). It is used for two things
// encoding/json cannot do: keeping unknown members (the ",embed" field
// option behind [Extra]) and decoding several times faster.
// No type of it appears in this package's API, so moving to the standard
// library's encoding/json/v2 later changes nothing for users.

// marshalOptions sorts map keys so that encoding is deterministic.
var marshalOptions = jsonv2.Deterministic(true)

func marshalJSON(v any) ([]byte, error) { return jsonv2.Marshal(v, marshalOptions) }

func unmarshalJSON(b []byte, v any) error { return jsonv2.Unmarshal(b, v) }

// Encode validates msg and returns its JSON as the wire has it. An
// invalid message is not encoded: the error is its validation error
// (matching [ErrInvalidMessage]).
func Encode[T Message](msg T) ([]byte, error) {
	if err := msg.Validate(); err != nil {
		return nil, err
	}
	return encodeUnchecked(msg)
}

// Decode parses data as the JSON of a T and validates the result. A
// payload that is not such JSON is a [*DecodeError] (matching
// [ErrMalformed]); a message that decodes but breaks the protocol returns
// the message together with its validation errors (matching
// [ErrInvalidMessage]), so callers that want to can still look at it.
// Unknown members are kept in the message's Extra field. Decode never
// panics, whatever data holds.
func Decode[T Message](data []byte) (T, error) {
	msg, err := decodeUnchecked[T](data, "")
	if err != nil {
		return msg, err
	}
	return msg, msg.Validate()
}

func encodeUnchecked[T any](msg T) ([]byte, error) {
	if m, ok := any(msg).(interface{ MarshalJSON() ([]byte, error) }); ok {
		return m.MarshalJSON()
	}
	return marshalJSON(msg)
}

func decodeUnchecked[T any](data []byte, subject string) (T, error) {
	var msg T
	var err error
	if u, ok := any(&msg).(interface{ UnmarshalJSON([]byte) error }); ok {
		err = u.UnmarshalJSON(data)
	} else {
		err = unmarshalJSON(data, &msg)
	}
	if err != nil {
		var zero T
		return zero, &DecodeError{Subject: subject, Message: typeName[T](), Err: err}
	}
	return msg, nil
}

func typeName[T any]() string { return reflect.TypeFor[T]().Name() }

func isBlank(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
		default:
			return false
		}
	}
	return true
}
