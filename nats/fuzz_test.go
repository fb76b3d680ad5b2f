package nats

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// The fuzzers check that no payload panics a decoder, that whatever
// decodes encodes again and decodes to the same encoding, and that the
// heartbeat's fast path agrees with the general decoder. Their seed
// corpus is the golden files plus testdata/fuzz; CI runs each briefly
// with go test -fuzz.

func addSeeds(f *testing.F, golden ...string) {
	f.Helper()
	for _, name := range golden {
		data, err := os.ReadFile(filepath.Join("testdata", "golden", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{``, `{}`, `null`, `[]`, `{"droplet":null}`, `{"droplet":"a","index":1e400}`, "{\"\xff\":1}", `{"a":{"b":[1,2,{"c":"\u00e9"}]}}`} {
		f.Add([]byte(s))
	}
}

// fuzzRoundTrip is the property every message type must have.
func fuzzRoundTrip[T Message](t *testing.T, data []byte) {
	msg, err := decodeUnchecked[T](data, "fuzz")
	if err != nil {
		return
	}
	if msg.Validate() != nil {
		return
	}
	enc, err := Encode(msg)
	if err != nil {
		// Extra may hold a name that is also a field only if the input
		// had it twice, which the decoder refuses; nothing else may fail.
		t.Fatalf("valid message does not encode: %v\ninput: %q", err, data)
	}
	back, err := Decode[T](enc)
	if err != nil {
		t.Fatalf("encoding does not decode: %v\nencoding: %s", err, enc)
	}
	enc2, err := Encode(back)
	if err != nil {
		t.Fatalf("second encoding: %v", err)
	}
	if !bytes.Equal(enc, enc2) {
		t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
	}
}

func FuzzDecodeStart(f *testing.F) {
	addSeeds(f, "dea.start.json", "dea.start.unknown_fields.json")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip[StartMessage](t, data) })
}

func FuzzDecodeStop(f *testing.F) {
	addSeeds(f, "dea.stop.json", "dea.stop.instances.json", "dea.find.droplet.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRoundTrip[StopMessage](t, data)
		fuzzRoundTrip[FindDropletRequest](t, data)
	})
}

func FuzzDecodeFindDropletResponse(f *testing.F) {
	addSeeds(f, "dea.find.droplet.response.json")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzRoundTrip[FindDropletResponse](t, data) })
}

func FuzzDecodeStaging(f *testing.F) {
	addSeeds(f, "staging.start.json", "staging.start.setup_reply.json", "staging.start.completion_reply.json", "staging.start.failure_reply.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRoundTrip[StagingRequest](t, data)
		fuzzRoundTrip[StagingReply](t, data)
	})
}

func FuzzDecodeRouterAndAdvertise(f *testing.F) {
	addSeeds(f, "router.register.json", "router.register.gorouter.json", "router.start.json", "dea.advertise.json", "dea.shutdown.json", "droplet.exited.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRoundTrip[RegistryMessage](t, data)
		fuzzRoundTrip[RouterStartMessage](t, data)
		fuzzRoundTrip[AdvertiseMessage](t, data)
		fuzzRoundTrip[ShutdownMessage](t, data)
		fuzzRoundTrip[ExitedMessage](t, data)
		fuzzRoundTrip[LocateMessage](t, data)
	})
}

// FuzzHeartbeatFastPath checks the fast path against the general
// decoder: whatever the fast path accepts, the general decoder decodes to
// the same message.
func FuzzHeartbeatFastPath(f *testing.F) {
	addSeeds(f, "dea.heartbeat.json")
	for _, s := range []string{
		`{"dea":"d","droplets":[]}`,
		`{"droplets":[{"index":-0,"state_timestamp":-0.0e-0}],"dea":""}`,
		`{"dea":"d","dea":"e"}`,
		`{"dea":"d","droplets":[{"state":"running"}]}`,
		`{"dea":"d","droplets":[{"index":1.0}]}`,
		`{"dea":"d","droplets":[{"index":99999999999999999999}]}`,
		`{"dea":"d\u0041"}`,
		` {"dea" : "d" , "droplets" : [ { "droplet" : "a" } , { } ] } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := decodeHeartbeatFast(data)
		var slow HeartbeatMessage
		err := unmarshalJSON(data, (*heartbeatMessagePlain)(&slow))
		if ok {
			if err != nil {
				t.Fatalf("fast path accepted what the decoder refuses (%v): %q", err, data)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("fast path differs:\nfast %#v\nslow %#v\ninput %q", fast, slow, data)
			}
		}
		fuzzRoundTrip[HeartbeatMessage](t, data)
	})
}
