package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfgate/shelfgate/gateway/compress"
	"github.com/shelfgate/shelfgate/gateway/config"
	"github.com/shelfgate/shelfgate/gateway/modelsync"
	"github.com/shelfgate/shelfgate/gateway/wire/shelfv1"
)

const configSynopsis = "push --broker URL --site S (--gateway G | --all) --key KEY --version N [--wait D] [--force] FILE"

// errConfigRejected is returned when the gateway refused the pushed
// configuration.
var errConfigRejected = errors.New("config rejected")

// configCmd dispatches shelfctl config's subcommands (push).
func configCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "push" {
		return fmt.Errorf("%w: shelfctl config %s", errUsage, configSynopsis)
	}
	return configPush(ctx, args[1:], os.LookupEnv, stdout, stderr)
}

// configPush validates FILE locally, signs it as desired configuration
// version N with KEY and publishes it retained on the gateway's (or, with
// --all, the site's) config topic (docs/protocol.md, "Desired config").
// With --gateway it then waits up to --wait for the gateway's
// config_applied or config_rejected event and fails on a rejection.
func configPush(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("config push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mf := addMQTTFlags(fs, lookup)
	site := fs.String("site", "", "site of the gateway(s)")
	gw := fs.String("gateway", "", "the gateway the configuration is for (its gateway.id)")
	all := fs.Bool("all", false, "every gateway of the site: FILE leaves gateway.id out, each gateway fills in its own")
	keyPath := fs.String("key", "", "ed25519 private key whose public key is in the gateways' models.trusted_keys")
	ver := fs.Uint64("version", 0, "version of this configuration, above every version pushed before (1 or more)")
	wait := fs.Duration("wait", 30*time.Second, "with --gateway: how long to wait for the gateway's outcome (0: do not wait)")
	force := fs.Bool("force", false, "publish even when the local check finds problems (paths that exist only on the gateway)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	switch {
	case fs.NArg() != 1:
		return fmt.Errorf("%w: one configuration FILE: shelfctl config %s", errUsage, configSynopsis)
	case *site == "":
		return fmt.Errorf("%w: --site is required", errUsage)
	case *all == (*gw != ""):
		return fmt.Errorf("%w: give --gateway G or --all", errUsage)
	case *keyPath == "":
		return fmt.Errorf("%w: --key is required", errUsage)
	case *ver == 0:
		return fmt.Errorf("%w: --version N (1 or more) is required", errUsage)
	}
	path := fs.Arg(0)
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := checkDesired(path, data, *site, *gw, *force, stderr); err != nil {
		return err
	}
	priv, err := modelsync.LoadPrivateKey(*keyPath)
	if err != nil {
		return err
	}
	kid := modelsync.KeyID(priv.Public().(ed25519.PublicKey))
	payload, err := shelfv1.SignConfig(shelfv1.ConfigDoc{Format: shelfv1.ConfigFormat, Site: *site, Gateway: *gw, Version: *ver, Issued: time.Now(), YAML: string(data)}, priv, kid)
	if err != nil {
		return err
	}
	cn, err := mf.resolve()
	if err != nil {
		return err
	}
	opts := cn.apply(paho.NewClientOptions().SetClientID(fmt.Sprintf("shelfctl-config-%s-%d", *site, os.Getpid())).SetCleanSession(true))
	c, err := mf.connect(ctx, opts)
	if err != nil {
		return err
	}
	defer c.Disconnect(250)
	topics := shelfv1.Topics{Site: *site, Gateway: *gw}
	topic := topics.Config()
	if *all {
		topic = topics.SiteConfig()
	}
	var outcomes chan shelfv1.ConfigOutcome
	if *gw != "" && *wait > 0 {
		if outcomes, err = watchOutcomes(c, topics.Events(), *ver); err != nil {
			return err
		}
	}
	tok := c.Publish(topic, 1, true, payload)
	if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		return fmt.Errorf("publish %s: %v", topic, errOrTimeout(tok.Error()))
	}
	fmt.Fprintf(stdout, "published config version %d (%d bytes, key %s) retained on %s\n", *ver, len(payload), kid, topic)
	if outcomes == nil {
		return nil
	}
	t := time.NewTimer(*wait)
	defer t.Stop()
	select {
	case o := <-outcomes:
		return printOutcome(stdout, o)
	case <-t.C:
		return fmt.Errorf("no outcome from gateway %s within %s (it may be offline: the retained configuration applies when it connects)", *gw, *wait)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkDesired validates the file as the gateway will (without the
// gateway's own files and devices) and checks it is for the target.
func checkDesired(path string, data []byte, site, gw string, force bool, stderr io.Writer) error {
	id := gw
	if id == "" {
		// A site-wide file leaves gateway.id out; check it as any one
		// gateway of the site would ("all" itself is a reserved id).
		id = "each-gateway"
	}
	c, err := config.Parse(strings.NewReader(string(data)))
	if err != nil {
		return prefixPath(path, err)
	}
	if _, err := config.LoadDocument(data, config.DocumentOptions{Name: path, GatewayID: id}); err != nil {
		// Files and directories the configuration names are the
		// gateway's; missing here they are only noted.
		var es, hard config.Errors
		if !errors.As(err, &es) {
			return err
		}
		for _, e := range es {
			if localOnly(e.Msg) {
				fmt.Fprintf(stderr, "shelfctl: not checked here (the gateway checks it): %v\n", e)
			} else {
				hard = append(hard, e)
			}
		}
		if len(hard) > 0 && !force {
			return fmt.Errorf("%w\n(--force publishes anyway; the gateway validates it again)", hard)
		}
		if len(hard) > 0 {
			fmt.Fprintf(stderr, "shelfctl: local check found problems, published anyway (--force):\n%v\n", hard)
		}
	}
	switch {
	case c.Gateway.Site != site:
		return fmt.Errorf("%s: gateway.site is %q, not --site %q", path, c.Gateway.Site, site)
	case gw != "" && c.Gateway.ID != gw:
		return fmt.Errorf("%s: gateway.id is %q, not --gateway %q", path, c.Gateway.ID, gw)
	case gw == "" && c.Gateway.ID != "":
		return fmt.Errorf("%s: gateway.id is %q; a configuration for --all leaves it out (each gateway fills in its own)", path, c.Gateway.ID)
	}
	return nil
}

// watchOutcomes subscribes to the gateway's events and sends the config
// outcome of version v on the returned channel.
func watchOutcomes(c paho.Client, topic string, v uint64) (chan shelfv1.ConfigOutcome, error) {
	zstd, err := compress.NewDecoder(shelfv1.MaxBatchBytes)
	if err != nil {
		return nil, err
	}
	out := make(chan shelfv1.ConfigOutcome, 1)
	var once sync.Once
	tok := c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
		p := m.Payload()
		if compress.IsCompressed(p) {
			if p, err = zstd.Decompress(p); err != nil {
				return
			}
		}
		b, err := shelfv1.DecodeBatch(p)
		if err != nil {
			return
		}
		for _, r := range b.Records {
			if r.Stream != string(shelfv1.StreamConfig) {
				continue
			}
			if o, err := shelfv1.DecodeConfigOutcome(r.Event); err == nil && o.Source == shelfv1.ConfigSourceMQTT && o.Version == v {
				once.Do(func() { out <- o })
			}
		}
	})
	if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("subscribe %s: %v", topic, errOrTimeout(tok.Error()))
	}
	return out, nil
}

