package config

import (
	"bytes"
	"errors"
)

// DocumentOptions are what LoadDocument needs besides the bytes.
type DocumentOptions struct {
	// Name stands in for the file name in every error ("desired config
	// v7" gives "desired config v7:12: uplink.window: ...").
	Name string
	// Lookup reads the environment (os.LookupEnv), as Load applies it.
	Lookup func(string) (string, bool)
	// GatewayID, when set, is the gateway.id of a document that leaves it
	// out (a site-wide document addressed to every gateway of a site).
	GatewayID string
}

// LoadDocument parses, applies the environment and validates a whole
// configuration held in memory (a desired configuration sent by the
// cloud) exactly as Load does a file: every problem at once, each with
// the document's name, line and field path.
func LoadDocument(data []byte, o DocumentOptions, checks ...Check) (*Config, error) {
	c, decodeErrs, err := parse(bytes.NewReader(data))
	if err != nil {
		return nil, prefixFile(o.Name, err)
	}
	c.file = o.Name
	c.decodeErrs = decodeErrs
	for i := range c.decodeErrs {
		c.decodeErrs[i].File = o.Name
	}
	if c.Gateway.ID == "" && o.GatewayID != "" {
		c.Gateway.ID = o.GatewayID
	}
	if o.Lookup != nil {
		if err := c.ApplyEnv(o.Lookup); err != nil {
			var es Errors
			if !errors.As(err, &es) {
				return nil, prefixFile(o.Name, err)
			}
			c.decodeErrs = append(c.decodeErrs, es...)
		}
	}
	if err := c.Validate(checks...); err != nil {
		return nil, err
	}
	return c, nil
}
