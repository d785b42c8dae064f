// Command testdb runs FerretDB v1 (SQLite backend) as a MongoDB-wire server for seald's tests
// and for `npm start`'s embedded default database.
//
// FerretDB's own command cannot be installed from the module proxy (its build/version package
// needs a generated file the module lacks), so this wrapper imports the embeddable package
// instead. It prints one line, "ready <mongodb uri>", on stdout once the listener is bound, and
// serves until SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on (loopback; port 0 picks a free one)")
	dir := flag.String("dir", "", "existing directory for the SQLite files (required)")
	logLevel := flag.String("log-level", "error", "FerretDB log level: debug, info, warn or error")
	flag.Parse()

	if *dir == "" {
		fail("-dir is required")
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fail("-dir: %v", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		fail("-dir: %v", err)
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fail("-log-level: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    logger,
	})
	if err != nil {
		fail("start: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	fmt.Printf("ready %s\n", f.MongoDBURI())

	if err := f.Run(ctx); err != nil {
		fail("run: %v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "testdb: "+format+"\n", args...)
	os.Exit(1)
}
