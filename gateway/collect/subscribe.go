package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/compress"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

// SubscribeOptions say what to collect and from where.
type SubscribeOptions struct {
	Broker   string // tcp://host:port
	ClientID string // a fixed id with Persistent keeps the broker session across restarts
	Username string
	Password string
	Site     string // "" = all sites
	Gateway  string // "" = all gateways
	Share    string // $share group: several collectors split the fleet
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
	// Ack confirms each batch to its gateway on .../ack (shelfv1.Ack,
	// echoing the batch's lo, hi and tag) after OnBatch returned, for
	// gateways that keep rows until the consumer has them. OnBatch must have
	// stored the batch durably. Batches without a tag are not acked.
	Ack bool
}

// Filters returns the subscription filters for opts (telemetry and events).
func (o SubscribeOptions) Filters() []string {
	var fs []string
	for _, c := range []gateway.Class{gateway.ClassTelemetry, gateway.ClassEvent} {
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
		SetAutoReconnect(true).SetMaxReconnectInterval(time.Second).SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond).SetKeepAlive(10 * time.Second).
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
	if o.Username != "" {
		opts.SetUsername(o.Username).SetPassword(o.Password)
	}
	cl := paho.NewClient(opts)
	tok := cl.Connect()
	if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		cl.Disconnect(0)
		return fmt.Errorf("collect: connect to %s: %v", o.Broker, errOrTimeout(tok.Error()))
	}
	<-ctx.Done()
	cl.Disconnect(250)
	return nil
}

func errOrTimeout(err error) any {
	if err != nil {
		return err
	}
	return "timed out"
}
