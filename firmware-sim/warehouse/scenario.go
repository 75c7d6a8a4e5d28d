package warehouse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"gopkg.in/yaml.v3"
)

// scenarioFile is the scenario file format read by cmd/shelfsim and
// cmd/shelfdata: a warehouse section and nothing else. Fields left out
// keep DefaultConfig's values; plates: left out means no plates.
type scenarioFile struct {
	Warehouse *Config `yaml:"warehouse"`
}

// ParseScenario reads a scenario file: YAML with one "warehouse" section
// holding Config's fields. Unknown fields are errors, missing ones keep
// DefaultConfig's values, and the result is validated.
func ParseScenario(r io.Reader) (Config, error) {
	cfg := DefaultConfig()
	sc := scenarioFile{Warehouse: &cfg}
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(&sc); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, errors.New("warehouse: scenario: empty file")
		}
		return Config{}, fmt.Errorf("warehouse: scenario: %w", err)
	}
	if sc.Warehouse == nil {
		return Config{}, errors.New("warehouse: scenario: warehouse section is empty")
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// LoadScenario reads the scenario file at path (see ParseScenario); errors
// name the file.
func LoadScenario(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("load scenario: %w", err)
	}
	cfg, err := ParseScenario(bytes.NewReader(data))
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}
