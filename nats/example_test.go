package nats_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"time"

	"github.com/paaskit/paaskit/nats"
	"github.com/paaskit/paaskit/nats/natsserver"
)

// A DEA and a controller on an embedded server: the controller starts an
// instance on the DEA, then finds it.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	srv, err := natsserver.Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	dea, err := nats.Connect(ctx, srv.ClientURL(), nats.WithName("dea-0"))
	if err != nil {
		log.Fatal(err)
	}
	defer dea.Close()
	cc, err := nats.Connect(ctx, srv.ClientURL(), nats.WithName("cc"))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()

	// The DEA: runs what it is told to and answers find.droplet. (Here an
	// instance "runs" once its start message arrived; the two subjects
	// are handled on different goroutines, hence the channel.)
	started := make(chan nats.StartMessage, 1)
	_, err = nats.Subscribe(ctx, dea, nats.DEAStart("dea-0"), func(_ context.Context, m *nats.Msg[nats.StartMessage]) error {
		started <- m.Data
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = nats.Handle(ctx, dea, nats.DEAFindDroplet, func(ctx context.Context, r *nats.RequestMsg[nats.FindDropletRequest, nats.FindDropletResponse]) error {
		s := <-started
		if !r.Data.Match(s.Droplet, s.Version, "inst-0", s.Index, nats.StateRunning) {
			return nil
		}
		return r.Respond(ctx, nats.FindDropletResponse{
			DEA: "dea-0", Droplet: s.Droplet, Version: s.Version, Instance: "inst-0",
			Index: s.Index, State: nats.StateRunning, StateTimestamp: 1712345678,
		})
	})
	if err != nil {
		log.Fatal(err)
	}

	// The controller.
	err = nats.Publish(ctx, cc, nats.DEAStart("dea-0"), nats.StartMessage{
		Droplet:       "app-guid",
		Name:          "dora",
		SHA1:          "5f0d1ce9c2b5a3f1b6f7d1d4c5e6a7b8c9d0e1f2",
		ExecutableURI: "https://cc.example.com/droplets/app-guid",
		Version:       "v1",
		Limits:        nats.Limits{Mem: 256, Disk: 1024, FDs: 16384},
	})
	if err != nil {
		log.Fatal(err)
	}
	found, err := nats.RequestMany(ctx, cc, nats.DEAFindDroplet,
		nats.FindDropletRequest{InstanceFilter: nats.InstanceFilter{Droplet: "app-guid"}},
		nats.Gather{Max: 1, Wait: 2 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range found {
		fmt.Println(f.DEA, f.Instance, f.State)
	}
	// Output: dea-0 inst-0 RUNNING
}

func ExampleDecode() {
	stop, err := nats.Decode[nats.StopMessage]([]byte(`{"droplet":"app-guid","indices":[2,3],"from":"cc-2"}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(stop.Droplet, stop.Indices, string(stop.Extra["from"]))

	_, err = nats.Decode[nats.StopMessage]([]byte(`{"indices":[-1]}`))
	fmt.Println(errors.Is(err, nats.ErrInvalidMessage))
	fmt.Println(err)

	_, err = nats.Decode[nats.StopMessage]([]byte(`{"droplet":`))
	fmt.Println(errors.Is(err, nats.ErrMalformed))
	// Output:
	// app-guid [2 3] "cc-2"
	// true
	// nats: invalid StopMessage: droplet: required
	// nats: invalid StopMessage: indices[0]: must not be negative, got -1
	// true
}

func ExampleEncode() {
	out, err := nats.Encode(nats.RegistryMessage{
		Host: "10.0.16.5", Port: 61001,
		URIs:              []string{"dora.example.com"},
		Tags:              map[string]string{"component": "dea-0"},
		App:               "app-guid",
		DEA:               "dea-0",
		PrivateInstanceID: "inst-0",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(out))
	// Output: {"host":"10.0.16.5","port":61001,"uris":["dora.example.com"],"tags":{"component":"dea-0"},"app":"app-guid","dea":"dea-0","private_instance_id":"inst-0"}
}

func ExampleDEAStart() {
	fmt.Println(nats.DEAStart("0-1a0434e1"))
	fmt.Println(nats.DEAStart("*"))
	fmt.Println(nats.DEAStart("no.dots").Err())
	// Output:
	// dea.0-1a0434e1.start
	// dea.*.start
	// nats: invalid subject "no.dots": not a single subject token
}

// A controller stages an app on a DEA: the first reply carries the URL to
// stream the staging log from, the second the droplet.
func ExampleReplies() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := natsserver.Start(ctx, natsserver.WithoutListener())
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	bus, err := nats.Connect(ctx, "", nats.WithInProcessServer(srv))
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()

	_, err = nats.Handle(ctx, bus, nats.StagingStart("dea-0"), func(ctx context.Context, r *nats.RequestMsg[nats.StagingRequest, nats.StagingReply]) error {
		task := r.Data.TaskID
		if err := r.Respond(ctx, nats.StagingReply{TaskID: task, TaskStreamingLogURL: "https://dea-0:34567/staging_tasks/" + task + "/log"}); err != nil {
			return err
		}
		// ... run the buildpacks, upload the droplet ...
		return r.Respond(ctx, nats.StagingReply{TaskID: task, DetectedBuildpack: "Ruby", DropletSHA1: "5f0d1ce9c2b5a3f1b6f7d1d4c5e6a7b8c9d0e1f2"})
	})
	if err != nil {
		log.Fatal(err)
	}

	req := nats.StagingRequest{
		AppID: "app-guid", TaskID: "task-1",
		DownloadURI: "https://cc.example.com/packages/app-guid",
		UploadURI:   "https://cc.example.com/droplets/app-guid",
	}
	for rep, err := range nats.Replies(ctx, bus, nats.StagingStart("dea-0"), req) {
		if err != nil {
			log.Fatal(err)
		}
		if !rep.Final() {
			fmt.Println("log at", rep.TaskStreamingLogURL)
			continue
		}
		if err := rep.Failure(); err != nil {
			log.Fatal(err)
		}
		fmt.Println("staged with", rep.DetectedBuildpack)
		break
	}
	// Output:
	// log at https://dea-0:34567/staging_tasks/task-1/log
	// staged with Ruby
}

// Three DEAs answer dea.find.droplet for their instances; the controller
// collects the answers for a while, as Cloud Controller did.
func ExampleRequestMany() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := natsserver.Start(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	bus, err := nats.Connect(ctx, srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()

	for _, id := range []string{"dea-a", "dea-b", "dea-c"} {
		_, err := nats.Handle(ctx, bus, nats.DEAFindDroplet, func(ctx context.Context, r *nats.RequestMsg[nats.FindDropletRequest, nats.FindDropletResponse]) error {
			return r.Respond(ctx, nats.FindDropletResponse{DEA: id, Droplet: r.Data.Droplet, Instance: id + "-0", State: nats.StateRunning})
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	replies, err := nats.RequestMany(ctx, bus, nats.DEAFindDroplet,
		nats.FindDropletRequest{InstanceFilter: nats.InstanceFilter{Droplet: "app-guid"}},
		nats.Gather{Wait: 200 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	var deas []string
	for _, r := range replies {
		deas = append(deas, r.DEA)
	}
	slices.Sort(deas)
	fmt.Println(deas)
	// Output: [dea-a dea-b dea-c]
}

func ExampleState() {
	s, err := nats.ParseState("running")
	if err != nil {
		log.Fatal(err)
	}
	text, _ := s.MarshalText()
	fmt.Println(s, string(text), s == nats.StateRunning)
	// Output: RUNNING RUNNING true
}
