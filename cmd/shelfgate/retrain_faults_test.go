//go:build faults

package main

import (
	"testing"
	"time"
)

// TestFaultRetrainLoopRealTime is TestRetrainLoopEndToEnd with the
// gateways' warehouses at 12× real time instead of 40×, where the
// samples' windows are clean enough for the target: the promoted
// model is held to SKU identification ≥ 0.97 on the fresh scenario's
// picks. About three minutes; part of make test-faults.
func TestFaultRetrainLoopRealTime(t *testing.T) {
	testRetrainLoop(t, retrainRun{speed: 12, minAcc: 0.97, wait: 3 * time.Minute})
}
