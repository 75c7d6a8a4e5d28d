package collect

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/mqtttest"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// TestSharedSubscriptionSplitsFleet runs two collectors in one $share group
// on mosquitto: each gets part of the batches, together all of them, and
// their audits merged have no gaps.
func TestSharedSubscriptionSplitsFleet(t *testing.T) {
	m := mqtttest.StartMosquitto(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cols := []*Collector{New(), New()}
	subscribed := make(chan struct{}, 4)
	for i, c := range cols {
		go Subscribe(ctx, c, SubscribeOptions{Broker: m.URL, ClientID: "share-" + string(rune('a'+i)), Share: "cloud", Site: "s",
			OnSubscribed: func() { subscribed <- struct{}{} }})
	}
	<-subscribed
	<-subscribed
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(m.URL).SetClientID("fleet"))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pub.Disconnect(0)
	const batches, per = 40, 25
	id := int64(0)
	for b := range batches {
		gw := []string{"gw-1", "gw-2"}[b%2]
		recs := make([]gateway.Record, per)
		for i := range recs {
			id++
			recs[i] = gateway.Record{ID: id, Seq: uint64(b/2*per + i + 1), Stream: "loadcell/x", Time: time.Now(), Value: 1}
		}
		topic := shelfv1.Topics{Site: "s", Gateway: gw}.Telemetry()
		if tok := pub.Publish(topic, 1, false, shelfv1.AppendBatch(nil, "s", gw, gateway.BatchRef{Class: gateway.ClassTelemetry}, time.Now(), recs)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for cols[0].Audit(true).Received+cols[1].Audit(true).Received < batches*per && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	a, b := cols[0].Audit(true), cols[1].Audit(true)
	if a.Received == 0 || b.Received == 0 {
		t.Fatalf("one collector got nothing: %d and %d", a.Received, b.Received)
	}
	if a.Received+b.Received != batches*per || a.Duplicates+b.Duplicates != 0 {
		t.Fatalf("received %d+%d, duplicates %d+%d; want %d in all", a.Received, b.Received, a.Duplicates, b.Duplicates, batches*per)
	}
	// Merged, every stream of every gateway is whole.
	merged := New()
	for _, c := range cols {
		for k, st := range c.streams {
			for _, r := range st.seqs.Ranges() {
				for q := r.Lo; q <= r.Hi; q++ {
					merged.Add(&shelfv1.Batch{Version: 1, Site: "s", Gateway: k.gw[len("s/"):], Class: "telemetry",
						Records: []shelfv1.WireRecord{{ID: int64(q), Stream: k.stream, Seq: q}}})
				}
			}
		}
	}
	if ma := merged.Audit(false); !ma.OK() || ma.Received != batches*per {
		t.Fatalf("merged audit %+v", ma)
	}
}

// TestSubscribeAuthAndTLS: against an authenticating or TLS mosquitto,
// Subscribe connects with the right credentials and certificates, and
// otherwise ends at once with ErrNotAuthorized or ErrTLS (not after its
// connect timeout, which a network failure would run into).
func TestSubscribeAuthAndTLS(t *testing.T) {
	users := map[string]string{"collector": "s3cret"}
	p := mqtttest.NewPKI(t)
	other := mqtttest.NewPKI(t)
	auth := mqtttest.StartMosquittoAuth(t, users)
	tlsOnly := mqtttest.StartMosquittoTLS(t, p, false)
	mutual := mqtttest.StartMosquittoTLS(t, p, true)
	trusted := &tls.Config{RootCAs: p.Pool, MinVersion: tls.VersionTLS12}
	withCert := &tls.Config{RootCAs: p.Pool, Certificates: []tls.Certificate{p.Client}, MinVersion: tls.VersionTLS12}
	for _, tc := range []struct {
		name string
		o    SubscribeOptions
		want error // nil: subscribes
	}{
		{"right password", SubscribeOptions{Broker: auth.URL, Username: "collector", Password: "s3cret"}, nil},
		{"wrong password", SubscribeOptions{Broker: auth.URL, Username: "collector", Password: "nope"}, ErrNotAuthorized},
		{"no credentials", SubscribeOptions{Broker: auth.URL}, ErrNotAuthorized},
		{"trusted CA", SubscribeOptions{Broker: tlsOnly.URL, TLS: trusted}, nil},
		{"untrusted CA", SubscribeOptions{Broker: tlsOnly.URL, TLS: &tls.Config{RootCAs: other.Pool, MinVersion: tls.VersionTLS12}}, ErrTLS},
		{"system roots only", SubscribeOptions{Broker: tlsOnly.URL}, ErrTLS},
		{"wrong server name", SubscribeOptions{Broker: tlsOnly.URL, TLS: &tls.Config{RootCAs: p.Pool, ServerName: "broker.example", MinVersion: tls.VersionTLS12}}, ErrTLS},
		{"client certificate", SubscribeOptions{Broker: mutual.URL, TLS: withCert}, nil},
		{"no client certificate", SubscribeOptions{Broker: mutual.URL, TLS: trusted}, ErrTLS},
		{"plain URL to a TLS listener", SubscribeOptions{Broker: "tcp://" + tlsOnly.Addr, ConnectTimeout: 2 * time.Second}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			o := tc.o
			o.ClientID = "auth-" + strings.ReplaceAll(tc.name, " ", "-")
			if o.ConnectTimeout == 0 {
				o.ConnectTimeout = time.Minute // a failure that is retried would hit it: the test would time out
			}
			subscribed := make(chan struct{}, 1)
			o.OnSubscribed = func() { subscribed <- struct{}{} }
			done := make(chan error, 1)
			go func() { done <- Subscribe(ctx, New(), o) }()
			if tc.name == "plain URL to a TLS listener" {
				// Not an auth problem the client can name: it is retried and times out.
				if err := <-done; err == nil || errors.Is(err, ErrNotAuthorized) || !strings.Contains(err.Error(), "timed out") {
					t.Fatalf("err %v, want a time-out", err)
				}
				return
			}
			if tc.want == nil {
				select {
				case <-subscribed:
				case err := <-done:
					t.Fatalf("Subscribe: %v", err)
				case <-time.After(20 * time.Second):
					t.Fatal("not subscribed")
				}
				cancel()
				if err := <-done; err != nil {
					t.Fatalf("Subscribe: %v", err)
				}
				return
			}
			select {
			case err := <-done:
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
				t.Log(err)
			case <-subscribed:
				t.Fatal("subscribed")
			case <-time.After(30 * time.Second):
				t.Fatal("Subscribe still retrying")
			}
		})
	}
}
