package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/mqtttest"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// run runs shelfctl with args and returns its exit code, stdout and stderr.
func run(ctx context.Context, args ...string) (int, string, string) {
	var out, errb syncBuffer
	code := Main(ctx, args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestHelpOnEveryCommand: -h and --help on every command in the table exit
// 0 with the command's usage on stdout and nothing on stderr, and do not
// run the command.
func TestHelpOnEveryCommand(t *testing.T) {
	ctx := context.Background()
	for _, c := range commands() {
		for _, flag := range []string{"--help", "-h"} {
			code, out, errs := run(ctx, c.name, flag)
			if code != 0 || !strings.HasPrefix(out, "usage: shelfctl "+c.name) || errs != "" {
				t.Errorf("shelfctl %s %s: exit %d, stdout %q, stderr %q", c.name, flag, code, out, errs)
			}
		}
		if code, out, _ := run(ctx, "help", c.name); code != 0 || !strings.HasPrefix(out, "usage: shelfctl "+c.name) {
			t.Errorf("shelfctl help %s: exit %d, stdout %q", c.name, code, out)
		}
	}
	// The flags of tail and collect are listed, connection flags included.
	for _, name := range []string{"tail", "collect"} {
		_, out, _ := run(ctx, name, "--help")
		for _, f := range []string{"-broker", "-username", "-password-file", "-ca-file", "-cert-file", "-key-file", "-server-name"} {
			if !strings.Contains(out, f) {
				t.Errorf("%s --help lacks %s:\n%s", name, f, out)
			}
		}
	}
}

// TestUsageListsEveryCommand: shelfctl --help lists every command of the
// table, and the table has at least the commands documented.
func TestUsageListsEveryCommand(t *testing.T) {
	code, out, _ := run(context.Background(), "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	names := map[string]bool{}
	for _, c := range commands() {
		names[c.name] = true
		if !strings.Contains(out, "\n  "+c.name+" ") || !strings.Contains(out, "shelfctl "+c.name) {
			t.Errorf("usage lacks %s:\n%s", c.name, out)
		}
	}
	for _, want := range []string{"tail", "collect", "calibrate", "model", "version"} {
		if !names[want] {
			t.Errorf("no %s command", want)
		}
	}
	code, _, errs := run(context.Background())
	if code != 2 || !strings.Contains(errs, "commands:") {
		t.Errorf("no command: exit %d, stderr %q", code, errs)
	}
}

func TestVersionAndUsageErrors(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if code, out, _ := run(ctx, args...); code != 0 || !strings.HasPrefix(out, "shelfctl ") {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"tail", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"collect"}, "collect needs --out"},
		{[]string{"tail", "--broker", "tcp://127.0.0.1:1", "--ca-file", "ca.pem"}, "--ca-file needs a TLS broker URL"},
		{[]string{"tail", "--broker", "ssl://127.0.0.1:1", "--cert-file", "c.pem"}, "--cert-file and --key-file go together"},
		{[]string{"tail", "--broker", "localhost:1883"}, `--broker "localhost:1883": want a URL`},
		{[]string{"version", "extra"}, "version takes no arguments"},
	} {
		code, _, errs := run(ctx, tc.args...)
		if code != 2 || !strings.Contains(errs, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errs, tc.msg)
		}
	}
}

