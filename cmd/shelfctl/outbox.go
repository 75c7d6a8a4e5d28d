package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/shelfgate/shelfgate/gateway"
	"github.com/shelfgate/shelfgate/gateway/outbox"
)

const outboxUsage = `usage:
  shelfctl outbox inspect [--json] FILE
  shelfctl outbox salvage [--dry-run] --into OUTBOX FILE

inspect reads an outbox without disturbing a gateway running on it (read-only,
through the WAL): backlog per stream and class, oldest unsent row, rows shed,
size, free pages, id high-water mark and integrity.

salvage reads every readable row of a damaged outbox file (as moved aside to
outbox.db.corrupt-<time>) page by page, with its WAL, and re-queues it into
OUTBOX with its original id and sequence number; unreadable id ranges are
named. Stop the gateway first. A file is salvaged into an outbox once; the
gateway already does it when it moves a damaged file aside.
`

// outboxCmd runs shelfctl outbox.
func outboxCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: outbox: no subcommand\n%s", errUsage, outboxUsage)
	}
	switch args[0] {
	case "inspect":
		return outboxInspect(ctx, args[1:], stdout)
	case "salvage":
		return outboxSalvage(ctx, args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, outboxUsage)
		return nil
	}
	return fmt.Errorf("%w: outbox: unknown subcommand %q\n%s", errUsage, args[0], outboxUsage)
}

func outboxInspect(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("outbox inspect", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: outbox inspect: %v", errUsage, err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: outbox inspect: want one FILE, got %d arguments", errUsage, fs.NArg())
	}
	r, err := outbox.Inspect(ctx, fs.Arg(0))
	if r == nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(r); jerr != nil {
			return jerr
		}
		return err
	}
	fmt.Fprintf(stdout, "file        %s\n", r.Path)
	fmt.Fprintf(stdout, "integrity   %s\n", r.Integrity)
	fmt.Fprintf(stdout, "size        %d B (%d pages of %d B, %d free), WAL %d B\n", r.FileBytes, r.Pages, r.PageSize, r.FreePages, r.WALBytes)
	mark := "none"
	if r.MarkOK {
		mark = fmt.Sprint(r.MarkHigh)
	}
	fmt.Fprintf(stdout, "ids         high-water %d (sidecar mark %s)\n", r.HighWater, mark)
	fmt.Fprintf(stdout, "shed        telemetry %d, events %d\n", r.Shed[gateway.ClassTelemetry], r.Shed[gateway.ClassEvent])
	fmt.Fprintf(stdout, "commands    %d recorded\n", r.Commands)
	var total int64
	for _, b := range r.Backlog {
		total += b.Rows
	}
	oldest := "-"
	if !r.OldestTime.IsZero() {
		oldest = r.OldestTime.UTC().Format(time.RFC3339Nano)
	}
	fmt.Fprintf(stdout, "backlog     %d rows, oldest unsent %s\n", total, oldest)
	if len(r.Backlog) > 0 {
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "STREAM\tCLASS\tROWS\tSEQ\tOLDEST")
		for _, b := range r.Backlog {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d-%d\t%s\n", b.Stream, b.Class, b.Rows, b.FromSeq, b.ToSeq, b.Oldest.UTC().Format(time.RFC3339))
		}
		tw.Flush()
	}
	return err
}

func outboxSalvage(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("outbox salvage", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	into := fs.String("into", "", "the outbox to re-queue the rows into (the gateway's outbox.db)")
	dry := fs.Bool("dry-run", false, "only report what is readable")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: outbox salvage: %v", errUsage, err)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: outbox salvage: want one FILE, got %d arguments", errUsage, fs.NArg())
	}
	if *into == "" && !*dry {
		return fmt.Errorf("%w: outbox salvage: --into OUTBOX is required (or --dry-run)", errUsage)
	}
	var (
		s   *outbox.Salvaged
		n   int64
		err error
	)
	if *dry {
		s, err = outbox.Salvage(fs.Arg(0))
	} else {
		s, n, err = outbox.SalvageInto(ctx, *into, fs.Arg(0))
	}
	if s != nil {
		printSalvage(stdout, s)
	}
	if errors.Is(err, outbox.ErrAlreadySalvaged) {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	if err != nil {
		return err
	}
	if !*dry {
		fmt.Fprintf(stdout, "re-queued   %d rows into %s\n", n, *into)
	}
	return nil
}

func printSalvage(w io.Writer, s *outbox.Salvaged) {
	type agg struct {
		rows     int
		from, to uint64
	}
	per := map[gateway.StreamID]*agg{}
	for _, r := range s.Rows {
		a := per[r.Stream]
		if a == nil {
			a = &agg{from: r.Seq, to: r.Seq}
			per[r.Stream] = a
		}
		a.rows++
		a.from, a.to = min(a.from, r.Seq), max(a.to, r.Seq)
	}
	names := make([]string, 0, len(per))
	for n := range per {
		names = append(names, string(n))
	}
	sort.Strings(names)
	fmt.Fprintf(w, "file        %s (%d pages of %d B, schema readable %v)\n", s.Path, s.Pages, s.PageSize, s.Schema)
	fmt.Fprintf(w, "readable    %d rows, id high-water %d\n", len(s.Rows), s.HighWater)
	for _, n := range names {
		a := per[gateway.StreamID(n)]
		fmt.Fprintf(w, "  %s: %d rows, seq %d-%d\n", n, a.rows, a.from, a.to)
	}
	if len(s.Missing) == 0 {
		fmt.Fprintln(w, "unreadable  none")
		return
	}
	fmt.Fprint(w, "unreadable  ids")
	for _, m := range s.Missing {
		fmt.Fprintf(w, " %d-%d", m.Lo, m.Hi)
	}
	fmt.Fprintln(w)
}
