package modelsync

import "testing"

func TestTopics(t *testing.T) {
	tp := Topics{Site: "s1", Gateway: "gw1"}
	for got, want := range map[string]string{
		tp.Offer():     "shelfgate/v1/s1/gw1/model/offer",
		tp.SiteOffer(): "shelfgate/v1/s1/all/model/offer",
		tp.Block():     "shelfgate/v1/s1/gw1/model/block",
		tp.Request():   "shelfgate/v1/s1/gw1/model/request",
		tp.Status():    "shelfgate/v1/s1/gw1/model/status",
	} {
		if got != want {
			t.Errorf("topic %q, want %q", got, want)
		}
	}
}
