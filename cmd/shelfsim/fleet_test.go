package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway/mqtttest"
)

// A fleet of three against its own mosquitto: every gateway reconnects after
// the broker restart, and the $share pair of collectors received every
// committed reading with no gap and every stream's last one.
func TestFleetThreeGatewaysRestartAndAudit(t *testing.T) {
	mqtttest.FindMosquitto(t)
	cfg, err := parseFleetFlags([]string{"-n", "3", "--rate", "40", "--streams", "2", "--steady", "1s", "--down", "500ms", "--after", "500ms", "--backoff-max", "1s", "--ack-timeout", "2s", "--dir", t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := runFleet(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.Committed == 0 || res.Collected <= 0 {
		t.Fatalf("nothing committed or collected: %+v\n%s", res, out.String())
	}
	if !res.Audit.OK() || res.Audit.Missing != 0 || res.TailMismatches != 0 {
		t.Errorf("audit: missing %d, conflicts %d, rejected %d, tail mismatches %d\n%s", res.Audit.Missing, res.Audit.Conflicts, res.Audit.Rejected, res.TailMismatches, out.String())
	}
	if uint64(res.Audit.Received) != res.Committed {
		t.Errorf("collectors received %d distinct readings, gateways committed %d", res.Audit.Received, res.Committed)
	}
	if got := len(res.Audit.Streams); got != 3*2 {
		t.Errorf("audit has %d streams, want 6", got)
	}
	if !res.Restarted || len(res.Reconnects) != 3 || !res.BrokerUp {
		t.Errorf("restart %v, reconnects %v, broker up %v\n%s", res.Restarted, res.Reconnects, res.BrokerUp, out.String())
	}
	for i := 1; i < len(res.Reconnects); i++ {
		if res.Reconnects[i] < res.Reconnects[i-1] {
			t.Errorf("reconnect times not sorted: %v", res.Reconnects)
		}
	}
	if !strings.Contains(out.String(), "result=OK") {
		t.Errorf("no result=OK line:\n%s", out.String())
	}
}

func TestParseFleetFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string // "" = valid
		check   func(fleetConfig) bool
	}{
		{args: nil, check: func(c fleetConfig) bool {
			return c.N == 500 && c.Collectors == 2 && c.ConsumerAcks && c.Broker == "" && c.AckTimeout == 30*time.Second
		}},
		{args: []string{"-n", "3", "--acks", "broker"}, check: func(c fleetConfig) bool { return c.N == 3 && !c.ConsumerAcks }},
		{args: []string{"--broker", "tcp://10.0.0.5:1883", "--restart-cmd", "systemctl restart mosquitto"}, check: func(c fleetConfig) bool {
			return c.Broker == "tcp://10.0.0.5:1883" && c.RestartCmd != ""
		}},
		{args: []string{"-n", "0"}, wantErr: "-n 0"},
		{args: []string{"--rate", "-1"}, wantErr: "--rate -1"},
		{args: []string{"--streams", "0"}, wantErr: "--streams 0"},
		{args: []string{"--collectors", "0"}, wantErr: "--collectors 0"},
		{args: []string{"--steady", "0s"}, wantErr: "--steady 0s"},
		{args: []string{"--backoff-max", "10ms"}, wantErr: "--backoff-max 10ms"},
		{args: []string{"--broker", "localhost:1883"}, wantErr: `--broker "localhost:1883"`},
		{args: []string{"--restart-cmd", "true"}, wantErr: "--restart-cmd needs --broker"},
		{args: []string{"--ack-timeout", "10ms"}, wantErr: "--ack-timeout 10ms"},
		{args: []string{"--acks", "sometimes"}, wantErr: `--acks "sometimes"`},
		{args: []string{"extra"}, wantErr: `unexpected argument "extra"`},
	} {
		c, err := parseFleetFlags(tc.args, io.Discard)
		if tc.wantErr == "" {
			if err != nil || !tc.check(c) {
				t.Errorf("%q: err %v, config %+v", tc.args, err, c)
			}
			continue
		}
		if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%q: err %v, want a usage error naming %q", tc.args, err, tc.wantErr)
		}
	}
}

func TestParseStatusField(t *testing.T) {
	status := "Name:\tshelfgate\nVmHWM:\t   21344 kB\nVmRSS:\t   19876 kB\nThreads:\t9\n"
	for _, tc := range []struct {
		text, key string
		want      int64
		wantErr   bool
	}{
		{status, "VmRSS", 19876 * 1024, false},
		{status, "VmHWM", 21344 * 1024, false},
		{status, "VmSwap", 0, true},
		{status, "Threads", 0, true}, // no kB unit
		{"VmRSS:\t x kB\n", "VmRSS", 0, true},
		{"VmRSS:\t -5 kB\n", "VmRSS", 0, true},
	} {
		got, err := parseStatusField(tc.text, tc.key)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s in %q: %d, %v; want %d (error %v)", tc.key, tc.text, got, err, tc.want, tc.wantErr)
		}
	}
}

func FuzzParseStatusField(f *testing.F) {
	f.Add("VmRSS:\t   19876 kB\n", "VmRSS")
	f.Add("VmRSS: 1\n", "VmRSS")
	f.Fuzz(func(t *testing.T, text, key string) {
		n, err := parseStatusField(text, key)
		if err == nil && (n < 0 || n%1024 != 0) {
			t.Fatalf("%q %q: %d", text, key, n)
		}
	})
}

func TestQuantileAndPeak(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var ds []time.Duration
		for _, x := range v {
			ds = append(ds, time.Duration(x)*time.Millisecond)
		}
		return ds
	}
	ds := ms(10, 20, 30, 40, 50, 60, 70, 80, 90, 1000)
	if q := quantile(ds, 0.5); q != 50*time.Millisecond {
		t.Errorf("median %s, want 50ms", q)
	}
	if q := quantile(ds, 0.99); q != time.Second {
		t.Errorf("p99 %s, want 1s", q)
	}
	if q := quantile(nil, 0.5); q != 0 {
		t.Errorf("quantile of nothing %s", q)
	}
	if p := peakPerBucket(ds, 100*time.Millisecond); p != 9 {
		t.Errorf("peak per 100ms %d, want 9", p)
	}
	if p := peakPerBucket(ms(0, 100, 200), 100*time.Millisecond); p != 1 {
		t.Errorf("peak of evenly spread %d, want 1", p)
	}
}
