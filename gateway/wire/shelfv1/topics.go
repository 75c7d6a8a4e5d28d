package shelfv1

import (
	"fmt"
	"strings"

	"github.com/shelfgate/shelfgate/gateway"
)

// TopicRoot is the first two levels of every Shelfgate topic.
const TopicRoot = "shelfgate/v1"

// Topics builds the MQTT topics of one gateway:
//
//	shelfgate/v1/<site>/<gateway>/status     retained birth / LWT
//	shelfgate/v1/<site>/<gateway>/telemetry  QoS1 reading batches
//	shelfgate/v1/<site>/<gateway>/events     QoS1 event batches
//	shelfgate/v1/<site>/<gateway>/samples    QoS1 labelled-sample batches
//	shelfgate/v1/<site>/<gateway>/cmd/<name> QoS1 downlink commands
//	shelfgate/v1/<site>/<gateway>/cmd/<name>/reply  best-effort command replies
//	shelfgate/v1/<site>/<gateway>/ack        consumer acknowledgements
type Topics struct {
	Site, Gateway string
}

// Base is shelfgate/v1/<site>/<gateway>.
func (t Topics) Base() string { return TopicRoot + "/" + t.Site + "/" + t.Gateway }

// Status is the retained birth/LWT topic.
func (t Topics) Status() string { return t.Base() + "/status" }

// Telemetry is the topic of reading batches.
func (t Topics) Telemetry() string { return t.Base() + "/telemetry" }

// Events is the topic of event batches.
func (t Topics) Events() string { return t.Base() + "/events" }

// Samples is the topic of labelled-sample batches (the feedback loop).
func (t Topics) Samples() string { return t.Base() + "/samples" }

// For returns the uplink topic of a record class.
func (t Topics) For(c gateway.Class) string {
	switch c {
	case gateway.ClassEvent:
		return t.Events()
	case gateway.ClassSamples:
		return t.Samples()
	}
	return t.Telemetry()
}

// Ack is where a cloud consumer confirms batches it has stored, for
// gateways running with consumer acknowledgements.
func (t Topics) Ack() string { return t.Base() + "/ack" }

// Commands is the subscription filter for downlink commands.
func (t Topics) Commands() string { return t.Base() + "/cmd/+" }

// Reply is the topic a command's best-effort reply goes to (the durable
// reply is a command_reply event on the events topic).
func (t Topics) Reply(cmd string) string { return t.Base() + "/cmd/" + cmd + "/reply" }

// CommandName returns the <name> of a .../cmd/<name> topic, and false for
// any other topic (a reply topic included).
func (t Topics) CommandName(topic string) (string, bool) {
	name, ok := strings.CutPrefix(topic, t.Base()+"/cmd/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}

// Validate checks that site and gateway are usable topic levels.
func (t Topics) Validate() error {
	if err := gateway.ValidTopicLevel(t.Site); err != nil {
		return fmt.Errorf("site: %w", err)
	}
	if err := gateway.ValidTopicLevel(t.Gateway); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return nil
}

// SubscriptionFilter returns the filter matching a class's topic for the given
// site and gateway; empty site or gateway means any (+).
func SubscriptionFilter(site, gw string, c gateway.Class) string {
	if site == "" {
		site = "+"
	}
	if gw == "" {
		gw = "+"
	}
	leaf := "telemetry"
	switch c {
	case gateway.ClassEvent:
		leaf = "events"
	case gateway.ClassSamples:
		leaf = "samples"
	}
	return TopicRoot + "/" + site + "/" + gw + "/" + leaf
}