// publisher connects to m (with opts' credentials or TLS) to play a gateway.
func publisher(t *testing.T, url string, set func(*paho.ClientOptions)) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID("fake-gw-" + t.Name()).SetProtocolVersion(4)
	if set != nil {
		set(o)
	}
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// publishSeqs publishes one telemetry batch of stream "loadcell/s/b1" with
// sequence numbers lo..hi (ids from lo too) until ctx is done, once a
// subscriber may be there.
func publishBatch(t *testing.T, c paho.Client, lo, hi uint64) {
	t.Helper()
	var recs []gateway.Record
	for q := lo; q <= hi; q++ {
		recs = append(recs, gateway.Record{ID: int64(q), Seq: q, Stream: "loadcell/s/b1", Time: time.Now(), Value: 1, Unit: "g"})
	}
	topic := shelfv1.Topics{Site: "s", Gateway: "g"}.Telemetry()
	if tok := c.Publish(topic, 1, false, shelfv1.AppendBatch(nil, "s", "g", gateway.BatchRef{Class: gateway.ClassTelemetry}, time.Now(), recs)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

// collectUntilSubscribed runs collect with args in the background; once it
// has subscribed, feed runs; it returns collect's exit code and output.
func collectWith(t *testing.T, args []string, feed func()) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- Main(ctx, append([]string{"collect"}, args...), nil, &out, &errb) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(errb.String(), "collect: subscribed") {
		select {
		case code := <-done:
			return code, out.String(), errb.String()
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("collect did not subscribe: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	feed()
	code := <-done
	return code, out.String(), errb.String()
}

// TestCollectAndTailAuthenticate: against mosquitto with a password file,
// collect and tail connect with --username/--password-file or the
// gateway's environment variables, and a wrong or missing password ends
// them at once with "not authorized" and exit 1, instead of hanging
// (tail) or "timed out" (collect).
func TestCollectAndTailAuthenticate(t *testing.T) {
	m := mqtttest.StartMosquittoAuth(t, map[string]string{"cloud": "s3cret", "gw": "gwpass"})
	dir := t.TempDir()
	right, wrong := filepath.Join(dir, "right"), filepath.Join(dir, "wrong")
	os.WriteFile(right, []byte("s3cret\n"), 0o600)
	os.WriteFile(wrong, []byte("nope\n"), 0o600)
	gw := publisher(t, m.URL, func(o *paho.ClientOptions) { o.SetUsername("gw").SetPassword("gwpass") })

	t.Run("flags", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out.jsonl")
		code, stdout, stderr := collectWith(t, []string{"--broker", m.URL, "--username", "cloud", "--password-file", right, "--out", out, "--expect", "10"},
			func() { publishBatch(t, gw, 1, 10) })
		if code != 0 || !strings.Contains(stdout, "received=10") || !strings.Contains(stdout, "result=OK") {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
	})
	t.Run("environment", func(t *testing.T) {
		t.Setenv(envBrokerURLs, m.URL+",tcp://127.0.0.1:1")
		t.Setenv(envUsername, "cloud")
		t.Setenv(envPassword, "s3cret")
		out := filepath.Join(t.TempDir(), "out.jsonl")
		code, stdout, stderr := collectWith(t, []string{"--out", out, "--expect", "5"}, func() { publishBatch(t, gw, 1, 5) })
		if code != 0 || !strings.Contains(stdout, "result=OK") {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
	})
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"wrong password file", nil, []string{"--username", "cloud", "--password-file", wrong}},
		{"wrong password in the environment", map[string]string{envUsername: "cloud", envPassword: "nope"}, nil},
		{"no credentials", nil, nil},
	} {
		for _, cmd := range []string{"collect", "tail"} {
			t.Run(cmd+" "+tc.name, func(t *testing.T) {
				for k, v := range tc.env {
					t.Setenv(k, v)
				}
				// The connect timeout is far beyond the test's patience:
				// only giving up at once passes.
				args := append([]string{cmd, "--broker", m.URL, "--connect-timeout", "10m"}, tc.args...)
				if cmd == "collect" {
					args = append(args, "--out", filepath.Join(t.TempDir(), "out.jsonl"))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				code, _, stderr := run(ctx, args...)
				if ctx.Err() != nil {
					t.Fatal("still trying after 30 s")
				}
				if code != 1 || !strings.Contains(stderr, "not authorized") {
					t.Fatalf("exit %d, stderr %q; want 1 and not authorized", code, stderr)
				}
			})
		}
	}
}

// TestCollectAndTailTLS: against mosquitto with mutual TLS, collect and
// tail connect with --ca-file, --cert-file and --key-file; an untrusted
// broker, a wrong server name or a missing client certificate end them
// at once with a TLS failure.
func TestCollectAndTailTLS(t *testing.T) {
	p := mqtttest.NewPKI(t)
	other := mqtttest.NewPKI(t)
	m := mqtttest.StartMosquittoTLS(t, p, true)
	gw := publisher(t, m.URL, func(o *paho.ClientOptions) {
		o.SetTLSConfig(&tls.Config{RootCAs: p.Pool, Certificates: []tls.Certificate{p.Client}, MinVersion: tls.VersionTLS12})
	})
	good := []string{"--broker", m.URL, "--ca-file", p.CAFile, "--cert-file", p.ClientCertFile, "--key-file", p.ClientKey}

	t.Run("collect", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out.jsonl")
		code, stdout, stderr := collectWith(t, append(good, "--out", out, "--expect", "3"), func() { publishBatch(t, gw, 1, 3) })
		if code != 0 || !strings.Contains(stdout, "result=OK") {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
	})
	t.Run("tail", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		var out, errb syncBuffer
		done := make(chan int, 1)
		go func() { done <- Main(ctx, append([]string{"tail", "--raw"}, good...), nil, &out, &errb) }()
		for !strings.Contains(out.String(), "loadcell/s/b1 #7") {
			select {
			case code := <-done:
				t.Fatalf("tail ended with %d: %s", code, errb.String())
			case <-ctx.Done():
				t.Fatalf("tail printed nothing: %s %s", out.String(), errb.String())
			case <-time.After(100 * time.Millisecond):
			}
			if strings.Contains(errb.String(), "tailing") {
				publishBatch(t, gw, 7, 7)
			}
		}
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("tail exit %d", code)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"untrusted broker", []string{"--ca-file", other.CAFile, "--cert-file", p.ClientCertFile, "--key-file", p.ClientKey}},
		{"system roots", []string{"--cert-file", p.ClientCertFile, "--key-file", p.ClientKey}},
		{"wrong server name", []string{"--ca-file", p.CAFile, "--server-name", "broker.example", "--cert-file", p.ClientCertFile, "--key-file", p.ClientKey}},
		{"no client certificate", []string{"--ca-file", p.CAFile}},
	} {
		for _, cmd := range []string{"collect", "tail"} {
			t.Run(cmd+" "+tc.name, func(t *testing.T) {
				args := append([]string{cmd, "--broker", m.URL, "--connect-timeout", "10m"}, tc.args...)
				if cmd == "collect" {
					args = append(args, "--out", filepath.Join(t.TempDir(), "out.jsonl"))
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				code, _, stderr := run(ctx, args...)
				if ctx.Err() != nil {
					t.Fatal("still trying after 30 s")
				}
				if code != 1 || !strings.Contains(stderr, "TLS failure") {
					t.Fatalf("exit %d, stderr %q; want 1 and a TLS failure", code, stderr)
				}
			})
		}
	}
}

// TestCollectStartedLate: collect beside a running gateway (its first
// batch starts at sequence 50) passes by default and still fails on a gap
// after that; --from-start (and the old --from-first=false) audit from 1;
// --from-first is still accepted.
func TestCollectStartedLate(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	gw := publisher(t, m.URL, nil)
	for _, tc := range []struct {
		name    string
		flags   []string
		batches [][2]uint64
		code    int
		missing string
	}{
		{"default", nil, [][2]uint64{{50, 59}}, 0, "missing=0"},
		{"default, gap after the first", nil, [][2]uint64{{50, 54}, {57, 61}}, 1, "missing=2"},
		{"from-first still accepted", []string{"--from-first"}, [][2]uint64{{50, 59}}, 0, "missing=0"},
		{"from-start", []string{"--from-start"}, [][2]uint64{{50, 59}}, 1, "missing=49"},
		{"from-first=false", []string{"--from-first=false"}, [][2]uint64{{50, 59}}, 1, "missing=49"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.jsonl")
			code, stdout, stderr := collectWith(t, append([]string{"--broker", m.URL, "--out", out, "--expect", "10"}, tc.flags...), func() {
				for _, b := range tc.batches {
					publishBatch(t, gw, b[0], b[1])
				}
			})
			if code != tc.code || !strings.Contains(stdout, "AUDIT total streams=1 received=10 duplicates=0 conflicts=0 "+tc.missing) {
				t.Fatalf("exit %d (want %d)\n%s\n%s", code, tc.code, stdout, stderr)
			}
		})
	}
}
