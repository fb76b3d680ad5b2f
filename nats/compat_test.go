package nats_test

import natsgo "github.com/nats-io/nats.go"

type natsgoMsg = natsgo.Msg
