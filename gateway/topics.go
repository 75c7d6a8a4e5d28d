package gateway

import (
	"fmt"
	"strings"
)

// TopicRoot is the first two levels of every Shelfgate topic.
const TopicRoot = "shelfgate/v1"

// Topics builds the MQTT topics of one gateway:
//
//	shelfgate/v1/<site>/<gateway>/status     retained birth / LWT
//	shelfgate/v1/<site>/<gateway>/telemetry  QoS1 reading batches
//	shelfgate/v1/<site>/<gateway>/events     QoS1 event batches
//	shelfgate/v1/<site>/<gateway>/cmd/<name> QoS1 downlink commands
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

// For returns the uplink topic of a record class.
func (t Topics) For(c Class) string {
	if c == ClassEvent {
		return t.Events()
	}
	return t.Telemetry()
}

// Ack is where a cloud consumer confirms batches it has stored, for
// gateways running with consumer acknowledgements.
func (t Topics) Ack() string { return t.Base() + "/ack" }

// Commands is the subscription filter for downlink commands.
func (t Topics) Commands() string { return t.Base() + "/cmd/+" }

// Reply is the topic a command's reply goes to.
func (t Topics) Reply(cmd string) string { return t.Base() + "/cmd/" + cmd + "/reply" }

// ValidTopicLevel reports whether s can be used as one topic level (site or
// gateway id): non-empty, at most 64 bytes, letters, digits, '-', '_' or '.'.
func ValidTopicLevel(s string) error {
	if s == "" {
		return fmt.Errorf("is empty")
	}
	if len(s) > 64 {
		return fmt.Errorf("%q is longer than 64 bytes", s)
	}
	if i := strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}); i >= 0 {
		return fmt.Errorf("%q has %q at byte %d; use letters, digits, '-', '_' or '.'", s, s[i], i)
	}
	return nil
}

// SubscriptionFilter returns the filter matching a class's topic for the given
// site and gateway; empty site or gateway means any (+).
func SubscriptionFilter(site, gw string, c Class) string {
	if site == "" {
		site = "+"
	}
	if gw == "" {
		gw = "+"
	}
	leaf := "telemetry"
	if c == ClassEvent {
		leaf = "events"
	}
	return TopicRoot + "/" + site + "/" + gw + "/" + leaf
}
