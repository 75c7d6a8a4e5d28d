package modelsync

import "github.com/shelfgate/shelfgate/gateway/wire/shelfv1"

// Topics are the model topics of one gateway (docs/model-sync.md):
//
//	shelfgate/v1/<site>/<gateway>/model/offer    cloud → gateway, QoS1, retained: signed offer
//	shelfgate/v1/<site>/all/model/offer          cloud → every gateway of the site, QoS1, retained
//	shelfgate/v1/<site>/<gateway>/model/block    cloud → gateway, QoS1: one block
//	shelfgate/v1/<site>/<gateway>/model/request  gateway → cloud, QoS1: blocks wanted
//	shelfgate/v1/<site>/<gateway>/model/status   gateway → cloud, QoS1, retained: Status
type Topics struct {
	Site, Gateway string
}

func (t Topics) base() string { return shelfv1.TopicRoot + "/" + t.Site + "/" + t.Gateway + "/model/" }

// Offer is the gateway's own offer topic.
func (t Topics) Offer() string { return t.base() + "offer" }

// SiteOffer is the offer topic every gateway of the site subscribes to.
func (t Topics) SiteOffer() string { return shelfv1.TopicRoot + "/" + t.Site + "/all/model/offer" }

// Block is the topic blocks arrive on.
func (t Topics) Block() string { return t.base() + "block" }

// Request is the topic block requests go to.
func (t Topics) Request() string { return t.base() + "request" }

// Status is the retained model status topic.
func (t Topics) Status() string { return t.base() + "status" }
