package server_test

import "github.com/paaskit/paaskit/internal/testutil"

// syncBuffer is output read while it is written.
type syncBuffer = testutil.SyncBuffer
