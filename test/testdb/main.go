// Command testdb runs FerretDB v1 (SQLite backend) as a MongoDB-wire server for seald's tests
// and for `npm start`'s embedded default database.
//
// FerretDB's own command cannot be installed from the module proxy (its build/version package
// needs a generated file the module lacks), so this wrapper imports the embeddable package
// instead. It prints one line, "ready <mongodb uri>", on stdout once the listener is bound, and
// serves until SIGTERM or SIGINT, or, with -watch-stdin, until its standard input closes.
//
// Two guards keep the embedded database from outliving seald or running twice:
//
//   - -watch-stdin: seald gives the wrapper a pipe as stdin and never writes to it. When seald
//     exits, however it exits (kill -9 included), the kernel closes the write end, the read here
//     sees EOF, and the wrapper shuts down. A parent-death signal (prctl PR_SET_PDEATHSIG) would
//     do on Linux only, and fires when the parent *thread* that forked exits, not the process.
//   - a flock(2) on <dir>/LOCK, held for the life of the process: a second wrapper on the same
//     directory exits with status 3 and names the holder (pid, parent pid, since when) from the
//     file's content. The kernel releases the lock when the holder dies, kill -9 included, so a
//     stale file never blocks a start. A holder whose parent is gone (an orphan shutting down
//     after its seald was killed) is waited for, up to -lock-wait.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// exitLocked is the exit status when another process holds the directory's lock.
const exitLocked = 3

// holder is what the LOCK file says about the process that holds it.
type holder struct {
	Pid       int    `json:"pid"`
	ParentPid int    `json:"parentPid"`
	Since     string `json:"since"`
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on (loopback; port 0 picks a free one)")
	dir := flag.String("dir", "", "existing directory for the SQLite files (required)")
	logLevel := flag.String("log-level", "error", "FerretDB log level: debug, info, warn or error")
	watchStdin := flag.Bool("watch-stdin", false, "exit when standard input closes (the parent's pipe)")
	lockWait := flag.Duration("lock-wait", 10*time.Second, "how long to wait for an orphaned holder of the directory lock to exit")
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

	lock, err := lockDir(abs, *lockWait)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testdb: %v\n", err)
		os.Exit(exitLocked)
	}
	// Held until the process exits; the kernel releases it then.
	defer lock.Close()

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
	if *watchStdin {
		// Once the parent is gone so are the read ends of stdout and stderr: a log line would
		// kill the process with SIGPIPE in the middle of its shutdown. Ignored, writes fail
		// with EPIPE instead, and the shutdown closes SQLite cleanly.
		signal.Ignore(syscall.SIGPIPE)
		go func() {
			// Nothing is ever written: this returns when the parent's end closes.
			_, _ = io.Copy(io.Discard, os.Stdin)
			logger.Warn("standard input closed: the parent is gone, shutting down")
			stop()
			// A shutdown that hangs must not leave the database running without its parent.
			time.AfterFunc(10*time.Second, func() { fail("shutdown after the parent went away took over 10s") })
		}()
	}

	fmt.Printf("ready %s\n", f.MongoDBURI())

	if err := f.Run(ctx); err != nil {
		fail("run: %v", err)
	}
}

// lockDir takes an exclusive flock on dir/LOCK and records this process in it.
func lockDir(dir string, wait time.Duration) (*os.File, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	deadline := time.Now().Add(wait)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		h := readHolder(path)
		// An orphan (its parent gone) is shutting down on its own: give it a moment.
		if h.ParentPid > 1 && !alive(h.ParentPid) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		f.Close()
		return nil, fmt.Errorf("data directory %s is in use by %s", dir, describe(h))
	}
	info, _ := json.Marshal(holder{Pid: os.Getpid(), ParentPid: os.Getppid(), Since: time.Now().UTC().Format(time.RFC3339)})
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(append(info, '\n'), 0)
		_ = f.Sync()
	}
	return f, nil
}

func readHolder(path string) holder {
	var h holder
	if data, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(data, &h)
	}
	return h
}

func describe(h holder) string {
	if h.Pid == 0 {
		return "another process (its LOCK file names none)"
	}
	return fmt.Sprintf("the embedded database pid %d (started by pid %d) since %s", h.Pid, h.ParentPid, h.Since)
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "testdb: "+format+"\n", args...)
	os.Exit(1)
}
