package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/modelsync/rollout"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
	"github.com/shelfgate/shelfgate/model"
	"golang.org/x/sys/unix"
)

// errRollout is returned when a push ends with a gateway not promoted.
var errRollout = errors.New("rollout incomplete")

const pushUsage = `usage: shelfctl push --broker URL --site S (--gateway G ... | --all) [--canary N] [--max-failures F]
                     (--key KEY | --offer OFFER.json) FILE`

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// pushCmd rolls a model out to gateways (docs/model-sync.md): it signs the
// file and its manifest with --key (or takes a signed file and its offer),
// offers it to --canary gateways first, serves their block requests, goes
// on to the rest when failures stay within --max-failures, shows progress
// per gateway and ends with a table. It fails unless every gateway
// promoted the model.
func pushCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("broker", "tcp://127.0.0.1:1883", "broker URL")
	site := fs.String("site", "", "site of the gateways")
	var gws stringList
	fs.Var(&gws, "gateway", "gateway id (repeat for several; canaries are the first --canary)")
	all := fs.Bool("all", false, "every gateway of the site (found by their retained status)")
	discover := fs.Duration("discover", 3*time.Second, "with --all: how long to collect gateways' status")
	canary := fs.Int("canary", 1, "gateways offered first; the rest follow when they promote")
	maxFail := fs.Int("max-failures", 0, "failures tolerated before the rollout stops")
	keyPath := fs.String("key", "", "ed25519 private key: sign FILE and its manifest")
	offerPath := fs.String("offer", "", "a signed offer (JSON) for FILE, instead of --key")
	blockSize := fs.Int("block-size", modelsync.DefaultBlockSize, "block size in bytes (with --key)")
	expires := fs.Duration("expires", 30*24*time.Hour, "manifest lifetime (with --key)")
	idle := fs.Duration("idle", 2*time.Minute, "a gateway silent this long times out")
	user := fs.String("username", "", "broker user name")
	passFile := fs.String("password-file", "", "file holding the broker password")
	caFile := fs.String("ca", "", "CA certificate (PEM) for ssl:// brokers")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v\n%s", errUsage, err, pushUsage)
	}
	switch {
	case fs.NArg() != 1:
		return fmt.Errorf("%w: one model FILE\n%s", errUsage, pushUsage)
	case *site == "":
		return fmt.Errorf("%w: --site is required\n%s", errUsage, pushUsage)
	case *all == (len(gws) > 0):
		return fmt.Errorf("%w: give --gateway ... or --all\n%s", errUsage, pushUsage)
	case (*keyPath == "") == (*offerPath == ""):
		return fmt.Errorf("%w: give --key or --offer\n%s", errUsage, pushUsage)
	}
	file, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	c, err := pushClient(ctx, *url, *site, *user, *passFile, *caFile)
	if err != nil {
		return err
	}
	defer c.Disconnect(250)
	if *all {
		if gws, err = discoverGateways(ctx, c, *site, *discover); err != nil {
			return err
		}
		if len(gws) == 0 {
			return fmt.Errorf("no gateway of site %s reported a status within %s", *site, *discover)
		}
	}
	target := modelsync.Target{Site: *site, Gateways: gws}
	if *all {
		target = modelsync.Target{Site: *site, All: true}
	}
	plan := rollout.Plan{Site: *site, Gateways: gws, Canary: *canary, MaxFailures: *maxFail, Idle: *idle}
	if *keyPath != "" {
		plan.File, plan.Manifest, plan.Offer, err = signForPush(file, *keyPath, *blockSize, target, time.Now().Add(*expires))
	} else {
		plan.File, plan.Manifest, plan.Offer, err = loadOffer(file, *offerPath)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pushing %s version %d (%d bytes, %d blocks) to %d gateways of %s, %d canary\n",
		plan.Manifest.Name, plan.Manifest.Version, plan.Manifest.Length, plan.Manifest.Blocks, len(gws), *site, min(*canary, len(gws)))
	view := newPushView(ctx, stdout, gws, plan.Manifest.Blocks)
	plan.Progress = view.update
	res, err := rollout.Run(ctx, c, plan)
	view.wait()
	if err != nil {
		return err
	}
	printPushTable(stdout, res)
	if !res.AllPromoted() {
		return fmt.Errorf("%w: not every gateway promoted version %d", errRollout, plan.Manifest.Version)
	}
	return nil
}

