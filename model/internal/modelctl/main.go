// Command modelctl runs the "shelfctl model" subcommands on their own, for
// make targets in model/model.mk and for development without the full
// shelfctl binary.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/shelfgate/shelfgate/model/modelcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := modelcli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "modelctl:", err)
		if errors.Is(err, modelcli.ErrUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
