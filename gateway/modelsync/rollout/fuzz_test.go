package rollout

import (
	"testing"
	"time"

	"github.com/shelfgate/shelfgate/gateway/modelsync"
)

// fuzzRunner is a Runner for one offered gateway, without a client.
func fuzzRunner() *Runner {
	man := modelsync.Manifest{Name: "m", Version: 2, Blocks: 3, BlockSize: 1024, Length: 3000}
	r := &Runner{plan: Plan{Site: "s", Gateways: []string{"g"}, Manifest: man, Offer: []byte("offer")}, offerID: modelsync.OfferID([]byte("offer")),
		gws:  map[string]*gw{"g": {Progress: Progress{Gateway: "g", Blocks: 3, Started: time.Now()}, offered: true, served: map[int]bool{}}},
		reqs: make(chan request, 1), poke: make(chan struct{}, 1)}
	return r
}

// FuzzGatewayMessages feeds arbitrary request and status payloads (what
// gateways, or anyone able to publish on their topics, send) to the
// runner: it never panics, and only a status naming the pushed model
// promotes.
func FuzzGatewayMessages(f *testing.F) {
	f.Add([]byte(`{"name":"m","version":2,"blocks":[0,1,2],"round":0}`), []byte(`{"state":"promoted","active":{"name":"m","version":2}}`))
	f.Add([]byte(`{"blocks":[-1,99999999]}`), []byte(`{"state":"rejected","offer_id":"x","code":"rollback"}`))
	f.Add([]byte(`null`), []byte(``))
	f.Fuzz(func(t *testing.T, req, status []byte) {
		r := fuzzRunner()
		r.onRequest("shelfgate/v1/s/g/model/request", req)
		r.onStatus("shelfgate/v1/s/g/model/status", status)
		r.onStatus("shelfgate/v1/s/other/model/status", status)
		select {
		case q := <-r.reqs:
			if q.gw != "g" {
				t.Fatalf("request queued for %q", q.gw)
			}
		default:
		}
		if p := r.gws["g"]; p.Outcome == Promoted && p.State == "" {
			t.Fatalf("promoted without a state: %+v", p.Progress)
		}
	})
}