// signForPush signs the model file (keeping its name and version) and a
// manifest for it.
func signForPush(file []byte, keyPath string, blockSize int, target modelsync.Target, expires time.Time) ([]byte, modelsync.Manifest, []byte, error) {
	priv, err := modelsync.LoadPrivateKey(keyPath)
	if err != nil {
		return nil, modelsync.Manifest{}, nil, fmt.Errorf("--key: %w", err)
	}
	m, err := model.Decode(file, model.DecodeOptions{})
	if err != nil {
		return nil, modelsync.Manifest{}, nil, fmt.Errorf("model file: %w", err)
	}
	signed, err := model.Encode(m, priv)
	if err != nil {
		return nil, modelsync.Manifest{}, nil, fmt.Errorf("sign model: %w", err)
	}
	man := modelsync.NewManifest(m.Name, m.Version, signed, blockSize, target, expires)
	offer, err := modelsync.SignManifest(man, priv)
	if err != nil {
		return nil, modelsync.Manifest{}, nil, err
	}
	return signed, man, offer, nil
}

// loadOffer reads a signed offer and checks that it describes file.
func loadOffer(file []byte, path string) ([]byte, modelsync.Manifest, []byte, error) {
	offer, err := os.ReadFile(path)
	if err != nil {
		return nil, modelsync.Manifest{}, nil, fmt.Errorf("--offer: %w", err)
	}
	env, err := modelsync.DecodeEnvelope(offer)
	if err != nil {
		return nil, modelsync.Manifest{}, nil, fmt.Errorf("--offer %s: %w", path, err)
	}
	man, err := modelsync.DecodeManifest(env.Manifest)
	if err != nil {
		return nil, modelsync.Manifest{}, nil, fmt.Errorf("--offer %s: %w", path, err)
	}
	if want := modelsync.NewManifest(man.Name, man.Version, file, man.BlockSize, man.Target, man.Expires); want.SHA256 != man.SHA256 || want.Length != man.Length {
		return nil, modelsync.Manifest{}, nil, fmt.Errorf("--offer %s: manifest describes %d bytes with SHA-256 %s, FILE has %d bytes with %s", path, man.Length, man.SHA256, want.Length, want.SHA256)
	}
	return file, *man, offer, nil
}

func pushClient(ctx context.Context, url, site, user, passFile, caFile string) (paho.Client, error) {
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("shelfctl-push-%s-%d", site, os.Getpid())).
		SetCleanSession(false).SetAutoReconnect(true).SetMaxReconnectInterval(2 * time.Second).SetOrderMatters(false)
	if user != "" {
		opts.SetUsername(user)
	}
	if passFile != "" {
		p, err := os.ReadFile(passFile)
		if err != nil {
			return nil, fmt.Errorf("--password-file: %w", err)
		}
		opts.SetPassword(strings.TrimRight(string(p), "\r\n"))
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca: %s holds no PEM certificate", caFile)
		}
		opts.SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return nil, fmt.Errorf("connect to %s: %w", url, err)
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c, nil
}

// discoverGateways lists the gateways of site whose retained uplink
// status arrives within d.
func discoverGateways(ctx context.Context, c paho.Client, site string, d time.Duration) ([]string, error) {
	var mu sync.Mutex
	seen := map[string]bool{}
	filter := shelfv1.TopicRoot + "/" + site + "/+/status"
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		parts := strings.Split(m.Topic(), "/")
		if len(parts) >= 4 && len(m.Payload()) > 0 && parts[len(parts)-2] != "all" {
			mu.Lock()
			seen[parts[len(parts)-2]] = true
			mu.Unlock()
		}
	})
	if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("subscribe %s: %v", filter, tok.Error())
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	c.Unsubscribe(filter).WaitTimeout(5 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	var out []string
	for g := range seen {
		out = append(out, g)
	}
	sort.Strings(out)
	return out, nil
}

