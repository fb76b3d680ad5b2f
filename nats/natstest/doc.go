// Package natstest helps test code that talks the DEA protocol over
// NATS, in this module and downstream: an embedded NATS server started
// for one test ([StartServer]), a [nats.Bus] connected to it ([Connect],
// [NewBus]), a [Recorder] that collects what is published on a subject,
// an [ErrorLog] for the errors a bus reports asynchronously, and
// [WaitFor] for polling instead of sleeping.
//
// Everything a helper starts is stopped by t.Cleanup, also when the test
// fails; the helpers fail the test (t.Fatal) when they cannot start. They
// need no privileges and no network beyond the loopback interface.
package natstest
