package outbox_test

import (
	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/outbox"
	"github.com/shelfgate/shelfgate/gateway/uplink"
)

// The outbox is consumed through these interfaces (an external test
// package, since uplink's tests import the outbox).
var (
	_ gateway.Outbox = (*outbox.Outbox)(nil)
	_ uplink.Store   = (*outbox.Outbox)(nil)
)