// pushView shows progress: a bar per gateway on a terminal, plain lines
// (each outcome, and every 25 % of a transfer) otherwise.
type pushView struct {
	w    io.Writer
	p    *mpb.Progress
	bars map[string]*mpb.Bar

	mu     sync.Mutex
	state  map[string]string
	step   map[string]int
	served map[string]int
	done   map[string]bool // outcome shown
}

// isTerminal reports whether w is a terminal with a known width (bars
// need one; a pty without a size gets plain lines).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	return err == nil && ws.Col > 0
}

func newPushView(ctx context.Context, w io.Writer, gws []string, blocks int) *pushView {
	v := &pushView{w: w, state: map[string]string{}, step: map[string]int{}, served: map[string]int{}, done: map[string]bool{}}
	if !isTerminal(w) {
		return v
	}
	v.p = mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithWidth(40))
	v.bars = map[string]*mpb.Bar{}
	width := 8
	for _, g := range gws {
		width = max(width, len(g))
	}
	// One step more than the blocks: the bar completes when the gateway
	// reports the model promoted, not when the last block is sent.
	for _, g := range gws {
		v.bars[g] = v.p.AddBar(int64(blocks)+1,
			mpb.PrependDecorators(decor.Name(g, decor.WC{W: width + 1, C: decor.DindentRight}), decor.Any(func(decor.Statistics) string {
				v.mu.Lock()
				defer v.mu.Unlock()
				return fmt.Sprintf("%d/%d blocks", v.served[g], blocks)
			}, decor.WCSyncWidth)),
			mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace), decor.Any(func(decor.Statistics) string {
				v.mu.Lock()
				defer v.mu.Unlock()
				return " " + v.state[g]
			})))
	}
	return v
}

func (v *pushView) update(p rollout.Progress) {
	v.mu.Lock()
	s := p.State
	if p.Outcome != "" {
		s = p.Outcome
		if p.Code != "" {
			s += " (" + p.Code + ")"
		}
	}
	v.state[p.Gateway] = s
	v.served[p.Gateway] = p.Served
	prevStep := v.step[p.Gateway]
	step := 0
	if p.Blocks > 0 {
		step = 4 * p.Served / p.Blocks
	}
	v.step[p.Gateway] = step
	shown := v.done[p.Gateway]
	if p.Outcome != "" {
		v.done[p.Gateway] = true
	}
	v.mu.Unlock()
	if shown {
		return
	}
	if v.p == nil {
		switch {
		case p.Outcome != "":
			fmt.Fprintf(v.w, "%s %s %d/%d blocks %s\n", p.Gateway, s, p.Served, p.Blocks, p.Reason)
		case step > prevStep:
			fmt.Fprintf(v.w, "%s %s %d/%d blocks\n", p.Gateway, s, p.Served, p.Blocks)
		}
		return
	}
	b := v.bars[p.Gateway]
	switch p.Outcome {
	case "":
		b.SetCurrent(int64(p.Served))
	case rollout.Promoted:
		b.SetCurrent(int64(p.Blocks) + 1)
	default:
		b.Abort(false)
	}
}

func (v *pushView) wait() {
	if v.p == nil {
		return
	}
	for _, b := range v.bars {
		if !b.Completed() {
			b.Abort(false)
		}
	}
	v.p.Wait()
}

func printPushTable(w io.Writer, res rollout.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GATEWAY\tOUTCOME\tBLOCKS\tRESENT\tSECONDS\tREASON")
	for _, p := range res {
		secs := "-"
		if !p.Started.IsZero() && !p.Finished.IsZero() {
			secs = fmt.Sprintf("%.1f", p.Finished.Sub(p.Started).Seconds())
		}
		reason := p.Reason
		if p.Code != "" {
			reason = p.Code + ": " + reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d\t%s\t%s\n", p.Gateway, p.Outcome, p.Served, p.Blocks, p.Resent, secs, reason)
	}
	tw.Flush()
}
