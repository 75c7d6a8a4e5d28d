package collect

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/compress"
	"github.com/shelfgate/shelfgate/gateway/uplink/connfail"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// SubscribeOptions say what to collect and from where.
type SubscribeOptions struct {
	Broker   string // tcp://host:port, ssl://host:port
	ClientID string // a fixed id with Persistent keeps the broker session across restarts
	Username string
	Password string
	TLS      *tls.Config // CA, client certificate; nil: system roots for ssl:// URLs
	// ConnectTimeout bounds the first connection: network failures are
	// retried until then; default 15s. Refused credentials and TLS
	// failures end it at once.
	ConnectTimeout time.Duration
	Site           string // "" = all sites
	Gateway        string // "" = all gateways
	Share          string // $share group: several collectors split the fleet
	// Persistent asks the broker to keep the session (clean session off),
	// so messages published while the collector is away are queued for it.
	Persistent bool
	// OnBatch is called, in arrival order, with each batch and its records
	// seen for the first time. It runs before the PUBACK is sent.
	OnBatch func(b *shelfv1.Batch, fresh []shelfv1.WireRecord)
	// OnReject is called with payloads that are not valid batches.
	OnReject func(topic string, err error)
	// OnSubscribed is called each time the subscriptions are in place.
	OnSubscribed func()
	// OnConnectionLost is called when an established connection is lost;
	// the client then reconnects by itself.
	OnConnectionLost func(err error)
	// Ack confirms each batch to its gateway on .../ack (shelfv1.Ack,
	// echoing the batch's lo, hi and tag) after OnBatch returned, for
	// gateways that keep rows until the consumer has them. OnBatch must have
	// stored the batch durably. Batches without a tag are not acked.
	Ack bool
	// Samples subscribes the samples topic too (labelled samples, the
	// feedback loop: shelfctl collect --samples).
	Samples bool
}

// Filters returns the subscription filters for opts (telemetry and events,
// and samples with Samples).
func (o SubscribeOptions) Filters() []string {
	var fs []string
	classes := []gateway.Class{gateway.ClassTelemetry, gateway.ClassEvent}
	if o.Samples {
		classes = append(classes, gateway.ClassSamples)
	}
	for _, c := range classes {
		f := shelfv1.SubscriptionFilter(o.Site, o.Gateway, c)
		if o.Share != "" {
			f = "$share/" + o.Share + "/" + f
		}
		fs = append(fs, f)
	}
	return fs
}

// Subscribe feeds c from the broker until ctx is done. It reconnects by
// itself; it returns an error only if the first connection fails.
func Subscribe(ctx context.Context, c *Collector, o SubscribeOptions) error {
	subs := map[string]byte{}
	for _, f := range o.Filters() {
		subs[f] = 1
	}
	// Statuses say where each stream ended (see Collector.AddStatus). A
	// member of a $share group sees only part of the data, so its audit is
	// partial anyway and it does not take them.
	statusFilter := ""
	if o.Share == "" {
		statusFilter = strings.TrimSuffix(shelfv1.SubscriptionFilter(o.Site, o.Gateway, gateway.ClassTelemetry), "telemetry") + "status"
		subs[statusFilter] = 1
	}
	zstd, err := compress.NewDecoder(shelfv1.MaxBatchBytes)
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	handle := func(cl paho.Client, m paho.Message) {
		if strings.HasSuffix(m.Topic(), "/status") {
			var st Status
			if len(m.Payload()) <= 1<<20 && json.Unmarshal(m.Payload(), &st) == nil {
				c.AddStatus(st)
			}
			return
		}
		b, err := shelfv1.DecodePayload(zstd, m.Payload())
		if err != nil {
			c.Reject()
			if o.OnReject != nil {
				o.OnReject(m.Topic(), err)
			}
			return
		}
		fresh := c.Add(b)
		if o.OnBatch != nil {
			o.OnBatch(b, fresh)
		}
		if ref, ok := b.Ref(); o.Ack && ok {
			// Not waited on: a lost ack only means the gateway sends again.
			cl.Publish(shelfv1.Topics{Site: b.Site, Gateway: b.Gateway}.Ack(), 1, false, shelfv1.AppendAck(nil, ref))
		}
	}
	opts := paho.NewClientOptions().AddBroker(o.Broker).SetClientID(o.ClientID).
		SetCleanSession(!o.Persistent).SetOrderMatters(true).
		SetAutoReconnect(true).SetMaxReconnectInterval(time.Second).
		SetKeepAlive(10 * time.Second).
		SetOnConnectHandler(func(cl paho.Client) {
			// (Re)subscribe on every connection; with a persistent session
			// the broker also resumes the old one.
			go func() {
				t := cl.SubscribeMultiple(subs, handle)
				if t.WaitTimeout(10*time.Second) && t.Error() == nil && o.OnSubscribed != nil {
					o.OnSubscribed()
				}
			}()
		})
	if o.OnConnectionLost != nil {
		opts.SetConnectionLostHandler(func(_ paho.Client, err error) { o.OnConnectionLost(err) })
	}
	if o.Username != "" {
		opts.SetUsername(o.Username).SetPassword(o.Password)
	}
	if o.TLS != nil {
		opts.SetTLSConfig(o.TLS)
	}
	cl, err := Connect(ctx, opts, o.ConnectTimeout)
	if err != nil {
		return fmt.Errorf("collect: %w", err)
	}
	<-ctx.Done()
	cl.Disconnect(250)
	return nil
}