// printOutcome reports o; a rejection is an error.
func printOutcome(w io.Writer, o shelfv1.ConfigOutcome) error {
	if o.Kind == shelfv1.EventConfigApplied {
		fmt.Fprintf(w, "applied version %d\n", o.Version)
		fmt.Fprintf(w, "  live:            %s\n", orNone(o.Applied))
		fmt.Fprintf(w, "  needs a restart: %s\n", orNone(o.Restart))
		return nil
	}
	fmt.Fprintf(w, "rejected version %d: %s: %s\n", o.Version, o.Reason, o.Error)
	for _, e := range o.Errors {
		fmt.Fprintf(w, "  %s\n", e)
	}
	return fmt.Errorf("%w: %s", errConfigRejected, o.Reason)
}

func orNone(fields []string) string {
	if len(fields) == 0 {
		return "(none)"
	}
	return strings.Join(fields, ", ")
}

func errOrTimeout(err error) any {
	if err != nil {
		return err
	}
	return "timed out"
}

// localOnly reports whether a validation message is about a file or
// directory of the machine it runs on.
func localOnly(msg string) bool {
	for _, s := range []string{"no such file or directory", "permission denied", "not a directory", "does not exist"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// prefixPath names the file in Errors without one.
func prefixPath(path string, err error) error {
	var es config.Errors
	if errors.As(err, &es) {
		for i := range es {
			es[i].File = path
		}
		return es
	}
	return fmt.Errorf("%s: %w", path, err)
}
