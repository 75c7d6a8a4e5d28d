package model_test

import (
	"fmt"
	"os"

	"github.com/shelfgate/shelfgate/model"
)

func Example() {
	f, err := os.Open("testdata/reference.sgm")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	// Load verifies size, SHA-256, the signature (when TrustedKeys are
	// given) and the embedded golden vectors.
	m, err := model.Load(f, model.DecodeOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Name, m.Version, m.Features(), "features", m.Classes(), "classes")

	// One session per goroutine; after the first call Infer allocates
	// nothing.
	s := m.NewSession()
	features := make([]float32, m.Features()) // raw features, standardized by the model
	out, err := s.Infer(features)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Output.Labels[out.Class], len(out.Logits), len(out.Probs))
	// Output:
	// reference 1 48 features 10 classes
	// class-5 10 10
}