// Errors of Connect that retrying cannot fix.
var (
	ErrNotAuthorized = errors.New("not authorized") // the broker refused the credentials
	ErrTLS           = errors.New("TLS failure")    // certificate verification, either side
)

// Connect connects a client made from opts (paho's own connect retry is
// turned off and the protocol fixed at MQTT 3.1.1), retrying network
// failures for up to timeout (default 15s) or until ctx is done. Refused
// credentials and TLS failures end it at once with an error wrapping
// ErrNotAuthorized or ErrTLS; a timeout names the last failure.
func Connect(ctx context.Context, opts *paho.ClientOptions, timeout time.Duration) (paho.Client, error) {
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	broker := "broker"
	if len(opts.Servers) > 0 {
		broker = opts.Servers[0].Redacted()
	}
	opts.SetConnectRetry(false).SetProtocolVersion(4)
	tlsConf := opts.TLSConfig
	deadline := time.Now().Add(timeout)
	wait := 100 * time.Millisecond
	for {
		probe := new(connfail.CertProbe)
		if tlsConf != nil || isTLS(opts) {
			opts.SetTLSConfig(probe.Wrap(tlsConf))
		}
		cl := paho.NewClient(opts)
		tok := cl.Connect()
		left := time.Until(deadline)
		var err error
		select {
		case <-tok.Done():
			err = probe.Explain(tok.Error())
		case <-time.After(max(left, 0)):
			err = errors.New("no CONNACK")
		case <-ctx.Done():
			// paho runs the on-connect handler (which may end ctx) before
			// it completes the token: a connection made just now is one.
			if tok.WaitTimeout(time.Second) && tok.Error() == nil {
				return cl, nil // the caller disconnects
			}
			cl.Disconnect(0)
			return nil, fmt.Errorf("connect to %s: %w", broker, ctx.Err())
		}
		if err == nil {
			return cl, nil
		}
		cl.Disconnect(0)
		switch connfail.Classify(err) {
		case connfail.Auth:
			return nil, fmt.Errorf("connect to %s: %w: the broker refused the credentials (%v); check the user name and password", broker, ErrNotAuthorized, err)
		case connfail.TLS:
			return nil, fmt.Errorf("connect to %s: %w: %v; check the CA, client certificate and server name", broker, ErrTLS, err)
		}
		if time.Until(deadline) <= 0 {
			return nil, fmt.Errorf("connect to %s: timed out after %s: %v", broker, timeout, err)
		}
		select {
		case <-time.After(min(wait, time.Until(deadline))):
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to %s: %w", broker, ctx.Err())
		}
		wait = min(2*wait, time.Second)
	}
}

func isTLS(opts *paho.ClientOptions) bool {
	for _, u := range opts.Servers {
		switch strings.ToLower(u.Scheme) {
		case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps", "wss":
			return true
		}
	}
	return false
}
